"""DBOS, requirement 9 (memory): resident memory of one process with N instances waiting for a reply.

A waiting DBOS workflow lives in the process: a synchronous one holds an OS thread blocked in
``DBOS.recv``, an ``async`` one a coroutine in ``DBOS.recv_async``. Each mode runs in its own process;
RSS and the thread count are printed at every quarter of N; a restart recovers (re-runs) all of them.

    python bench/process_eval/dbos_memory.py [--pg] [--n 10000] [--mode both|sync|async]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

from common import HERE, PYTHON, Database, Report, open_database, parse_args, rss_mb
from dbos import DBOS, SetWorkflowID


@DBOS.workflow()
def wait_sync() -> object:
    """Wait an hour for a reply (a thread per instance)."""
    return DBOS.recv("reply", timeout_seconds=3600)


@DBOS.workflow()
async def wait_async() -> object:
    """Wait an hour for a reply (a coroutine per instance)."""
    return await DBOS.recv_async("reply", timeout_seconds=3600)


def pending(prefix: str) -> int:
    """Return how many instances have reached their recv (their sleep/recv checkpoint exists)."""
    rows = DBOS.list_workflows(
        status="PENDING", workflow_id_prefix=prefix, load_input=False, load_output=False
    )
    return len(rows)


def child(url: str, mode: str, n: int) -> None:
    """Start ``n`` waiting instances of ``mode`` and print RSS at each quarter."""
    DBOS(
        config={
            "name": "esb_mem",
            "system_database_url": url,
            "log_level": "ERROR",
            "application_version": "mem",
        }
    )
    DBOS.launch()
    base = rss_mb()
    print(f"      {mode}: RSS after launch {base:.0f} MB", flush=True)
    began = time.perf_counter()
    handles = []
    for i in range(n):
        with SetWorkflowID(f"{mode}-{i}"):
            if mode == "sync":
                handles.append(DBOS.start_workflow(wait_sync))
            else:
                handles.append(
                    asyncio.run_coroutine_threadsafe(DBOS.start_workflow_async(wait_async), loop()).result()
                )
        if (i + 1) % (n // 4) == 0:
            time.sleep(1.0)
            print(
                f"      {mode}: {i + 1} waiting: RSS {rss_mb():.0f} MB"
                f" (+{(rss_mb() - base) / (i + 1) * 1000:.1f} KB each),"
                f" {threading.active_count()} threads, {time.perf_counter() - began:.0f} s",
                flush=True,
            )
    DBOS.destroy(workflow_completion_timeout_sec=0)
    os._exit(0)


_LOOP: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """Return an event loop running in a thread (where the async workflows are started)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        threading.Thread(target=_LOOP.run_forever, daemon=True).start()
    return _LOOP


def run(db: Database, report: Report, n: int, modes: list[str]) -> None:
    """Run each mode in its own process on ``db``."""
    for mode in modes:
        done = subprocess.run(
            [PYTHON, str(HERE / "dbos_memory.py"), "--child", db.url, mode, str(n)],
            cwd=HERE,
            timeout=3600,
            check=False,
            capture_output=True,
            text=True,
        )
        print(done.stdout, end="", flush=True)
        lines = [line for line in done.stdout.splitlines() if "waiting: RSS" in line]
        if done.returncode != 0 or len(lines) < 4:
            report.check(
                f"9c {mode}: {n} waiting instances", False, f"exit {done.returncode}: {done.stderr[-400:]}"
            )
            continue
        rss = [float(line.split("RSS ")[1].split(" MB")[0]) for line in lines]
        slope = (rss[-1] - rss[0]) / (0.75 * n) * 1000
        report.check(
            f"9c {mode}: memory flat with {n} waiting instances",
            slope < 1.0,
            f"RSS {rss[0]:.0f} MB at {n // 4}, {rss[-1]:.0f} MB at {n}:"
            f" +{slope:.1f} KB per further waiting instance"
            " (each waits in the process, not only in the database)",
        )


def main() -> int:
    """Run the memory measurement (or, with --child, one mode of it)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    args = parse_args(__doc__, {"n": 10000, "mode": "both"})
    report = Report(f"DBOS memory on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report, args.n, ["sync", "async"] if args.mode == "both" else [args.mode])
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
