"""Journal throughput on the hot path: received + mark_delivered + event(delivered) per message.

Prints messages/s and journal calls/s for the journal on SQLite (one thread and several), and, as the
baseline measured in the same run, the same three transactions written with the bare ``sqlite3`` module
(same pragmas, ``BEGIN IMMEDIATE``), so the ratio shows what SQLAlchemy Core and the journal's logic cost.
``ESB_BENCH_PG_URL=postgresql+psycopg://...`` adds a PostgreSQL run.

``--bytes N`` measures the journal's bytes per message of the real CRM-order route instead (issue 19):
the route runs on N Siebel orders (the demo's generator) with the journal as it is now, once with short
ids and once with esb's own (32 hex); the same rows are then written again as the journal stored them
at migration 0006 (ids in events, keys and a deliveries table) and before it (raw bodies, JSON ``null``,
the 0003 schema: rowid tables, the name-and-value key index, the route-and-time event index), as the
baselines of the same run. Both files are compacted (``VACUUM INTO``) and the size of an empty journal of
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
                journal.mark_delivered("orders", m, "billing")  # the delivered event naming the endpoint
                journal.event("orders", m, "delivered")  # the route-level end

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
        seq = db.execute(
            "INSERT INTO messages (id, route, correlation_id, headers, body, created_at, received_at,"
            " attempt, delivery_count) VALUES (?, 'orders', ?, NULL, ?, ?, ?, 1, 1) ON CONFLICT DO NOTHING"
            " RETURNING seq",
            (str(i), str(i), BODY, now, now),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO events (message_seq, route, state, at) VALUES (?, 'orders', 'received', ?)",
            (seq, now),
        )
        db.execute(
            "INSERT INTO business_keys VALUES (?, 'order_id', ?) ON CONFLICT DO NOTHING", (seq, str(i))
        )
        db.execute("COMMIT")
        for endpoint in ("billing", None):
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO events (message_seq, route, state, endpoint, at)"
                " VALUES (?, 'orders', 'delivered', ?, ?)",
                (seq, endpoint, now),
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


#: The rows of a journal at 0007 as the tables before it held them (ids in events and keys, deliveries),
#: in the column order of those tables.
_AS_BEFORE = {
    "messages": "SELECT id, route, correlation_id, causation_id, type, source, schema, headers, body,"
    " created_at, received_at, attempt, delivery_count FROM messages ORDER BY seq",
    "events": "SELECT e.id, m.id, e.route, e.state, e.endpoint, e.error_class, e.error_reason, e.error_text,"
    " e.detail, e.body, e.at FROM events e JOIN messages m ON m.seq = e.message_seq ORDER BY e.id",
    "deliveries": "SELECT m.route, m.id, e.endpoint, min(e.at) FROM events e JOIN messages m"
    " ON m.seq = e.message_seq WHERE e.state = 'delivered' AND e.endpoint IS NOT NULL"
    " GROUP BY m.route, m.id, e.endpoint",
    "business_keys": "SELECT DISTINCT m.id, k.name, k.value FROM business_keys k"
    " JOIN messages m ON m.seq = k.message_seq",
}


def copy_as_before(journal: Journal, source: Path, target: Path, revision: str) -> None:
    """Write the rows of ``source`` again as the journal stored them at ``revision``: ``0006_journal_compact``
    (the same compressed bodies and dictionaries), or ``0003_processes`` (raw bodies, JSON ``null`` text)."""
    import sqlalchemy as sa
    from alembic import command

    from esb.journal.migrate import alembic_config

    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    engine.dispose()
    raw = revision.startswith("0003")
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    null = lambda value: "null" if value is None else value  # noqa: E731 - before 0006: JSON null as text
    for table, query in _AS_BEFORE.items():
        rows = [list(row) for row in src.execute(query)]
        body_json = {"messages": (8, 7), "events": (9, 8)}.get(table)
        if raw and body_json is not None:
            for values in rows:
                values[body_json[0]] = journal.decode_body(values[body_json[0]])
                values[body_json[1]] = null(values[body_json[1]])
        if rows:
            dst.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    if not raw:
        dicts = src.execute("SELECT id, kind, data, created_at FROM journal_dictionaries").fetchall()
        dst.executemany("INSERT INTO journal_dictionaries VALUES (?, ?, ?, ?)", dicts)
    dst.commit()
    dst.close()
    src.close()


def empty_size(folder: Path, revision: str | None) -> int:
    """Compacted bytes of an empty journal at ``revision`` (None: head)."""
    import sqlalchemy as sa
    from alembic import command

    from esb.journal.migrate import alembic_config

    path = folder / f"empty-{revision or 'head'}.db"
    if revision is None:
        Journal(f"sqlite:///{path}").connect()
    else:
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        engine.dispose()
    return compacted_size(path, folder)


def publish_orders(project: object, payloads: list[bytes], prefix: str | None) -> list[str]:
    """Publish ``payloads`` on the CRM queue with ids ``prefix-N``, or esb's own (32 hex) when None."""
    from bench.route_bench import publish
    from esb.message import Message
    from simulators.crm import CRMSimulator

    if prefix is not None:
        return publish(project, payloads, prefix)  # type: ignore[arg-type]
    ids = []
    with CRMSimulator(project) as crm:  # type: ignore[arg-type]
        for body in payloads:
            message = Message(body=body)
            crm.send(message)
            ids.append(message.id)
    return ids


BEFORE = (
    ("0003_processes", "journal before migration 0006 (same rows)"),
    ("0006_journal_compact", "journal at 0006 (same rows: ids in events, keys, deliveries)"),
)


def bytes_per_message(n: int, prefix: str | None) -> None:
    """Run the CRM-order route on ``n`` orders; print bytes per message now and as before 0006 and 0007."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.route_bench import ROUTE, bodies, hub_project, wait_done
    from esb.logging import configure_logging
    from esb.runtime.hub import Hub

    configure_logging("warning")
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    payloads = bodies(n)
    ids = publish_orders(project, payloads, prefix)
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    wait_done(hub, ids)
    hub.stop()
    source = project.settings.data_dir / "journal.db"
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Journal(f"sqlite:///{source}") as journal:
            for revision, _ in BEFORE:
                copy_as_before(journal, source, folder / f"{revision}.db", revision)
                sizes[revision] = (
                    compacted_size(folder / f"{revision}.db", folder) - empty_size(folder, revision)
                ) / n
            counts = {t: journal.usage(exact=True).rows[t] for t in ("messages", "events", "business_keys")}
        new = (compacted_size(source, folder) - empty_size(folder, None)) / n
    body_in = sum(len(b) for b in payloads) / n
    rows = sum(counts.values()) / n
    print(f"CRM-order route, {n} orders (ingress body {body_in:,.0f} B), {rows:.0f} rows a message: {counts}")
    print(f"message ids like {ids[-1]!r} ({len(ids[-1])} characters)")
    first = sizes[BEFORE[0][0]]
    for revision, label in BEFORE:
        print(f"{label:62} {sizes[revision]:8,.0f} B/message  {sizes[revision] / first:.2f}")
    print(
        f"{'journal now (0007: message id once, deliveries are events)':62} {new:8,.0f} B/message"
        f"  {new / first:.2f}  ({new / sizes[BEFORE[1][0]]:.2f} of 0006;"
        f" target <= 1,536 B: {'met' if new <= 1536 else 'NOT met'})"
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
        bytes_per_message(int(sys.argv[2]), None)  # esb's own ids (uuid4, 32 hex)
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_run(Path(tmp) / "base.db", n)
        one = journal_run(f"sqlite:///{tmp}/one.db", n)
        four = journal_run(f"sqlite:///{tmp}/four.db", n, threads=4)
    print(f"messages: {n} (3 journal calls each: received, mark_delivered, event)")
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
