"""Journal throughput on the hot path: received + event(delivered) + mark_delivered per message.

Prints messages/s and journal calls/s for the journal on SQLite (one thread and several), and, as the
baseline measured in the same run, the same three transactions written with the bare ``sqlite3`` module
(same pragmas, ``BEGIN IMMEDIATE``), so the ratio shows what SQLAlchemy Core and the journal's logic cost.
``ESB_BENCH_PG_URL=postgresql+psycopg://...`` adds a PostgreSQL run.

    .venv/bin/python bench/journal_bench.py [messages]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from esb.journal import Journal
from esb.message import Message, utcnow

BODY = b'{"order":"1-ABC"}' * 20  # 340 bytes


def journal_run(url: str, n: int, threads: int = 1) -> float:
    """Return messages/s through the journal with ``threads`` writers."""
    with Journal(url) as journal:

        def work(part: int) -> None:
            for i in range(n // threads):
                m = Message(body=BODY, id=f"{part}-{i}", business_keys={"order_id": f"{i}"})
                journal.received("orders", m)
                journal.event("orders", m, "delivered", endpoint="billing")
                journal.mark_delivered("orders", m, "billing")

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return (n // threads * threads) / (time.perf_counter() - start)


def baseline_run(path: Path, n: int) -> float:
    """Return messages/s for the same rows written with bare sqlite3 (schema made by the journal)."""
    Journal(f"sqlite:///{path}").connect()
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        db.execute(f"PRAGMA {pragma}")
    start = time.perf_counter()
    for i in range(n):
        now = utcnow().isoformat(" ")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO messages (id, route, correlation_id, headers, body, created_at, received_at,"
            " attempt, delivery_count) VALUES (?, 'orders', ?, NULL, ?, ?, ?, 1, 1) ON CONFLICT DO NOTHING",
            (str(i), str(i), BODY, now, now),
        )
        db.execute(
            "INSERT INTO events (message_id, route, state, at) VALUES (?, 'orders', 'received', ?)",
            (str(i), now),
        )
        db.execute(
            "INSERT INTO business_keys VALUES (?, 'order_id', ?) ON CONFLICT DO NOTHING", (str(i), str(i))
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO events (message_id, route, state, endpoint, at)"
            " VALUES (?, 'orders', 'delivered', 'billing', ?)",
            (str(i), now),
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO deliveries VALUES ('orders', ?, 'billing', ?) ON CONFLICT DO NOTHING", (str(i), now)
        )
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


def main() -> None:
    """Run every measurement and print figures and ratios."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_run(Path(tmp) / "base.db", n)
        one = journal_run(f"sqlite:///{tmp}/one.db", n)
        four = journal_run(f"sqlite:///{tmp}/four.db", n, threads=4)
    print(f"messages: {n} (3 journal calls each: received, event, mark_delivered)")
    show("bare sqlite3 baseline", base, base)
    show("journal, SQLite, 1 thread", one, base)
    show("journal, SQLite, 4 threads", four, base)
    pg_url = os.environ.get("ESB_BENCH_PG_URL")
    if pg_url:
        show("journal, PostgreSQL, 1 thread", journal_run(pg_url, n), base)


def show(label: str, rate: float, base: float) -> None:
    """Print one line of figures."""
    print(f"{label:30} {rate:8.0f} msg/s {rate * 3:8.0f} calls/s  ({rate / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
