"""The tables of memory_profile.py: one line of figures per run, and the traced run's attribution."""

from __future__ import annotations

import linecache
import re
import tracemalloc
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

#: Frames and files hidden from the tracemalloc comparison (the profiler and the import machinery).
NOISE = [
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    tracemalloc.Filter(False, str(BENCH / "memory_hub.py")),
]


def row(r: dict[str, Any]) -> str:
    """One run's figures (MB) on one line."""
    e, n = r["early"], r["end"]
    pym, mal = n["pymalloc"], n["malloc"]
    seen = sum(c["entries"] for c in n["seen"]), sum(c["mb"] for c in n["seen"])
    traced = f"{e.get('traced', 0):>6.1f} {n.get('traced', 0):>6.1f} {n.get('overhead', 0):>5.1f}"
    return (f"{r['run']:<7} {r['seconds']:>6.0f} {e['rss']:>6.1f} {n['rss']:>6.1f} {n['hwm']:>6.1f} "
            f"{n['rss_after_trim']:>6.1f}  {traced}  {e['pymalloc']['arenas']:>5.1f} {pym['arenas']:>5.1f} "
            f"{pym['live']:>5.1f} {pym['free_blocks'] + pym['unused_pools']:>5.1f}  "
            f"{e['malloc']['in_use']:>5.1f} {mal['in_use']:>5.1f} {mal['free']:>5.1f}  "
            f"{seen[0]:>6} {seen[1]:>5.1f}")  # fmt: skip


def short(text: str) -> str:
    """Paths shown relative to the frozen code (or the venv) instead of absolute."""
    return re.sub(
        rf"/tmp/esb-memprof-code-\w+/|{re.escape(str(BENCH.parent))}/|/\S+/versions/[\d.]+/", "", text
    )


def attribution(work: Path) -> None:
    """Print what the traced run's Python allocations gained between the early and the end snapshot."""
    early = tracemalloc.Snapshot.load(str(work / "early.snap")).filter_traces(NOISE)
    end = tracemalloc.Snapshot.load(str(work / "end.snap")).filter_traces(NOISE)
    print("\ntop 25 Python allocation sites, end - early (compare_to 'lineno'):")
    for stat in end.compare_to(early, "lineno")[:25]:
        frame = stat.traceback[0]
        source = linecache.getline(frame.filename, frame.lineno).strip()[:60]
        print(f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9} blocks  "
              f"{short(frame.filename)}:{frame.lineno}  {source}")  # fmt: skip
    print("\ntop 10 files (compare_to 'filename'):")
    for stat in end.compare_to(early, "filename")[:10]:
        print(f"  {stat.size_diff / 1e6:+8.2f} MB  {short(stat.traceback[0].filename)}")
    if early.traceback_limit < 2:
        return  # one frame: the tracebacks are the lines above
    print("\ntop 6 tracebacks (compare_to 'traceback'; innermost 8 frames, innermost last):")
    for stat in end.compare_to(early, "traceback")[:6]:
        print(f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9} blocks")
        for line in stat.traceback.format(limit=8):
            if line.startswith("  File"):
                print("     " + short(line.strip()))


def report(results: list[dict[str, Any]], args: Any) -> None:
    """Print the figures of every run, then the traced run's attribution."""
    print(f"code: {args.code}; one hub process, crm-order-to-iom, journal on PostgreSQL, {args.messages} "
          f"queued; MB; 'early' = after {args.early} delivered, 'end' = all delivered")  # fmt: skip
    print(f"{'':<7} {'':>6} {'VmRSS':^27}  {'tracemalloc':^19}  {'pymalloc arenas':^23}  "
          f"{'glibc malloc':^17}  {'Seen caches':^12}")  # fmt: skip
    print(f"{'run':<7} {'drain':>6} {'early':>6} {'end':>6} {'peak':>6} {'trim':>6}  {'early':>6} "
          f"{'end':>6} {'ovh':>5}  {'early':>5} {'end':>5} {'live':>5} {'free':>5}  {'early':>5} {'end':>5} "
          f"{'free':>5}  {'items':>6} {'MB':>5}")  # fmt: skip
    for r in results:
        print(row(r))
    for r in results:
        if r["run"] == "traced":
            attribution(r["work"])
