"""The journal's batched path on PostgreSQL (or SQLite): CPU of the hub process and of the server per message.

    .venv/bin/python bench/journal_pg_batch.py [--batches 20] [--size 200] [--rounds 3] [--sqlite]

Starts a throwaway PostgreSQL server on loopback and writes what the CRM-order route's batched path
writes per batch of ``--size`` messages: ``received_many`` (the ingress rows with a ~2,250-byte body,
their ``received`` events and three business keys each), then ``settle_many`` (one output per message:
its row, its ``delivered`` event with the body sent, the route-level event and its keys). Prints the
client process's CPU (``time.process_time``) and the PostgreSQL server's CPU (its processes, from /proc)
per message, and the wall time, as the median of ``--rounds`` rounds of ``--batches`` batches on a
fresh database each. ``--sqlite`` writes the same batches to a fresh SQLite file per round instead (the
embedded default's journal: no server, so its CPU column reads 0). ``--url URL --pg-data DIR`` writes the
rounds into an existing PostgreSQL journal instead (a 10 M one: the inserts' cost where its indexes are
large; new message ids each run), ``DIR`` the server's data folder (its CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rabbit_bench import postgres_cpu  # bench/ is not a package: its folder is on sys.path
from servers import throwaway_postgres

from esb.journal import Journal
from esb.message import Message

ROUTE = "crm-order-to-iom"


def batch(size: int, round_no: int, number: int) -> list[tuple[Message, int]]:
    """``size`` ingress messages with Siebel-sized bodies and three business keys each."""
    body = os.urandom(1125).hex().encode()
    return [
        (
            Message(
                body=body,
                type="crm.order",
                source="crm.orders",
                business_keys={
                    "order_id": f"SO{round_no}-{number}-{i}",
                    "msisdn": f"1330755{i:04d}",
                    "account_id": f"A{i}",
                },
            ),
            1,
        )
        for i in range(size)
    ]


def one_round(
    journal: Journal, batches: int, size: int, round_no: int, postmaster: int | None
) -> tuple[float, float, float]:
    """(client CPU, server CPU, wall) in µs per message for ``batches`` batches."""
    work = [batch(size, round_no, n) for n in range(batches)]
    outputs = [
        [(m, [(m.replace(type="iom.order", body=m.body_bytes()[:800]), "iom.orders_in")]) for m, _ in items]
        for items in work
    ]
    pg0, cpu0, wall0 = postgres_cpu(postmaster), time.process_time(), time.perf_counter()
    for items, sent in zip(work, outputs, strict=True):
        journal.received_many(ROUTE, items)
        journal.settle_many(ROUTE, [(m, "delivered", s) for m, s in sent])
    cpu, wall, pg = time.process_time() - cpu0, time.perf_counter() - wall0, postgres_cpu(postmaster) - pg0
    count = batches * size
    return cpu * 1e6 / count, pg * 1e6 / count, wall * 1e6 / count


def postmaster_pid(data: Path) -> int | None:
    """The PostgreSQL server's main process, from its data folder."""
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--url", help="an existing PostgreSQL journal to write into (not dropped)")
    parser.add_argument("--pg-data", type=Path, help="with --url: the server's data folder (its CPU)")
    args = parser.parse_args()
    figures: list[tuple[float, float, float]] = []
    if args.url:
        postmaster = postmaster_pid(args.pg_data) if args.pg_data else None
        with Journal(args.url) as journal:
            one_round(journal, 2, args.size, 1000, postmaster)  # warm-up
            for round_no in range(args.rounds):
                figures.append(one_round(journal, args.batches, args.size, round_no, postmaster))
        report(figures)
        return
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            for round_no in range(args.rounds):
                with Journal(f"sqlite:///{folder}/journal-{round_no}.db") as journal:
                    one_round(journal, 2, args.size, 1000 + round_no, None)  # warm-up
                    figures.append(one_round(journal, args.batches, args.size, round_no, None))
        report(figures)
        return
    with throwaway_postgres() as pg:
        postmaster = postmaster_pid(pg.data)
        for round_no in range(args.rounds):
            url = pg.create_database("journal_bench")
            with Journal(url) as journal:
                one_round(journal, 2, args.size, 1000 + round_no, postmaster)  # warm-up
                figures.append(one_round(journal, args.batches, args.size, round_no, postmaster))
            pg.drop_database(url)
    report(figures)


def report(figures: list[tuple[float, float, float]]) -> None:
    """Print the medians and each round's figure, with the load average."""
    load = os.getloadavg()[0]
    for name, at in (("hub process CPU", 0), ("PostgreSQL CPU", 1), ("wall", 2)):
        values = [f[at] for f in figures]
        print(
            f"{name:<20} µs/msg median {statistics.median(values):7.1f}  "
            f"({', '.join(f'{v:.1f}' for v in values)})"
        )
    print(f"load average {load:.1f}")


if __name__ == "__main__":
    main()
