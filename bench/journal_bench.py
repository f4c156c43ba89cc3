"""Journal throughput on the hot path: received + event(delivered) + mark_delivered per message.

Prints messages/s and journal calls/s for the journal on SQLite (one thread and several), and, as the
baseline measured in the same run, the same three transactions written with the bare ``sqlite3`` module
(same pragmas, ``BEGIN IMMEDIATE``), so the ratio shows what SQLAlchemy Core and the journal's logic cost.
``ESB_BENCH_PG_URL=postgresql+psycopg://...`` adds a PostgreSQL run.

``--bytes N`` measures the journal's bytes per message of the real CRM-order route instead (issue 19):
the route runs on N Siebel orders (the demo's generator) with the journal as it is now; the same rows
are then written again as the journal stored them before migration 0006 (raw bodies, JSON ``null``,
the 0003 schema: rowid tables, the name-and-value key index, the route-and-time event index), as the
baseline of the same run. Both files are compacted (``VACUUM INTO``) and the size of an empty journal of
the same schema is subtracted, so the figure is what each message adds.

    .venv/bin/python bench/journal_bench.py [messages]
    .venv/bin/python bench/journal_bench.py --bytes 2000
    .venv/bin/python bench/journal_bench.py --dead-letter-index 2000 [rounds]

``--dead-letter-index N`` measures the write cost of migration 0009's covering dead-letter index: N
messages journaled as dead-lettered with the index before and after it, alternated (see
``dead_letter_index_cost``).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
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


def compacted_size(path: Path, folder: Path) -> int:
    """Bytes of ``path`` rewritten compactly (``VACUUM INTO`` a new file)."""
    target = folder / f"{path.stem}-compact.db"
    db = sqlite3.connect(path)
    db.execute(f"VACUUM INTO '{target}'")
    db.close()
    return target.stat().st_size


def old_format_copy(journal: Journal, source: Path, target: Path) -> None:
    """Write the rows of ``source`` again as the journal stored them before migration 0006."""
    import sqlalchemy as sa
    from alembic import command

    from esb.journal.migrate import alembic_config

    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003_processes")
    engine.dispose()
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    null = lambda value: "null" if value is None else value  # noqa: E731 - main wrote JSON null as text
    for table, body_at, json_at in (("messages", 8, (7,)), ("events", 9, (8,))):
        rows = []
        for row in src.execute(f"SELECT * FROM {table}"):
            values = list(row)
            values[body_at] = journal.decode_body(values[body_at])
            for index in json_at:
                values[index] = null(values[index])
            rows.append(values)
        dst.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    for table, cols in (
        ("deliveries", "route, message_id, endpoint, at"),
        ("business_keys", "message_id, name, value"),
    ):
        rows = src.execute(f"SELECT {cols} FROM {table}").fetchall()
        dst.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(rows[0]))})", rows)
    dst.commit()
    dst.close()
    src.close()


def empty_sizes(folder: Path) -> tuple[int, int]:
    """Compacted bytes of an empty journal now and of an empty one at the 0003 schema."""
    import sqlalchemy as sa
    from alembic import command

    from esb.journal.migrate import alembic_config

    Journal(f"sqlite:///{folder}/empty-new.db").connect()
    engine = sa.create_engine(f"sqlite:///{folder}/empty-old.db")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003_processes")
    engine.dispose()
    return compacted_size(folder / "empty-new.db", folder), compacted_size(folder / "empty-old.db", folder)


def bytes_per_message(n: int, prefix: str) -> None:
    """Run the CRM-order route on ``n`` orders; print bytes per message now and in the old format."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.route_bench import ROUTE, bodies, hub_project, publish, wait_done
    from esb.logging import configure_logging
    from esb.runtime.hub import Hub

    configure_logging("warning")
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    payloads = bodies(n)
    ids = publish(project, payloads, prefix)
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    wait_done(hub, ids)
    hub.stop()
    source = project.settings.data_dir / "journal.db"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Journal(f"sqlite:///{source}") as journal:
            old_format_copy(journal, source, folder / "old.db")
            counts = {
                t: journal.usage().rows[t] for t in ("messages", "events", "deliveries", "business_keys")
            }
        empty_new, empty_old = empty_sizes(folder)
        new = (compacted_size(source, folder) - empty_new) / n
        old = (compacted_size(folder / "old.db", folder) - empty_old) / n
    body_in = sum(len(b) for b in payloads) / n
    rows = sum(counts.values()) / n
    print(f"CRM-order route, {n} orders (ingress body {body_in:,.0f} B), {rows:.0f} rows a message: {counts}")
    print(f"message ids like {ids[-1]!r} ({len(ids[-1])} characters)")
    print(f"{'journal before migration 0006 (same rows)':44} {old:8,.0f} B/message  1.00")
    print(
        f"{'journal now (compressed bodies, compact)':44} {new:8,.0f} B/message  {new / old:.2f}"
        f"  (target <= 1,536 B: {'met' if new <= 1536 else 'NOT met'})"
    )


def dead_letter_run(path: Path, n: int, covering: bool) -> tuple[float, float]:
    """Journal ``n`` messages that end dead-lettered (received, failed, dead_lettered) into a fresh file;
    ``covering`` False: with the dead-letter index as before migration 0009 (on ``at`` alone). Return
    wall and CPU (process) microseconds per message."""
    with Journal(f"sqlite:///{path}") as journal:
        if not covering:
            db = sqlite3.connect(path)
            db.execute("DROP INDEX ix_events_dead_lettered")
            db.execute("CREATE INDEX ix_events_dead_lettered ON events (at) WHERE state = 'dead_lettered'")
            db.close()
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            m = Message(body=BODY, id=f"dead-{i}", business_keys={"order_id": f"{i}"})
            journal.received("orders", m)
            journal.event("orders", m, "failed", error="refused")
            journal.event("orders", m, "dead_lettered", endpoint="dlq.orders", error="refused")
        return (time.perf_counter() - wall) * 1e6 / n, (time.process_time() - cpu) * 1e6 / n


def dead_letter_index_cost(n: int, rounds: int = 3) -> None:
    """Print the write cost of 0009's covering dead-letter index: dead-lettered messages journaled with
    the index before and after it, alternated, median of ``rounds`` (only dead-lettered events are in
    this partial index: a delivered message writes nothing to it)."""
    samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    loads: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for covering in (False, True):
                samples[covering].append(dead_letter_run(Path(tmp) / f"{r}-{covering}.db", n, covering))
                loads.append(f"{os.getloadavg()[0]:.1f}")
    print(f"dead-lettered messages: {n} x {rounds} rounds alternated (received, failed, dead_lettered)")
    base_wall = statistics.median(w for w, _ in samples[False])
    base_cpu = statistics.median(c for _, c in samples[False])
    for covering, label in ((False, "index on at (before 0009)"), (True, "covering index (0009)")):
        wall = statistics.median(w for w, _ in samples[covering])
        cpu = statistics.median(c for _, c in samples[covering])
        print(
            f"{label:28} {wall:8.0f} us/msg wall ({wall / base_wall:.3f}x)"
            f" {cpu:8.0f} us/msg CPU ({cpu / base_cpu:.3f}x)"
        )
    print(f"load averages: {' '.join(loads)}")


def main() -> None:
    """Run every measurement and print figures and ratios."""
    if len(sys.argv) > 2 and sys.argv[1] == "--dead-letter-index":
        dead_letter_index_cost(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--bytes":
        bytes_per_message(int(sys.argv[2]), "bytes")  # short ids, as route_bench.py sends
        bytes_per_message(int(sys.argv[2]), uuid.uuid4().hex[:25])  # ids as long as esb's own (32 hex)
        return
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
