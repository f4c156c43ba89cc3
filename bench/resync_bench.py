"""Full resync and reconciliation at scale: 1,000,000 customers, 1% changed (docs/sync.md, issue 17).

  A. resync:    the CRM's full extract (GBK, '|'-delimited, config/layouts/crm_customer_full.yaml) of
                --records customers against a store that holds all of them (seeded untimed, as a previous
                sync left it); every 100th customer changed. Timed: read, map to canonical, project and
                hash, compare in bulk, send the differences through the route to the embedded queue,
                checkpoint. Asserts exactly records/100 sent (run counts and the target queue's depth).
                Compared in the same run with bench/batch_bench.py's hand-written parser over a Billing
                charge file of the same record count (records/s of each; the ratio).
  B. reconcile: NCR's extract of the same customers as they now stand, against the store after A.

Each measurement runs in a fresh subprocess (its own peak RSS). Targets: A >= 0.5 x the hand-written
parser's records/s, peak RSS < 300 MB; B < 60 s for 1,000,000 keys.
Each resync is alternated with a parser run (``--repeat`` times, 3 by default); printed: the median of
the per-run ratios with their range, the median CPU-time ratio, the load average beside each run.
Usage: .venv/bin/python bench/resync_bench.py [--records N] [--repeat 3] [--journal-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

V2 = "2026-12-02T08:00:00+08:00"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _records(n: int, changed: bool) -> Any:
    """The CRM's records of customers 1..n; with ``changed``, every 100th renamed with a newer version."""
    from tests.sync_project import crm_record

    for i in range(1, n + 1):
        if changed and i % 100 == 0:
            yield crm_record(i, name=f"改{i}", version=V2)
        else:
            yield crm_record(i)


def seed(project_dir: Path, before: Path, fingerprints: bool) -> None:
    """Store every customer of the unchanged extract as sent and (unless not asked) the fingerprints a
    previous resync of that extract would have left; untimed."""
    from esb.journal import Journal
    from esb.message import Message
    from esb.project import Project
    from esb.resync.extract import extract_blocks
    from esb.resync.resync import Resync
    from esb.sync.store import SyncStore, SyncWrite

    project = Project.load(project_dir, environ={})
    spec = project.settings.sync.resync["customer-ncr"]
    transform = project.transforms.get(spec.transform)
    url = project.settings.journal.url
    with Journal(url) as journal, SyncStore(url) as store:
        engine = Resync(project, journal, store, "customer-ncr", spec)
        blocks, parse = extract_blocks(project, spec.extract, before)
        writes: list[SyncWrite] = []
        prints: dict[str, tuple[str, int]] = {}
        for number, raw in ((n, raw) for first, raws in blocks for n, raw in enumerate(raws, first)):
            fields, _ = parse(number, raw)
            change, projection = engine.syncer.change(transform.apply(Message(body=fields, id="seed")))
            writes.append(
                SyncWrite("customer-ncr", change.key, change.hash, change.version, False, "seed", projection)
            )
            prints[change.key] = (engine.fingerprints.of(raw), 1)  # revision 1: the row put_many creates
            if len(writes) == 5000:
                store.put_many(writes)
                if fingerprints:
                    engine.fingerprints.remember(prints)
                writes, prints = [], {}
        store.put_many(writes)
        if fingerprints:
            engine.fingerprints.remember(prints)
        engine.close()


def child_resync(project_dir: Path, extract: Path) -> dict[str, Any]:
    """One timed resync; returns its figures and counts."""
    from esb.journal import Journal
    from esb.project import Project
    from esb.resync.extract import extract_blocks
    from esb.resync.resync import Resync
    from esb.sync.store import SyncStore

    project = Project.load(project_dir, environ={})
    spec = project.settings.sync.resync["customer-ncr"]
    url = project.settings.journal.url
    with Journal(url) as journal, SyncStore(url) as store:
        engine = Resync(project, journal, store, "customer-ncr", spec)
        start, cpu = time.perf_counter(), time.process_time()
        run = engine.run(*extract_blocks(project, spec.extract, extract), str(extract))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        engine.close()
    depth = _depth(project)
    return {
        "records": run.counts["read"],
        "seconds": seconds,
        "rate": run.counts["read"] / seconds,
        "cpu_rate": run.counts["read"] / cpu,
        "peak_mb": _peak_mb(),
        "counts": run.counts,
        "queue": depth,
    }


def _depth(project: Any) -> int:
    from esb.typing import QueueInspector, capability

    inspector = capability(project.adapter_for("ncr.customers"), QueueInspector)
    assert inspector is not None
    return int(inspector.queue_depth(project.endpoint("ncr.customers"), project.context("ncr.customers")))


def child_reconcile(project_dir: Path, extract: Path) -> dict[str, Any]:
    """One timed reconciliation; returns its figures and counts."""
    from esb.project import Project
    from esb.resync.extract import extract_records
    from esb.resync.reconcile import Reconciler
    from esb.sync.store import SyncStore

    project = Project.load(project_dir, environ={})
    spec = project.settings.sync.reconcile["customer-ncr"]
    with SyncStore(project.settings.journal.url) as store:
        start = time.perf_counter()
        found = Reconciler(project, store, "customer-ncr", spec).run(
            extract_records(project, spec.extract, extract), str(extract)
        )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _peak_mb(), "counts": found.counts}


def child_baseline(path: Path) -> dict[str, Any]:
    """bench/batch_bench.py's hand-written parser over a charge file of the same record count."""
    from bench.batch_bench import handwritten

    start, cpu = time.perf_counter(), time.process_time()
    n = handwritten(path, None, None)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"records": n, "seconds": seconds, "rate": n / seconds, "cpu_rate": n / cpu, "peak_mb": _peak_mb()}


def run(*args: str) -> dict[str, Any]:
    """Run one child in a fresh interpreter; return its JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    """Generate the files, seed the store, run the sides, print figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="resync runs (each on a fresh copy of the store)"
    )
    parser.add_argument(
        "--journal-url", default=None, help="PostgreSQL URL (default: SQLite in the work folder)"
    )
    parser.add_argument(
        "--no-fingerprints",
        action="store_true",
        help="seed the state only, as live traffic leaves it (every record is parsed, mapped and judged)",
    )
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        paths = [Path(p) for p in rest]
        if kind == "seed":
            seed(paths[0], paths[1], rest[2] == "yes")
            print(json.dumps({}))
        else:
            figures = {"resync": child_resync, "reconcile": child_reconcile}.get(kind)
            print(json.dumps(figures(*paths) if figures else child_baseline(paths[0])))
        return 0
    from simulators.batch_files import write_charge_file
    from tests.sync_project import make_sync_project, write_crm_extract, write_ncr_extract

    n = args.records
    work = Path(tempfile.mkdtemp(prefix="syncbench-"))
    try:
        t = time.perf_counter()
        pristine = work / "pristine"
        make_sync_project(pristine, args.journal_url or f"sqlite:///{pristine / 'journal.db'}", chunk=1000)
        before, after = work / "before.dat", work / "CRM_CUST_FULL_20261206_001.dat"
        write_crm_extract(before, _records(n, changed=False))
        write_crm_extract(after, _records(n, changed=True))
        write_ncr_extract(work / "ncr.dat", _records(n, changed=True))
        charges = work / "CHG_571_20240531_001.dat"
        write_charge_file(charges, n)
        print(
            f"generated {n:,} customers ({after.stat().st_size / 1e6:.0f} MB), NCR's extract and "
            f"{n:,} charges in {time.perf_counter() - t:.1f}s"
        )
        t = time.perf_counter()
        run("seed", str(pristine), str(before), "no" if args.no_fingerprints else "yes")
        print(f"seeded the store with {n:,} synced customers in {time.perf_counter() - t:.1f}s (untimed)")
        bases, ours, loads = [], [], []
        last = pristine
        for index in range(args.repeat):  # alternated: the parser, then a resync on a fresh copy
            if args.journal_url is None:
                last = work / f"run{index}"
                make_sync_project(last, f"sqlite:///{last / 'journal.db'}", chunk=1000)
                shutil.copy(pristine / "journal.db", last / "journal.db")
            bases.append(run("baseline", str(charges)))
            ours.append(run("resync", str(last), str(after)))
            loads.append(os.getloadavg()[0])
            result = ours[-1]
            assert result["counts"]["sent"] == n // 100, result["counts"]
            assert result["queue"] == n // 100, result["queue"]
            print(
                f"   run {index + 1}: resync {result['rate']:,.0f} rec/s ({result['seconds']:.1f} s), parser "
                f"{bases[-1]['rate']:,.0f} rec/s: ratio {result['rate'] / bases[-1]['rate']:.2f}, CPU-time "
                f"ratio {result['cpu_rate'] / bases[-1]['cpu_rate']:.2f} (load {loads[-1]:.1f})"
            )
            if args.journal_url is not None:
                break  # PostgreSQL: one run (the store is not copied back)
        ratios = [o["rate"] / b["rate"] for b, o in zip(bases, ours, strict=True)]
        cpu_ratio = statistics.median(o["cpu_rate"] / b["cpu_rate"] for b, o in zip(bases, ours, strict=True))
        ratio = statistics.median(ratios)
        median = ours[ratios.index(sorted(ratios)[len(ratios) // 2])]
        peak = max(o["peak_mb"] for o in ours)
        rate = statistics.median(o["rate"] for o in ours)
        seconds = statistics.median(o["seconds"] for o in ours)
        print(
            f"A. resync: {median['records']:,} records, median {rate:,.0f} rec/s ({seconds:.1f} s), "
            f"sent {median['counts']['sent']:,} "
            f"(exactly the changed: OK), unchanged {median['counts']['unchanged']:,}, peak {peak:.0f} MB "
            f"({'OK' if peak < 300 else 'OVER'} < 300 MB)"
        )
        print(
            f"   hand-written batch parser: median {statistics.median(b['rate'] for b in bases):,.0f} rec/s "
            f"(peak {max(b['peak_mb'] for b in bases):.0f} MB); ratio, median of {len(ratios)} alternated "
            f"runs: {ratio:.2f} (per run {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.5: "
            f"{'OK' if ratio >= 0.5 else 'MISSED'}); CPU-time ratio {cpu_ratio:.2f}; load "
            f"{min(loads):.1f}-{max(loads):.1f}"
        )
        rec = run("reconcile", str(last), str(work / "ncr.dat"))
        c = rec["counts"]
        print(
            f"B. reconcile: {c['target_records']:,} target records against {c['hub_keys']:,} hub keys "
            f"in {rec['seconds']:.1f}s ({'OK' if rec['seconds'] < 60 else 'MISSED'} < 60 s), "
            f"same {c['same']:,}, "
            f"missing {c['missing']}, extra {c['extra']}, different {c['different']}, "
            f"peak {rec['peak_mb']:.0f} MB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
