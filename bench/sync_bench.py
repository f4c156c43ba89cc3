"""What the ``sync`` step costs per message, and the sync store's bulk passes (docs/sync.md, Figures).

    .venv/bin/python bench/sync_bench.py [--n 2000] [--rows 100000] [--url sqlite:///...]

Per message (the step's processor on a fresh SQLite journal database): a new key (read + insert), a
changed key (read + compare-and-set update), an unchanged key (one read, plus a version write when the
version moved on) and a stale one (one read). Baseline, in the same run and database: the journal's
ingress write of the same messages (``Journal.received``, one transaction each), the write every message
pays anyway. Then the bulk API a resync uses: ``put_many`` of ``--rows`` keys in chunks of 1,000,
``iterate`` over them (light columns, then with bodies), ``get_many`` per chunk, with the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from esb.expressions import Expression
from esb.journal import Journal
from esb.message import Message
from esb.processors.sync import Syncer, SyncRule
from esb.sync.content import content_hash
from esb.sync.store import SyncStore, SyncWrite

FIELDS = ("name", "status", "contactMedium", "account")


def customer(key: int, version: int, name: str = "张伟") -> dict[str, object]:
    """A canonical-looking customer (about 400 bytes of JSON)."""
    return {
        "id": f"CUST-{key:08d}",
        "name": name,
        "status": "active",
        "lastUpdate": version,
        "contactMedium": [{"mediumType": "mobile", "characteristic": {"phoneNumber": f"138{key:08d}"}}],
        "account": [{"id": f"ACCT-{key:010d}", "@referredType": "BillingAccount"}],
        "note": "x" * 200,
    }


def per_message(label: str, n: int, run: Callable[[int], object]) -> float:
    """Run ``run(i)`` for i < n; print and return µs per call."""
    started = time.perf_counter()
    for index in range(n):
        run(index)
    micros = (time.perf_counter() - started) / n * 1e6
    print(f"  {label:<44} {micros:>9.0f} µs")
    return micros


def step_figures(url: str, n: int) -> None:
    """The step per message against the journal's ingress write."""
    rule = SyncRule("bench", Expression("body.id"), FIELDS, Expression("body.lastUpdate"))
    syncer = Syncer(rule, url, "bench-route")
    with Journal(url) as journal:
        print(f"per message ({n} messages, SQLite)")
        base = per_message(
            "baseline: Journal.received (one commit)",
            n,
            lambda i: journal.received("bench-route", Message(body=b"{}", id=f"j{i}")),
        )
        figures = {
            "new key (read + insert)": per_message(
                "new key (read + insert)", n, lambda i: syncer(Message(body=customer(i, 10), id=f"a{i}"))
            ),
            "changed (read + compare-and-set)": per_message(
                "changed (read + compare-and-set)",
                n,
                lambda i: syncer(Message(body=customer(i, 20, "李娜"), id=f"b{i}")),
            ),
            "unchanged, newer version (read + advance)": per_message(
                "unchanged, newer version (read + advance)",
                n,
                lambda i: syncer(Message(body=customer(i, 30, "李娜"), id=f"c{i}")),
            ),
            "unchanged, same version (one read)": per_message(
                "unchanged, same version (one read)",
                n,
                lambda i: syncer(Message(body=customer(i, 30, "李娜"), id=f"d{i}")),
            ),
            "stale (one read)": per_message(
                "stale (one read)", n, lambda i: syncer(Message(body=customer(i, 5, "旧"), id=f"e{i}"))
            ),
        }
    syncer.close()
    print("  ratio to the baseline: " + ", ".join(f"{k} {v / base:.2f}x" for k, v in figures.items()))


def bulk_figures(url: str, rows: int) -> None:
    """put_many, iterate and get_many over ``rows`` keys, with peak memory."""
    print(f"bulk ({rows:,} keys, chunks of 1,000)")
    with SyncStore(url) as store:
        started = time.perf_counter()
        for start in range(0, rows, 1000):
            store.put_many(
                [
                    SyncWrite("bulk", f"K{i:08d}", content_hash({"i": i}), i, False, f"m{i}", customer(i, i))
                    for i in range(start, min(start + 1000, rows))
                ]
            )
        seconds = time.perf_counter() - started
        print(f"  put_many                                     {rows / seconds:>9,.0f} rows/s")
        for bodies in (False, True):
            started = time.perf_counter()
            count = sum(len(chunk) for chunk in store.iterate("bulk", chunk=1000, bodies=bodies))
            seconds = time.perf_counter() - started
            label = "iterate, with bodies" if bodies else "iterate, light columns"
            print(f"  {label:<44} {count / seconds:>9,.0f} rows/s")
        started = time.perf_counter()
        for start in range(0, rows, 1000):
            store.get_many("bulk", [f"K{i:08d}" for i in range(start, min(start + 1000, rows))])
        seconds = time.perf_counter() - started
        print(f"  get_many per 1,000 keys                      {rows / seconds:>9,.0f} rows/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of the whole run                    {peak:>9,.0f} MB")


def main() -> None:
    """Parse arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per case")
    parser.add_argument("--rows", type=int, default=100_000, help="keys for the bulk passes")
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='esb-sync-bench-')) / 'journal.db'}"
    step_figures(url, args.n)
    bulk_figures(url, args.rows)


if __name__ == "__main__":
    main()
