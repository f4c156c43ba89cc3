"""Batch adapter: records/s from a GBK fixed-width file to messages, with peak memory.

Compared in the same run with a minimal hand-written parser of the same layout (slice bytes, decode,
convert, build a dict; reads the file from the page cache, no staging, no checks, no envelope). Each
measurement runs in a fresh subprocess so peak RSS is its own; imports are loaded before the clock.

  A. messages: 1,000,000 records (--records) from the file dropped in a local inbox: staging (copy,
             SHA-256 and the whole-file check in one read, fsync, rename), then one Message + Delivery per
             record, acked, checkpoints every 500 records (the default)   vs   hand-written parser
  B. queue:  --queue-records records published as messages on the embedded queue (SQLite transport,
             queue adapter's sink), adapter vs hand-written parser + same sink

The sides run --repeat times, alternated (a busy machine slows both alike); the ratio is of the best runs,
with the range of per-pair ratios and the ratio of CPU time, so noise shows.
Targets: adapter rate >= 0.5 x the hand-written parser; adapter peak RSS < 200 MB at any file size.
Usage: .venv/bin/python bench/batch_bench.py [--records N] [--queue-records N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


def adapter(work: Path, path: Path, limit: int | None, sink: Any) -> int:
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
            "layout": "config/layouts/billing_charge_record.yaml",
            "inbound": {
                "pattern": "CHG_*",
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
        time.perf_counter()
        n = 0
        while (delivery := source.read(0)) is not None:
            if sink is not None:
                sink.write(delivery.message)
            delivery.ack()
            n += 1
            if limit is not None and n >= limit:
                break
        return n


def child(mode: str, path: Path, limit: int | None, queue: bool) -> None:
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
    start, cpu = time.perf_counter(), time.process_time()
    n = handwritten(path, limit, sink) if mode == "handwritten" else adapter(work, path, limit, sink)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
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


def run(mode: str, path: Path, limit: int | None, queue: bool) -> dict[str, float]:
    """Run ``child`` in a fresh interpreter."""
    args = [sys.executable, __file__, "--child", mode, "--file", str(path), "--limit", str(limit or 0)]
    out = subprocess.run(
        args + (["--queue"] if queue else []), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _report(label: str, bases: list[dict[str, float]], ours: list[dict[str, float]]) -> None:
    base = max(bases, key=lambda r: r["rate"])
    best = max(ours, key=lambda r: r["rate"])
    ratios = [o["rate"] / b["rate"] for b, o in zip(bases, ours, strict=True)]
    cpu = max(o["cpu_rate"] for o in ours) / max(b["cpu_rate"] for b in bases)
    peak = max(o["peak_mb"] for o in ours)
    print(
        f"{label}: hand-written {base['rate']:,.0f} rec/s (peak {base['peak_mb']:.0f} MB), adapter "
        f"{best['rate']:,.0f} rec/s (peak {peak:.0f} MB) over {best['records']:,} records; "
        f"ratio of best runs {best['rate'] / base['rate']:.2f} (target >= 0.5; per pair "
        f"{min(ratios):.2f}-{max(ratios):.2f}; CPU time {cpu:.2f}), "
        f"peak {'OK' if peak < 200 else 'OVER'} (< 200 MB)"
    )


def main() -> int:
    """Generate the file, run both sides, print figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queue-records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--child")
    parser.add_argument("--file")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--queue", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.file), args.limit or None, args.queue)
        return 0
    from simulators.batch_files import write_charge_file

    folder = Path(tempfile.mkdtemp(prefix="batchbench-file-"))
    path = folder / "CHG_571_20240531_001.dat"
    t = time.perf_counter()
    write_charge_file(path, args.records)
    print(
        f"generated {args.records:,} GBK fixed-width records ({path.stat().st_size / 1e6:.0f} MB) "
        f"in {time.perf_counter() - t:.1f}s"
    )
    small = folder / "small" / path.name
    small.parent.mkdir()
    write_charge_file(small, args.queue_records)
    for label, file, queue in (
        ("A. file -> messages", path, False),
        ("B. -> embedded queue", small, True),
    ):
        bases, ours = [], []
        for _ in range(args.repeat):  # alternate the two sides: a busy machine slows both alike
            bases.append(run("handwritten", file, None, queue))
            ours.append(run("adapter", file, None, queue))
        _report(label, bases, ours)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
