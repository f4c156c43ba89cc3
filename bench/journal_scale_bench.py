"""Operators' queries on a journal of millions of messages: trace, replay selection, key search, dead letters,
``esb journal stats``.

    .venv/bin/python bench/journal_scale_bench.py --messages 1000000            # fills a temp SQLite first
    .venv/bin/python bench/journal_scale_bench.py --messages 1000000 --pg       # and a throwaway PostgreSQL
    .venv/bin/python bench/journal_scale_bench.py --url sqlite:////data/journal.db --keys keys.json

The journal is filled by ``bench/journal_fill.py`` (the CRM-order route's rows, spread over 35 days) unless
``--url`` names one filled before (with its ``keys.json``). Each query runs in this process on a warm
engine (the figure is the query, not the command's start-up: see bench/README.md for a cold ``esb trace``),
for 20 keys of each sort, old (first days) and new (last days); printed: median, p90 and max in ms,
against the 100 ms target of issue 18, with the load average at the end of each row. The baseline in the
same run is one primary-key look-up of a message row (what no query can beat). Opening a journal of an
older schema migrates it first (the time is printed). ``esb journal stats`` (``Journal.usage``) is timed
estimated (the default) and, with ``--exact-stats``, counting every row once.

``--cold ROUNDS`` then times each query (and two console pages) on a truly cold journal, ROUNDS times:
before each one the journal's own files leave the page cache (bench/page_cache.py; other people's files
stay cached): a SQLite file and its WAL evicted, or a PostgreSQL server kept by ``bench/servers.py
postgres start BASE`` (``--pg-base BASE``) stopped, its data folder evicted and started again. Printed:
the first call after the eviction (the journal's opening apart), a new key or window each round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.journal_fill import CRM_ROUTE, fill  # noqa: E402
from bench.page_cache import evicter  # noqa: E402
from esb.journal import Journal  # noqa: E402
from esb.journal.schema import messages  # noqa: E402
from esb.ops.replay import Selection, select  # noqa: E402
from esb.ops.trace import build_trace  # noqa: E402
from esb.project import Project  # noqa: E402

TARGET_MS = 100.0
PER_SORT = 20


#: CPU (process) milliseconds of the calls timed since the last printed line (a busy machine inflates
#: wall time far more than CPU time).
_cpu: list[float] = []


def timed(call: Callable[[], Any], cpu_ms: list[float] | None = None) -> float:
    """Return the milliseconds one call takes (its CPU milliseconds noted in ``cpu_ms``, by default for
    the next line)."""
    started, cpu = time.perf_counter(), time.process_time()
    call()
    (_cpu if cpu_ms is None else cpu_ms).append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - started) * 1000


def figures(label: str, samples: list[float], cpu_ms: list[float] | None = None) -> str:
    """One line: median, p90, max, whether the max is under the target, the median CPU (of ``cpu_ms``,
    by default of the calls timed since the last line), the load."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    ok = "ok" if ordered[-1] < TARGET_MS else "OVER"
    load = os.getloadavg()[0]
    median = statistics.median(ordered)
    noted = _cpu if cpu_ms is None else cpu_ms
    cpu = statistics.median(noted) if noted else float("nan")
    noted.clear()
    return f"  {label:60} {median:8.1f} {p90:8.1f} {ordered[-1]:8.1f}  {ok:4} cpu {cpu:7.1f}  load {load:.1f}"


def replay_selection(
    journal: Journal, since: Any, window: timedelta, state: str | None = None, *, with_state: bool = False
) -> Callable[[], Any]:
    """``esb replay --route crm-order-to-iom [--state STATE]`` over ``window`` from ``since`` (at most
    1,000): :func:`esb.ops.replay.select`'s query, which reads neither business keys nor, without
    ``--state``, the rows' latest state unless ``with_state`` (what it did before)."""
    until = since + window
    return lambda: journal.find(
        route=CRM_ROUTE,
        since=since,
        until=until,
        state=state,
        limit=1000,
        with_keys=False,
        with_state=with_state,
    )


def dead_letters_in(journal: Journal, since: Any, days: float, reads: str = "select") -> Callable[[], Any]:
    """``esb replay --route crm-order-to-iom --state dead_lettered`` over ``days`` from ``since``, up to
    ``reads``: ``select``, :func:`esb.ops.replay.select` (the count and the ids: what esb replay has before
    its confirmation; since 0018 from ``dead_letters``' index alone); ``first``, and the first page of
    records (what the first re-publish waits for, its body apart); ``all``, every record, page by page
    (the whole replay's reads, the bodies apart); ``find``, every record up front by ``find`` (the
    selection before 0018)."""
    if reads == "find":
        return replay_selection(journal, since, timedelta(days=days), "dead_lettered")
    selection = Selection(
        route=CRM_ROUTE, since=since, until=since + timedelta(days=days), state="dead_lettered", limit=1000
    )
    project = cast(Project, None)  # select reads no project

    def run() -> Any:
        chosen = select(journal, project, selection)
        if reads == "first" and chosen:
            return chosen[0]
        return list(chosen) if reads == "all" else chosen

    return run


def measure(url: str, keys: dict[str, list[str]], exact_stats: bool = False, stats: bool = True) -> list[str]:
    """Run every query on the journal at ``url`` (``esb journal stats`` unless not ``stats``); return the
    printed lines."""
    out = [f"  {'query (ms)':60} {'median':>8} {'p90':>8} {'max':>8}"]
    started = time.perf_counter()
    with Journal(url, pool_size=2) as journal:
        opened = time.perf_counter() - started
        out.insert(0, f"opened (migrated to head if it was behind) in {opened:.1f} s")
        engine = journal._read()
        if stats:
            usage = journal.usage()
            out.insert(
                0,
                f"journal: ~{usage.messages:,} messages, {usage.bytes / 2**30:.2f} GiB,"
                f" {usage.bytes_per_message:,.0f} B/message,"
                f" {usage.oldest:%Y-%m-%d} .. {usage.newest:%Y-%m-%d}",
            )
            timings = [timed(journal.usage) for _ in range(5)]
            out.append(figures("esb journal stats (Journal.usage, estimated)", timings))
            if exact_stats:
                exact = timed(lambda: journal.usage(exact=True))
                out.append(figures("esb journal stats --exact (counts every row), once", [exact]))
            oldest, newest = usage.oldest, usage.newest
        else:
            with engine.connect() as conn:
                oldest = conn.execute(sa.select(sa.func.min(messages.c.received_at))).scalar_one()
                newest = conn.execute(sa.select(sa.func.max(messages.c.received_at))).scalar_one()

        def by_pk(mid: str) -> None:
            with engine.connect() as conn:
                conn.execute(sa.select(messages.c.route).where(messages.c.id == mid)).all()

        orders, msisdns = keys["order_id"], keys["msisdn"]
        old = orders[:PER_SORT]
        new = orders[-PER_SORT:]
        ids = [message_id(o) for o in old + new]
        out.append(
            figures("baseline: one message row by primary key", [timed(lambda m=m: by_pk(m)) for m in ids])
        )
        for label, sample in (
            ("esb trace ORDER_ID (old: first days)", old),
            ("esb trace ORDER_ID (new: last days)", new),
            ("esb trace MSISDN (old)", msisdns[:PER_SORT]),
            ("esb trace MSISDN (new)", msisdns[-PER_SORT:]),
            ("esb trace MESSAGE_ID", ids),
        ):
            out.append(figures(label, [timed(lambda k=k: build_trace(journal, k)) for k in sample]))
        out.append(
            figures(
                "find(key=msisdn) (business-key search)",
                [timed(lambda k=k: journal.find(key=("msisdn", k))) for k in msisdns[-PER_SORT:]],
            )
        )
        out.append(
            figures("find(key=order_id)", [timed(lambda k=k: journal.find(key=("order_id", k))) for k in old])
        )
        span = newest - oldest
        starts = [oldest + span * (i / PER_SORT) for i in range(PER_SORT)]
        # replay's selection reads no latest state without --state (esb/ops/replay.py); reading it, as
        # before, is the baseline, timed alternately with it on the same windows (each read first by one
        # or the other in turn: the first read of a window is the slower)
        window = timedelta(minutes=10)
        with_state: list[float] = []
        state_cpu: list[float] = []
        selection: list[float] = []
        for n, s in enumerate(starts):
            for before in (n % 2 == 0, n % 2 == 1):
                if before:
                    with_state.append(timed(replay_selection(journal, s, window, with_state=True), state_cpu))
                else:
                    selection.append(timed(replay_selection(journal, s, window)))
        out.append(figures("replay selection: --route --since/--until 10 min", selection))
        out.append(figures("  the same reading each row's latest state (before)", with_state, state_cpu))
        out.append(
            figures(
                "replay selection: + --state dead_lettered, 10 min",
                [timed(replay_selection(journal, s, window, "dead_lettered")) for s in starts],
            )
        )
        first_week = starts[:5]  # a month old: days 1-5 of 35
        found = len(dead_letters_in(journal, first_week[0], 1)())  # a journal without them times nothing
        out.append(
            figures(
                f"replay selection: + --state dead_lettered, 1 day a month old ({found} rows)",
                [timed(dead_letters_in(journal, s, 1)) for _ in range(3) for s in first_week],
            )
        )
        for reads, label in (
            ("first", "  + the first page of 100 records (to the first publish)"),
            ("all", "  + every record, page by page (the replay's reads)"),
            ("find", "  every record up front by find (before 0018)"),
        ):
            samples = [timed(dead_letters_in(journal, s, 1, reads)) for _ in range(3) for s in first_week]
            out.append(figures(label, samples))
        out.append(
            figures(
                "replay selection: + --state dead_lettered, the last day",
                [timed(dead_letters_in(journal, newest - timedelta(days=1), 1)) for _ in range(15)],
            )
        )
        out.append(
            figures(
                "find(state=dead_lettered), newest 50",
                [timed(lambda: journal.find(state="dead_lettered", limit=50)) for _ in range(5)],
            )
        )
        pages: list[float] = []
        cursor = None
        for _ in range(10):  # ten pages in a row, as an operator pages through them
            started = time.perf_counter()
            cpu = time.process_time()
            _, cursor = journal.dead_letters(route=CRM_ROUTE, before=cursor, limit=50)
            _cpu.append((time.process_time() - cpu) * 1000)
            pages.append((time.perf_counter() - started) * 1000)
        out.append(figures("dead-letter list: Journal.dead_letters, 10 pages of 50", pages))
    return out


def cold_queries(keys: dict[str, list[str]], oldest: Any, newest: Any) -> dict[str, Callable[..., Any]]:
    """label -> ``call(journal, round)``: the queries timed cold, each on its own key or window per round."""
    orders, msisdns = keys["order_id"], keys["msisdn"]
    span = newest - oldest
    window = timedelta(minutes=10)

    def start(r: int) -> Any:
        return oldest + span * ((2 * r + 1) / (4 * PER_SORT))  # first half of the journal, new each round

    return {
        "esb trace ORDER_ID (old)": lambda j, r: build_trace(j, orders[r]),
        "esb trace MSISDN (old)": lambda j, r: build_trace(j, msisdns[r]),
        "esb trace MESSAGE_ID": lambda j, r: build_trace(j, message_id(orders[-1 - r])),
        "find(key=order_id)": lambda j, r: j.find(key=("order_id", orders[PER_SORT + r])),
        "replay selection: 10 min": lambda j, r: replay_selection(j, start(r), window)(),
        "replay selection: + --state dead_lettered, 1 day": lambda j, r: dead_letters_in(j, start(r), 1)(),
        "  + the first page of 100 records": lambda j, r: dead_letters_in(j, start(r), 1, "first")(),
        "  every record up front (before 0018)": lambda j, r: dead_letters_in(j, start(r), 1, "find")(),
        "dead-letter list: first page of 50": lambda j, r: j.dead_letters(route=CRM_ROUTE, limit=50),
    }


def cold(url: str, keys: dict[str, list[str]], rounds: int, pg_base: Path | None) -> list[str]:
    """Time each query of :func:`cold_queries` and two console pages right after evicting the journal,
    ``rounds`` times; return the printed lines (median / p90 / max of the first calls, the opening apart)."""
    make_cold = evicter(url, pg_base)
    with Journal(url) as journal:
        usage = journal.usage()
    out = [f"cold (journal evicted before each call), {rounds} rounds: {'query (ms)':38} median p90 max"]
    opened: list[float] = []
    opened_cpu: list[float] = []
    for label, query in cold_queries(keys, usage.oldest, usage.newest).items():
        samples = []
        for r in range(rounds):
            make_cold()
            journal = Journal(url, pool_size=2)
            # the engine and the schema check, as every command opens it
            opened.append(timed(journal.connect, opened_cpu))
            with journal:
                samples.append(timed(partial(query, journal, r)))
        out.append(figures(label, samples))
    out.append(figures("  (the journal's opening before each: engine, schema check)", opened, opened_cpu))
    searched = keys["order_id"][2 * PER_SORT : 2 * PER_SORT + rounds]
    for label, paths in (
        ("console: search order id (old)", [f"/search?key={key}" for key in searched]),
        ("console: dead letters", ["/dlq"] * rounds),
    ):
        with console_session(url) as get:
            pages = []
            for path in paths:
                make_cold()
                pages.append(timed(partial(get, path)))
        out.append(figures(label, pages))
    return out


@contextmanager
def console_session(url: str) -> Iterator[Callable[[str], None]]:
    """The hub's console on the journal at ``url`` (waitress on loopback, an operator logged in); yields a
    call that GETs one page and checks its status."""
    from bench.console_bench import logged_in

    with (
        tempfile.TemporaryDirectory(prefix="journal-scale-console-") as work,
        logged_in(url, Path(work)) as (http, base),
    ):
        yield lambda path: http.get(base + path, timeout=120).raise_for_status()

def message_id(order: str) -> str:
    """The message id journal_fill.py gave the CRM order ``order`` (SO2026000000042 -> crm-000000000042)."""
    return f"crm-{int(order[2:]) - 2026000000000:012d}"


def main() -> None:
    """Fill (unless --url) and measure; with --pg, the same on a throwaway PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=35.0)
    parser.add_argument("--url", help="a journal filled before (with --keys)")
    parser.add_argument("--keys", type=Path, help="keys.json written by journal_fill.py")
    parser.add_argument("--pg", action="store_true", help="also fill and measure a throwaway PostgreSQL")
    parser.add_argument("--exact-stats", action="store_true", help="also time esb journal stats --exact once")
    parser.add_argument(
        "--no-stats",
        action="store_true",
        help="do not time esb journal stats (minutes on a partitioned PostgreSQL journal: bench/README.md)",
    )
    parser.add_argument("--cold", type=int, default=0, metavar="ROUNDS", help="time ROUNDS cold calls")
    parser.add_argument("--pg-base", type=Path, help="with --cold on PostgreSQL: the kept server's folder")
    args = parser.parse_args()
    runs: list[tuple[str, str, dict[str, Any]]] = []
    if args.url:
        keys_file = args.keys or Path(sa.engine.make_url(args.url).database or "").parent / "keys.json"
        runs.append(("given", args.url, orjson.loads(keys_file.read_bytes())))
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='journal-scale-')}/journal.db"
        runs.append(("SQLite", url, fill(url, args.messages, args.days)))
    for name, url, found in runs:
        print(f"== {name}: {found.get('messages', '?'):,} messages (fill {found.get('fill_seconds', '?')} s)")
        print("\n".join(measure(url, found["keys"], args.exact_stats, not args.no_stats)), flush=True)
        if args.cold:
            print("\n".join(cold(url, found["keys"], args.cold, args.pg_base)), flush=True)
    if args.pg:
        from bench.servers import throwaway_postgres

        with throwaway_postgres() as pg:
            url = pg.create_database("scale")
            found = fill(url, args.messages, args.days)
            print(f"== PostgreSQL: {args.messages:,} messages (fill {found['fill_seconds']} s)")
            print("\n".join(measure(url, found["keys"], args.exact_stats, not args.no_stats)), flush=True)


if __name__ == "__main__":
    main()
