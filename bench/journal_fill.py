"""Fill a journal with millions of realistic messages by bulk insert (SQLite or PostgreSQL), in minutes.

    .venv/bin/python bench/journal_fill.py URL --messages 10000000 [--days 35]

The rows are the ones the hub writes. First the real ``crm-order-to-iom`` route runs on 100 Siebel orders
(the demo's generator) in a throwaway data folder; its journal rows are the templates: per order one
message row (the Siebel XML, compressed with its dictionary), four events (received; delivered to
``iom.orders_in`` and ``hub.product_orders``, each with the body sent: the deliveries; the route's
delivered) and three business keys (order_id, account_id, customer_id), in the schema of migration 0007
(events and keys refer to the message row's ``seq``). The templates' dictionaries are
copied with their ids, so every body in the filled journal decodes to real bytes (a copy of one of the
100 template bodies: the order number inside a body does not match its keys).

Messages, oldest first, spread evenly over ``--days`` days up to now:
- 90 % CRM orders: 96 % delivered as above, 3 % filtered (received, filtered), 1 % dead-lettered
  (received, failed, dead_lettered with a schema error), keys: order id, account id, customer id;
- 10 % 112 fault tickets on ``fault112-to-hub`` (a ~400-byte JSON body, received, delivered to
  ``hub.fault_tickets``, delivered), keys: ticket id and MSISDN (random 133/153/189 numbers).

On PostgreSQL the server generates the rows (``INSERT ... SELECT`` over ``generate_series`` and the
templates: bench/journal_fill_pg.py), each in the partition of its day (migration 0012): 10 M messages in
~22 min here instead of ~55 min through ``COPY`` from Python; the rows are the same (a test compares them)
except the MSISDNs' digits.

Message ids are ``crm-000000000001`` / ``flt-000000000002`` (increasing, so the keys grow at the end);
``--id-length 32`` pads them to esb's own 32 characters. The per-minute figures (``route_minutes``) are
computed from the events at the end, by migration 0015's backfill (esb/journal/rollup.py). Secondary
indexes are dropped before the fill and built after it (a sort, much faster than 10 M random inserts).
The target must hold no messages yet.
``keys.json`` beside a SQLite file (or printed) lists sample keys old and new, for
``bench/journal_scale_bench.py`` and the console's page timings.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esb.journal import Journal  # noqa: E402
from esb.journal.bodies import pack  # noqa: E402
from esb.journal.engine import create_journal_engine  # noqa: E402
from esb.journal.rollup import backfill  # noqa: E402
from esb.journal.schema import dictionaries, events, messages  # noqa: E402

CRM_ROUTE = "crm-order-to-iom"
FAULT_ROUTE = "fault112-to-hub"
TEMPLATES = 100
#: Rows per executemany chunk (SQLite).
CHUNK = 20_000
#: Secondary indexes rebuilt after the fill (name, table, columns, where).
INDEXES = (
    ("ix_messages_correlation_id", "messages", "correlation_id", None),
    ("ix_messages_causation_id", "messages", "causation_id", "causation_id IS NOT NULL"),
    ("ix_messages_received_at", "messages", "received_at", None),
    ("ux_messages_id_route", "messages", "id, route", None),
    ("ix_events_message_seq", "events", "message_seq", None),
    ("ix_events_at", "events", "at", None),
    ("ix_events_dead_lettered", "events", "at, id, message_seq, route, state", "state = 'dead_lettered'"),
    ("ix_business_keys_value", "business_keys", "value", None),
)
#: Columns of each row the fill writes, in the schema's order (the values are built in that order).
MESSAGE_COLS = tuple(column.name for column in messages.c)
EVENT_COLS = tuple(column.name for column in events.c)


def templates() -> dict[str, Any]:
    """Run the real CRM-order route on TEMPLATES orders; return its rows per message and its dictionaries."""
    from bench.route_bench import ROUTE, bodies, hub_project, publish, wait_done
    from esb.logging import configure_logging
    from esb.runtime.hub import Hub

    configure_logging("warning")
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    ids = publish(project, bodies(TEMPLATES + 20), "tpl")
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    wait_done(hub, ids)
    hub.stop()
    engine = sa.create_engine(f"sqlite:///{project.settings.data_dir}/journal.db")
    with engine.connect() as conn:
        dicts = [dict(r) for r in conn.execute(sa.select(dictionaries)).mappings()]
        rows = []
        for mid in ids[20:]:  # the first ones were dictionary samples (plain DEFLATE): leave them out
            message = dict(conn.execute(sa.select(messages).where(messages.c.id == mid)).mappings().one())
            evs = [
                dict(e)
                for e in conn.execute(
                    sa.select(events).where(events.c.message_seq == message["seq"]).order_by(events.c.id)
                ).mappings()
            ]
            rows.append((message, evs))
    engine.dispose()
    return {"dictionaries": dicts, "orders": rows}


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


FAULT_BODY = orjson.dumps(
    {
        "id": "F0",
        "faultNo": "F0",
        "msisdn": "13300000000",
        "accessNumber": "0755-0000000",
        "category": "no-dial-tone",
        "reportedAt": "2026-11-01T08:00:00+08:00",
        "channel": "112",
        "description": "No dial tone since this morning; the line light is off. 报障：早上起无拨号音。",
        "address": {"city": "Shenzhen", "district": "Nanshan", "street": "Keyuan Road 1"},
        "contact": {"name": "张伟", "phone": "13300000000"},
    }
)


class Filler:
    """Generates the rows of N messages and writes them in chunks through a backend writer."""

    def __init__(
        self,
        tpl: dict[str, Any],
        n: int,
        days: float,
        seed: int = 7,
        text_times: bool = False,
        id_length: int = 16,
    ) -> None:
        self.tpl, self.n = tpl, n
        self.pad = "0" * max(id_length - 16, 0)
        #: SQLite: timestamps as the text SQLAlchemy stores (naive UTC), made once per message
        self.stamp: Any = _ts if text_times else (lambda value: value)
        self.end = datetime.now(UTC)
        self.start = self.end - timedelta(days=days)
        self.step = (self.end - self.start) / max(n, 1)
        self.rng = random.Random(seed)
        self.event_id = 0
        self.fault_body = pack(FAULT_BODY)
        self.samples: dict[str, list[str]] = {
            "order_id": [],
            "msisdn": [],
            "ticket_id": [],
            "dead_letter": [],
        }

    def _event(
        self,
        mid: int,
        route: str,
        state: str,
        at: Any,
        endpoint: str | None = None,
        body: bytes | None = None,
        error: tuple[str, str, str] | None = None,
    ) -> tuple[Any, ...]:
        self.event_id += 1
        ec, er, et = error or (None, None, None)
        return (self.event_id, mid, route, state, endpoint, ec, er, et, None, body, at)

    def rows(self, first: int, last: int) -> tuple[list[tuple[Any, ...]], ...]:
        """Return (messages, events, business_keys) rows for messages ``first..last-1`` (seq ``i + 1``)."""
        msgs: list[tuple[Any, ...]] = []
        evs: list[tuple[Any, ...]] = []
        keys: list[tuple[Any, ...]] = []
        orders = self.tpl["orders"]
        sample = max(self.n // 200, 1)
        for i in range(first, last):
            when = self.start + self.step * i
            at, late = self.stamp(when), self.stamp(when + timedelta(milliseconds=40 + i % 60))
            seq = i + 1
            if i % 10 == 9:
                mid = f"flt-{self.pad}{i:012d}"
                msisdn = f"{self.rng.choice(('133', '153', '189'))}{self.rng.randrange(10**8):08d}"
                ticket = f"F{2026000000 + i}"
                msgs.append(
                    (
                        seq,
                        mid,
                        FAULT_ROUTE,
                        mid,
                        None,
                        None,
                        "fault112.tickets",
                        None,
                        None,
                        self.fault_body,
                        at,
                        at,
                        1,
                        1,
                    )
                )
                evs.append(self._event(seq, FAULT_ROUTE, "received", at))
                evs.append(
                    self._event(seq, FAULT_ROUTE, "delivered", late, "hub.fault_tickets", self.fault_body)
                )
                evs.append(self._event(seq, FAULT_ROUTE, "delivered", late))
                keys += [(seq, "msisdn", msisdn), (seq, "ticket_id", ticket)]
                if i % sample == 9 % sample:
                    self.samples["msisdn"].append(msisdn)
                    self.samples["ticket_id"].append(ticket)
                continue
            mid = f"crm-{self.pad}{i:012d}"
            message, template = orders[i % len(orders)]
            msgs.append(
                (
                    seq,
                    mid,
                    CRM_ROUTE,
                    mid,
                    None,
                    None,
                    message["source"],
                    None,
                    None,
                    message["body"],
                    at,
                    at,
                    1,
                    1,
                )
            )
            evs.append(self._event(seq, CRM_ROUTE, "received", at))
            order = f"SO{2026000000000 + i}"
            keys += [
                (seq, "account_id", f"1-BA{i % 700_000:07d}"),
                (seq, "customer_id", f"1-ACC{i % 500_000:07d}"),
                (seq, "order_id", order),
            ]
            kind = i % 100
            if kind == 0:
                error = (
                    "SchemaValidationError",
                    "schema-violation",
                    "product_order.v1: 'billingAccount' is a required property",
                )
                evs.append(self._event(seq, CRM_ROUTE, "failed", late, error=error))
                evs.append(
                    self._event(seq, CRM_ROUTE, "dead_lettered", late, "dlq.crm-order-to-iom", error=error)
                )
                if len(self.samples["dead_letter"]) < 1000:
                    self.samples["dead_letter"].append(mid)
            elif kind in (1, 2, 3):
                evs.append(self._event(seq, CRM_ROUTE, "filtered", late))
            else:
                for event in template[1:]:
                    evs.append(
                        self._event(seq, CRM_ROUTE, event["state"], late, event["endpoint"], event["body"])
                    )
            if i % sample == 0:
                self.samples["order_id"].append(order)
        return msgs, evs, keys


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for first in range(0, n, CHUNK // 10):
        yield first, min(first + CHUNK // 10, n)


def fill_sqlite(path: str, filler: Filler) -> None:
    """Bulk insert with the sqlite3 module (synchronous off during the fill), then build the indexes."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1000000")
    for name, *_ in INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    db.execute("PRAGMA foreign_keys = OFF")  # the rows are consistent by construction
    _insert_dictionaries(lambda sql, rows: db.executemany(sql, rows), filler, ts=_ts)
    for first, last in _chunks(filler.n):
        msgs, evs, keys = filler.rows(first, last)
        db.execute("BEGIN")
        db.executemany(_insert("messages", MESSAGE_COLS), msgs)
        db.executemany(_insert("events", EVENT_COLS), evs)
        db.executemany(_insert("business_keys", ("message_seq", "name", "value")), keys)
        db.execute("COMMIT")
        _progress(last, filler.n)
    _build_indexes(db.execute)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _insert(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _insert_dictionaries(run: Any, filler: Filler, ts: Any) -> None:
    rows = [(d["id"], d["kind"], d["data"], ts(d["created_at"])) for d in filler.tpl["dictionaries"]]
    run("INSERT INTO journal_dictionaries (id, kind, data, created_at) VALUES (?, ?, ?, ?)", rows)


def _build_indexes(run: Any, skip: tuple[str, ...] = ()) -> None:
    for name, table, column, where in INDEXES:
        if name in skip:
            continue
        started = time.perf_counter()
        unique = "UNIQUE " if name.startswith("ux_") else ""
        where = f" WHERE {where}" if where else ""
        run(f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {table} ({column}){where}")
        print(f"  index {name}: {time.perf_counter() - started:.0f} s", flush=True)


def fill_postgres(url: str, filler: Filler) -> dict[str, list[str]]:
    """Generate the rows on the server (bench/journal_fill_pg.py), then build the indexes; return the
    sample keys."""
    from bench.journal_fill_pg import generate
    from esb.runtime.leader import pg_connect

    with pg_connect(url) as conn:
        for name, *_ in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO journal_dictionaries (id, kind, data, created_at) VALUES (%s, %s, %s, %s)",
                [(d["id"], d["kind"], d["data"], d["created_at"]) for d in filler.tpl["dictionaries"]],
            )
        samples = generate(conn, filler, _progress)
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('journal_dictionaries', 'id'),"
            " (SELECT max(id) FROM journal_dictionaries))"
        )
        partitioned = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass").fetchone()
        # a partitioned journal has the unique (id, route) on each day's partition (made by generate)
        skip = ("ux_messages_id_route",) if partitioned[0] == "p" else ()
        if conn.execute("SELECT to_regclass('lookup_ids')").fetchone()[0] is not None:
            skip += ("ix_business_keys_value",)  # migration 0017 dropped it (esb/journal/lookups.py)
        _build_indexes(conn.execute, skip)
        conn.execute("ANALYZE")
    return samples


_last_print = [0.0]


def _progress(done: int, total: int) -> None:
    if time.monotonic() - _last_print[0] > 30 or done == total:
        _last_print[0] = time.monotonic()
        print(f"  {done:,} / {total:,} messages", flush=True)


def fill(url: str, n: int, days: float, id_length: int = 16) -> dict[str, Any]:
    """Fill the journal at ``url`` (migrated first; must hold no messages); return sample keys."""
    with Journal(url) as journal, journal._read().connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one():
            raise SystemExit(f"{url}: the journal holds messages already: fill an empty one")
    started = time.perf_counter()
    tpl = templates()
    print(f"templates from the real route: {time.perf_counter() - started:.0f} s", flush=True)
    filler = Filler(tpl, n, days, text_times=url.startswith("sqlite"), id_length=id_length)
    started = time.perf_counter()
    if url.startswith("sqlite"):
        fill_sqlite(sa.engine.make_url(url).database or "", filler)
    else:
        filler.samples = fill_postgres(url, filler)
    took = time.perf_counter() - started
    print(f"filled {n:,} messages ({filler.event_id:,} events) in {took:.0f} s ({n / took:,.0f} msg/s)")
    started = time.perf_counter()
    engine = create_journal_engine(url, pool_size=1)
    with engine.begin() as conn:
        backfill(conn)  # the per-minute figures, as migration 0015 computes them from the events
    engine.dispose()
    print(f"  route_minutes: {time.perf_counter() - started:.0f} s", flush=True)
    return {"messages": n, "days": days, "fill_seconds": round(took, 1), "keys": filler.samples}


def main() -> None:
    """Parse the arguments and fill."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="journal URL (default: a new SQLite file in a temp folder)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=35.0)
    parser.add_argument("--id-length", type=int, default=16, help="message id length (esb's own: 32)")
    parser.add_argument("--keys", type=Path, default=None, help="write the sample keys (JSON) here")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='journal-fill-')}/journal.db"
    found = fill(url, args.messages, args.days, args.id_length)
    out = args.keys or (
        Path(sa.engine.make_url(url).database or ".").parent / "keys.json"
        if url.startswith("sqlite")
        else Path("keys.json")
    )
    out.write_bytes(orjson.dumps(found))
    print(f"journal: {url.split('@')[-1]}  sample keys: {out}")


if __name__ == "__main__":
    main()
