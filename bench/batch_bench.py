"""Batch adapter: records/s from a GBK fixed-width file to messages, with peak memory, against two baselines.

Two baselines, each measured in the same run as the adapter on the very same file:

- the project's own **hand-written parser** of the Billing charge layout (slice bytes, decode, strip,
  convert, build a dict; reads the file from the page cache, no staging, no checks, no envelope);
- the **independent parser** ``bench/baselines/gbk_batch.py`` (a minimal hand-written parser written
  outside the project, copied unchanged from ``../shared/baselines``, run untouched as its own program on
  the file it writes; the adapter reads that file with ``gbk_batch_layout.yaml``, checks included).
  ``$ESB_BASELINES`` points at another copy; a missing one is skipped with a message saying so.

Each measurement runs in a fresh subprocess so peak RSS is its own; imports are loaded before the clock.

  A. messages:   --records records (1,000,000) from the file dropped in a local inbox: staging (copy,
                 SHA-256 and the whole-file check in one read, fsync, rename), then one Message + Delivery
                 per record, acked, checkpoints every 500 records (the default)  vs  hand-written parser
  I. independent: the same work on gbk_batch.py's file of --records records  vs  gbk_batch.py parse
  B. queue:      --queue-records records published as messages on the embedded queue (SQLite transport,
                 queue adapter's sink), adapter vs hand-written parser + same sink
  M. memory:     the adapter's peak RSS on files of --memory-records records each (flat in file size?)

The sides run --repeat times, alternated (a busy machine slows all alike). Printed per comparison: the
median rates, the median of the per-run ratios (each adapter run against the baseline run beside it) with
their range, and the median ratio of CPU time (records per CPU second: steadier on a shared machine).
Targets (issue 19): adapter >= 0.7 x the hand-written parser and >= 0.4 x the independent one; adapter
peak RSS < 200 MB at any file size and flat.
Usage: .venv/bin/python bench/batch_bench.py [--records N] [--queue-records N] [--repeat 3]
       [--memory-records 200000,3000000] [--profile] [--stages]
  --profile: cProfile of one adapter run (top 25); --stages: CPU time per record of each stage, apart
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
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: The independent baselines, copied unchanged from ../shared/baselines (bench/README.md, the last section).
BASELINES = Path(os.environ.get("ESB_BASELINES") or ROOT / "bench" / "baselines")
CHARGE_LAYOUT = "config/layouts/billing_charge_record.yaml"
TARGET_HANDWRITTEN, TARGET_INDEPENDENT, PEAK_LIMIT_MB = 0.7, 0.4, 200


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def handwritten(path: Path, limit: int | None, sink: Any) -> int:
    """The baseline: a minimal parser of the Billing charge layout, no checks beyond conversions."""
    n = 0
    with path.open("rb") as f:
        next(f)
        for line in f:
            if line[:1] != b"D":
                break
            body = {
                "record_type": "D",
                "charge_id": line[1:21].decode("gb18030").strip(),
                "account_id": line[21:37].decode("gb18030").strip(),
                "msisdn": line[37:48].decode("gb18030").strip(),
                "charge_code": line[48:56].decode("gb18030").strip(),
                "charge_name": line[56:76].decode("gb18030").strip(),
                "amount": str(Decimal(int(line[76:88])).scaleb(-2)),
                "currency": line[88:91].decode("gb18030"),
                "bill_cycle": line[91:97].decode("gb18030"),
                "charge_date": line[97:105].decode("gb18030"),
                "tax_amount": str(Decimal(int(line[105:115])).scaleb(-2)),
            }
            n += 1
            if sink is not None:
                from esb.message import Message

                sink.write(Message(body=body, id=f"h:{n}", type="billing.charge_record"))
            if limit is not None and n >= limit:
                break
    return n


def adapter(work: Path, path: Path, layout: str, limit: int | None, sink: Any) -> int:
    """The batch source over a local folder holding the file; timed from staged to all records acked."""
    from adapters.batch import BatchEndpoint, BatchSource
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    inbox = work / "inbox"
    inbox.mkdir()
    os.link(path, inbox / path.name)
    (inbox / f"{path.name}.ok").write_bytes(b"")
    endpoint = BatchEndpoint.model_validate(
        {
            "adapter": "batch",
            "remote": {"protocol": "local", "path": str(inbox)},
            "encoding": "gbk",
            "layout": layout,
            "inbound": {
                "pattern": "*.dat",
                "poll": {"interval": 3600},
                "message_type": "billing.charge_record",
            },
        }
    )
    context = AdapterContext(
        settings=Settings(data_dir=work / "var"), project_dir=ROOT, endpoint="billing.in"
    )
    with BatchSource(endpoint, context, schedule=False) as source:
        source.poll_now()
        n = 0
        while (delivery := source.read(0)) is not None:
            if sink is not None:
                sink.write(delivery.message)
            delivery.ack()
            n += 1
            if limit is not None and n >= limit:
                break
        rows = source.store.files_in("failed")
        if rows:
            raise SystemExit(f"the adapter refused {path.name}: {rows[0]['error']}")
        return n


def child(mode: str, path: Path, layout: str, limit: int | None, queue: bool, profile: bool) -> None:
    """Run one measurement and print JSON."""
    work = Path(tempfile.mkdtemp(prefix="batchbench-"))
    sink = None
    if queue:
        from adapters.queue import QueueAdapter
        from adapters.queue.config import QueueEndpoint
        from esb.config.settings import Settings
        from esb.context import AdapterContext

        settings = Settings(data_dir=work / "q").resolve_paths(work)
        (work / "q").mkdir()
        sink = QueueAdapter().sink(
            QueueEndpoint(queue=f"bench.{mode}"),
            AdapterContext(settings=settings, project_dir=ROOT, endpoint="bench.q"),
        )
        sink.connect()
    if mode != "handwritten":  # imports are not the adapter's per-file work: load them before the clock
        import adapters.batch.source  # noqa: F401
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu = time.perf_counter(), time.process_time()
    n = handwritten(path, limit, sink) if mode == "handwritten" else adapter(work, path, layout, limit, sink)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    shutil.rmtree(work, ignore_errors=True)  # the staged copy of a 1,000,000-record file is 122 MB
    print(
        json.dumps(
            {
                "records": n,
                "seconds": seconds,
                "rate": n / seconds,
                "cpu_rate": n / cpu,
                "peak_mb": _peak_mb(),
            }
        )
    )


def run(mode: str, path: Path, *, layout: str = CHARGE_LAYOUT, queue: bool = False) -> dict[str, float]:
    """Run ``child`` in a fresh interpreter."""
    args = [sys.executable, __file__, "--child", mode, "--file", str(path), "--layout", layout]
    out = subprocess.run(
        args + (["--queue"] if queue else []), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def independent(path: Path) -> dict[str, float]:
    """Run the independent parser untouched, as its own program: its own clock and peak RSS; its CPU time
    is the child's user + system time (interpreter start included, ~20 ms of ~3 s: < 1% in its favour)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, str(BASELINES / "gbk_batch.py"), "parse", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    fields = dict(part.split("=") for part in out.stdout.split())
    records = int(fields["records"])
    return {
        "records": records,
        "rate": float(fields["records_per_s"]),
        "cpu_rate": records / cpu,
        "peak_mb": float(fields["peak_rss_mb"]),
    }


def _report(
    label: str, name: str, target: float, bases: list[dict[str, float]], ours: list[dict[str, float]]
) -> float:
    ratios = [o["rate"] / b["rate"] for b, o in zip(bases, ours, strict=True)]
    median = statistics.median(ratios)
    cpu = ""
    if all("cpu_rate" in b for b in bases):
        cpu_ratio = statistics.median(o["cpu_rate"] / b["cpu_rate"] for b, o in zip(bases, ours, strict=True))
        cpu = f"; CPU time {cpu_ratio:.2f}"
    peak = max(o["peak_mb"] for o in ours)
    base_rate, rate = statistics.median(b["rate"] for b in bases), statistics.median(o["rate"] for o in ours)
    print(
        f"{label}: {name} {base_rate:,.0f} rec/s (peak {max(b['peak_mb'] for b in bases):.0f} MB), "
        f"adapter {rate:,.0f} rec/s (peak {peak:.0f} MB) over {int(ours[0]['records']):,} records; "
        f"ratio (median of {len(ratios)}) "
        f"{median:.2f} (target >= {target}: {'MET' if median >= target else 'NOT MET'}; per run "
        f"{min(ratios):.2f}-{max(ratios):.2f}{cpu})"
    )
    return median


def stages(path: Path) -> None:
    """Where each microsecond of a record goes: CPU time per record of each stage, measured apart."""
    import hashlib

    from adapters.batch.layouts import load_layout
    from adapters.batch.parsers import FixedWidthReader
    from adapters.batch.staging import stage

    count = sum(1 for _ in path.open("rb")) - 2
    reader = FixedWidthReader(load_layout(Path(CHARGE_LAYOUT), ROOT), "gb18030", 1 << 20)
    work = Path(tempfile.mkdtemp(prefix="batchbench-stages-"))

    def copy(out: Any) -> None:
        with path.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    def timed(label: str, work_: Any) -> float:
        cpu = time.process_time()
        work_()
        per = (time.process_time() - cpu) / count * 1e6
        print(f"  {label:<58} {per:5.2f} us/record")
        return per

    print(f"S. stages, CPU time per record over {count:,} records:")
    timed("staging: copy + SHA-256 + fsync + rename", lambda: stage(work, path.name, copy))
    timed("  of which SHA-256 alone", lambda: hashlib.sha256(path.read_bytes()).digest())
    timed("whole-file check (scan.py, 1 MB blocks)", lambda: reader.scan(path))
    first = len(path.open("rb").readline())
    timed(
        "parse pass, record by record (FixedPlan.parse, before)",
        lambda: sum(1 for _ in reader.records(path, first, 0)),
    )
    timed(
        "parse pass, blocks (FixedPlan.parse_fields, now)",
        lambda: sum(len(b.bodies) for b in reader.blocks(path, first, 0)),
    )
    shutil.rmtree(work, ignore_errors=True)
    whole = run("adapter", path)
    print(f"  {'the whole adapter (wall: staging to the last ack)':<58} {1e6 / whole['rate']:5.2f} us/record")
    print(f"  {'the whole adapter (CPU)':<58} {1e6 / whole['cpu_rate']:5.2f} us/record")


def _memory(folder: Path, sizes: list[int]) -> None:
    from simulators.batch_files import write_charge_file

    peaks = []
    for size in sizes:
        path = folder / "memory" / f"CHG_571_20240531_{size}.dat"
        path.parent.mkdir(exist_ok=True)
        write_charge_file(path, size)
        result = run("adapter", path)
        path.unlink()
        peaks.append(result["peak_mb"])
        print(f"M. memory: adapter peak {result['peak_mb']:.0f} MB on {size:,} records")
    verdict = "OK" if max(peaks) < PEAK_LIMIT_MB and max(peaks) - min(peaks) < 10 else "NOT FLAT or OVER"
    span = f"{sizes[0]:,}-{sizes[-1]:,} records"
    print(f"M. memory: peak {min(peaks):.0f}-{max(peaks):.0f} MB over {span}: {verdict}")


def main() -> int:
    """Generate the files, run every side alternated, print figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queue-records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--memory-records", default="200000,3000000", help="file sizes for M ('' skips)")
    parser.add_argument("--profile", action="store_true", help="one profiled adapter run, then exit")
    parser.add_argument("--stages", action="store_true", help="CPU time per record of each stage, then exit")
    parser.add_argument("--child")
    parser.add_argument("--file")
    parser.add_argument("--layout", default=CHARGE_LAYOUT)
    parser.add_argument("--queue", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.file), args.layout, None, args.queue, args.profile)
        return 0
    from simulators.batch_files import write_charge_file

    folder = Path(tempfile.mkdtemp(prefix="batchbench-file-"))
    try:
        path = folder / "CHG_571_20240531_001.dat"
        t = time.perf_counter()
        write_charge_file(path, args.records)
        print(
            f"generated {args.records:,} GBK fixed-width records ({path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.1f}s"
        )
        if args.stages:
            stages(path)
            return 0
        if args.profile:
            subprocess.run(
                [sys.executable, __file__, "--child", "adapter", "--file", str(path), "--profile"],
                check=True,
                cwd=ROOT,
            )
            return 0
        anchor = folder / "anchor" / "GBK_anchor.dat"
        anchor_layout = BASELINES / "gbk_batch_layout.yaml"
        have_independent = (BASELINES / "gbk_batch.py").is_file() and anchor_layout.is_file()
        if have_independent:
            anchor.parent.mkdir()
            subprocess.run(
                [sys.executable, str(BASELINES / "gbk_batch.py"), "make", str(args.records), str(anchor)],
                check=True,
            )
        else:
            print(f"I. independent parser: SKIPPED, {BASELINES}/gbk_batch.py not found (set ESB_BASELINES)")
        small = folder / "small" / path.name
        small.parent.mkdir()
        write_charge_file(small, args.queue_records)
        hand, ours, indep, ours_anchor = [], [], [], []
        for _ in range(args.repeat):  # alternate the sides: a busy machine slows all alike
            hand.append(run("handwritten", path))
            ours.append(run("adapter", path))
            if have_independent:
                indep.append(independent(anchor))
                ours_anchor.append(run("adapter", anchor, layout=str(anchor_layout)))
        _report("A. file -> messages", "hand-written", TARGET_HANDWRITTEN, hand, ours)
        if have_independent:
            _report("I. independent file", "gbk_batch.py", TARGET_INDEPENDENT, indep, ours_anchor)
        qbase, qours = [], []
        for _ in range(args.repeat):
            qbase.append(run("handwritten", small, queue=True))
            qours.append(run("adapter", small, queue=True))
        _report("B. -> embedded queue", "hand-written", TARGET_HANDWRITTEN, qbase, qours)
        if args.memory_records:
            _memory(folder, [int(s) for s in args.memory_records.split(",")])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
