"""How fast the console's pages answer on a big journal (issue 18: < 300 ms with 10 million messages).

    .venv/bin/python bench/console_bench.py [--journal URL [--keys keys.json]] [--messages N] [--repeat R]

With ``--journal URL`` the pages read that journal as it is (fill it first with the journal-scale
branch's ``bench/journal_fill.py URL --messages 10000000``; its ``keys.json`` beside a SQLite file gives
the keys searched). Without it, this script bulk-inserts ``--messages`` (default 1,000,000) CRM orders
into a throwaway SQLite journal: per order one message row, three events (received, delivered to
``iom.orders_in``, the route's delivered; 1 % dead-lettered instead), keys order id and MSISDN, spread
over ``--days`` (30) up to now, ``--busy`` of them in each five minutes of an hour that starts five minutes
before the fill (the routes page's window; 10,000 give its 30,000 events, a hub moving 3 M messages a
day; the hour's last 55 minutes are ahead of the fill, so a journal filled once shows a busy live window
to ``--journal`` runs within the hour). The per-minute figures the pages
read (``route_minutes``) are computed from the events after the fill, as migration 0015 does.

The hub's console (waitress, the repository's project, an operator logged in over HTTP) then serves each
page ``--repeat`` times; the script prints p50/p95/max per page, the ratio of each p50 to the login
page's (a template without a query, measured in the same run), the load average, and whether every p95
is under 300 ms. Health shows the checks last run in the background (they call the project's peers, not
running here: a second or more a run); the script waits for the first run before timing the page.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esb.console.server import ConsoleServer, info_path  # noqa: E402
from esb.console.users import hash_password  # noqa: E402
from esb.journal import Journal  # noqa: E402
from esb.journal.engine import create_journal_engine  # noqa: E402
from esb.journal.rollup import backfill  # noqa: E402
from esb.journal.schema import business_keys, events, messages  # noqa: E402
from esb.project import Project  # noqa: E402

ROUTE = "crm-order-to-iom"
TARGET_MS = 300.0
#: ``--busy`` messages arrive in every such window (the routes page's live window) of the
#: :data:`BUSY_SPAN` that starts one window before the fill (the rest after it: a journal filled once
#: shows a busy live window to runs within the hour after its fill).
BUSY_WINDOW = timedelta(minutes=5)
BUSY_SPAN = timedelta(hours=1)
CHUNK = 20_000


def fill(url: str, count: int, days: float = 30.0, seed: int = 18, busy: int = 0) -> dict[str, str]:
    """Bulk-insert ``count`` orders over ``days`` up to now, ``busy`` of them in every five minutes of the
    :data:`BUSY_SPAN` from five minutes before now (indexes dropped meanwhile, rebuilt after; the
    per-minute figures computed from the events after, as migration 0015 does); return sample keys."""
    Journal(url).connect()  # the schema, by the journal's own migrations
    engine = create_journal_engine(url, pool_size=1)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    busy *= BUSY_SPAN // BUSY_WINDOW
    calm, busy_start = count - busy, now - BUSY_WINDOW  # the busy hour: its last 55 minutes ahead
    step = (busy_start - start) / max(calm, 1) if busy else (now - start) / count
    body = (ROOT / "bench" / "console_bench.py").read_bytes()[:1500]  # ~1.5 KB of text as each body
    indexes = [ix for table in (messages, events, business_keys) for ix in table.indexes]
    samples: dict[str, str] = {}
    with engine.begin() as conn:
        for ix in indexes:
            ix.drop(conn, checkfirst=True)
    for first in range(0, count, CHUNK):
        msgs: list[dict[str, Any]] = []
        evts: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        for n in range(first, min(first + CHUNK, count)):
            at = start + step * n if n < calm else busy_start + BUSY_SPAN * (n - calm) / busy
            mid, seq = f"crm-{n:012d}", n + 1
            order, msisdn = f"SO2026{n:010d}", f"133{rng.randint(0, 99_999_999):08d}"
            msgs.append({"seq": seq, "id": mid, "route": ROUTE, "correlation_id": mid, "causation_id": None,
                         "type": "order.submitted", "source": "crm", "schema": None, "headers": None,
                         "body": body, "created_at": at, "received_at": at, "attempt": 1,
                         "delivery_count": 1})
            took = timedelta(milliseconds=rng.uniform(5, 80))
            evts.append(_event(seq, "received", at))
            if n % 100 == 42:
                evts.append(_event(seq, "dead_lettered", at + took, endpoint="dlq.crm-order-to-iom",
                                   reason="schema"))
            else:
                evts.append(_event(seq, "delivered", at + took, endpoint="iom.orders_in"))
                evts.append(_event(seq, "delivered", at + took))
            keys += [{"message_seq": seq, "name": "order_id", "value": order},
                     {"message_seq": seq, "name": "msisdn", "value": msisdn}]
            if n in (count // 100, count - 10):
                samples[f"msisdn_{'old' if n < count // 2 else 'new'}"] = msisdn
                samples[f"order_{'old' if n < count // 2 else 'new'}"] = order
        with engine.begin() as conn:
            conn.execute(messages.insert(), msgs)
            conn.execute(events.insert(), evts)
            conn.execute(business_keys.insert(), keys)
        print(f"  filled {min(first + CHUNK, count):,} of {count:,}", end="\r", flush=True)
    with engine.begin() as conn:
        for ix in indexes:
            ix.create(conn)
        began = time.perf_counter()
        backfill(conn)
        print(f"\n  route_minutes from the events: {time.perf_counter() - began:.1f} s", end="")
    # No ANALYZE: the hub never runs it, and with every causation_id NULL its statistics make SQLite scan
    # the messages table for the trace's causation lookup (1.6 s a search at 1 M instead of 60 ms).
    engine.dispose()
    if url.startswith("sqlite:///"):  # for a later --journal run on the same file
        (Path(url.removeprefix("sqlite:///")).parent / "keys.json").write_bytes(orjson.dumps(samples))
    print()
    return samples


def _event(
    seq: int, state: str, at: datetime, endpoint: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    return {"message_seq": seq, "route": ROUTE, "state": state, "endpoint": endpoint, "error_class": None,
            "error_reason": reason, "error_text": "MessageError: schema" if reason else None, "detail": None,
            "body": None, "at": at}


def sample_keys(url: str, keys_file: Path | None = None) -> dict[str, str]:
    """Keys to search in a journal filled elsewhere: ``keys_file`` (journal_fill.py's keys.json), or the
    keys.json beside a SQLite file, else from the table."""
    if keys_file is not None or url.startswith("sqlite:///"):
        found = keys_file or Path(url.removeprefix("sqlite:///")).parent / "keys.json"
        if found.exists():
            data = orjson.loads(found.read_bytes())
            flat = {k: v for k, v in data.items() if isinstance(v, str)}
            if flat:
                return flat
            filled = data.get("keys") or {}  # journal_fill.py's: lists of keys, oldest first
            picked = {f"{name}_{age}": values[index] for name in ("order_id", "msisdn")
                      if (values := filled.get(name)) for age, index in (("old", 0), ("new", -1))}
            if picked:
                return picked
    engine = create_journal_engine(url, pool_size=1)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(business_keys.c.name, business_keys.c.value).limit(200)).all()
    engine.dispose()
    return {f"{name}_{i}": value for i, (name, value) in enumerate(rows[::50])}


def timed(http: requests.Session, url: str, repeat: int) -> tuple[list[float], float]:
    """Return the sorted latencies (ms) of ``repeat`` GETs of ``url`` (after one warm-up) and the load
    average after them."""
    http.get(url, timeout=60).raise_for_status()
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = http.get(url, timeout=60)
        out.append((time.perf_counter() - began) * 1000)
        answer.raise_for_status()
    return sorted(out), os.getloadavg()[0]


@contextmanager
def logged_in(
    url: str, work: Path, environ: dict[str, str] | None = None
) -> Iterator[tuple[requests.Session, str]]:
    """The hub's console on the journal at ``url`` (waitress on loopback, data in ``work``, ``environ``
    added to its settings), an operator logged in; yields the session and the console's base URL."""
    settings = {"ESB_DATA_DIR": str(work), "ESB_JOURNAL__URL": url, "ESB_CONSOLE__PORT": "0",
                "ESB_CONSOLE__USERS": "bench:operator:" + hash_password("bench-pw"), **(environ or {})}
    project = Project.load(ROOT, environ=settings)
    server = ConsoleServer(lambda: project)
    server.start()
    try:
        base = orjson.loads(info_path(project.settings).read_bytes())["url"]
        http = requests.Session()
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(base + "/login", timeout=30).text)
        assert token is not None, "no CSRF token on the login form"
        http.post(base + "/login", data={"csrf_token": token.group(1), "username": "bench",
                                         "password": "bench-pw"}, timeout=30).raise_for_status()
        yield http, base
    finally:
        server.stop()


def main() -> int:
    """Fill (or open) the journal, serve the console, time every page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--journal", help="a filled journal URL (default: fill a throwaway SQLite one)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0,
                        help="spread the messages over this many days up to now (the window's density)")
    parser.add_argument("--busy", type=int, default=0,
                        help="of the messages, this many in each 5 minutes of an hour from 5 minutes"
                        " before the fill (3 events each: 10,000 make the 30,000 events of a hub moving"
                        " 3 M messages a day)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keys", type=Path, help="journal_fill.py's keys.json: the keys searched")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url = args.journal
    if url is None:
        url = f"sqlite:///{work / 'journal.db'}"
        began = time.perf_counter()
        keys = fill(url, args.messages, args.days, busy=args.busy)
        print(f"filled {args.messages:,} messages in {time.perf_counter() - began:.0f} s ({url})")
    else:
        keys = sample_keys(url, args.keys)
    # figures_ttl 0: every request computes the routes' figures (what one request costs, not the cache)
    with logged_in(url, work, {"ESB_CONSOLE__FIGURES_TTL": "0"}) as (http, base):
        pages = {"login (baseline)": "/login", "routes": "/", "figures JSON": "/api/figures",
                 f"route {ROUTE}": f"/routes/{ROUTE}", "processes": "/processes",
                 "dead letters": "/dlq", "audit": "/audit"}
        for name, value in sorted(keys.items()):
            pages[f"search {name}"] = f"/search?key={value}"
        pages["health (last background checks)"] = "/health"
        waited = time.perf_counter()
        while "Checked at" not in http.get(base + "/health", timeout=60).text:  # the first run of the checks
            if time.perf_counter() - waited > 60:
                raise SystemExit("the health checks did not end within 60 s")
            time.sleep(0.5)
        print(f"first health checks ended {time.perf_counter() - waited:.1f} s after the console started")
        results = {name: timed(http, base + path, args.repeat) for name, path in pages.items()}
    baseline = results["login (baseline)"][0][len(results["login (baseline)"][0]) // 2]
    print(f"\n{'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'x login':>8}  load")
    worst = 0.0
    for name, (lat, load) in results.items():
        p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        worst = max(worst, p95)
        print(f"{name:<34} {p50:8.1f} {p95:8.1f} {lat[-1]:8.1f} {p50 / baseline:8.1f}  {load:.1f}")
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"\nworst p95 {worst:.1f} ms: target < {TARGET_MS:.0f} ms {verdict}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
