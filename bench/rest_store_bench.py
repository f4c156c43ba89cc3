"""The REST listener's resource store with a year of history: the notifier's round, a GET query, the prune.

``fill`` writes a store (with the given checkout's code, so with its schema) holding ``--rows`` delivered
event rows and as many ended orders (settled long ago), plus ``--pending`` pending events spread over 5
listeners: what a listener registered for months leaves when nothing is ever deleted. ``measure`` times,
in CPU seconds of this process (``time.process_time``), on such a store:

- ``due``: one notifier round's query (``ResourceStore.due``, the ``_DUE`` statement), median of
  ``--repeat`` calls;
- ``query``: ``GET .../productOrder?limit=10`` (``ResourceStore.query``: count and first page), the same
  with a filter (``state=completed``), ``query_deep`` a page in the middle (``offset`` half the orders),
  ``count`` and ``page`` the list's count and first-page statements alone (no filter);
- ``open``: opening the store (the upgrade of an older store's schema, when the checkout is newer).

``prune`` (this checkout only) copies the store and prunes everything, printing rows per second, the
longest single statement (the longest write lock another process can wait on) and the file's size
before, after the deletes and after the pages were given back.

The default run alternates ``--before`` (a detached worktree of main) and this checkout ``--runs`` times,
each measuring a store its own code filled, and prints medians and ranges:

    .venv/bin/python bench/rest_store_bench.py --before /work/wt-x-base [--rows 1000000] [--runs 3]
        [--dir /tmp/x-store]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
CHUNK = 50_000
#: The count and page of a GET list before ``store._COUNT`` and ``store._PAGE`` (merge22): they also
#: filtered on ``status``, and the page sorted the kind's rows.
OLD_COUNT = "SELECT count(*) FROM resources WHERE {where} AND status = 'created'"
OLD_PAGE = (
    "SELECT doc FROM resources WHERE {where} AND status = 'created' ORDER BY created, id LIMIT ? OFFSET ?"
)


def _store(tree: Path) -> Any:
    sys.path.insert(0, str(tree))
    from adapters.rest import store

    assert Path(store.__file__).is_relative_to(tree), store.__file__
    return store


def fill(tree: Path, path: Path, rows: int, pending: int) -> None:
    """Write the store at ``path`` with ``tree``'s code: ``rows`` delivered events and ended orders."""
    module = _store(tree)
    opened = module.ResourceStore(path).open()
    db = opened._db
    settled = "settled" in {r[1] for r in db.execute("PRAGMA table_info(resources)")}
    old = time.time() - 365 * 86400
    body = json.dumps({"eventType": "ProductOrderStateChangeEvent", "event": {"productOrder": {
        "id": "x", "state": "completed", "description": "x" * 200}}})  # fmt: skip
    for start in range(0, rows, CHUNK):
        ids = range(start, min(rows, start + CHUNK))
        db.execute("BEGIN")
        docs = [(f"PO-{i:09d}", old + i * 30, json.dumps({"id": f"PO-{i:09d}", "state": "completed",
                 "category": "B2C", "description": "y" * 200})) for i in ids]  # fmt: skip
        if settled:
            db.executemany(
                "INSERT INTO resources (kind, id, status, created, doc, settled) "
                "VALUES ('productOrder', ?, 'created', ?, ?, ?)",
                [(i, c, d, c + 60) for i, c, d in docs],
            )
        else:
            db.executemany(
                "INSERT INTO resources (kind, id, status, created, doc) "
                "VALUES ('productOrder', ?, 'created', ?, ?)",
                docs,
            )
        db.executemany(
            "INSERT INTO events (event_id, listener_id, callback, body, resource_id, attempts, due, status) "
            "VALUES (?, ?, 'http://127.0.0.1:9/cb', ?, ?, 1, ?, 'delivered')",
            [(f"E-{i}", f"L-{i % 5}", body, f"PO-{i:09d}", old + i * 30 + 60) for i in ids],
        )
        db.execute("COMMIT")
    now = time.time()
    db.executemany(
        "INSERT INTO events (event_id, listener_id, callback, body, resource_id, due, status) "
        "VALUES (?, ?, 'http://127.0.0.1:9/cb', ?, ?, ?, 'pending')",
        [(f"P-{i}", f"L-{i % 5}", body, f"PO-{i:09d}", now - 1) for i in range(pending)],
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    opened.close()


def _cpu(call: Any, repeat: int) -> tuple[float, Any]:
    """Median CPU seconds of ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.process_time()
        result = call()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def measure(tree: Path, path: Path, repeat: int) -> dict[str, Any]:
    """CPU seconds of opening ``path``, one notifier round, and the GET queries, with ``tree``'s code."""
    module = _store(tree)
    start = time.process_time()
    opened = module.ResourceStore(path).open()
    figures: dict[str, Any] = {"open": time.process_time() - start}
    now = time.time()
    figures["due"], rows = _cpu(lambda: opened.due(now), repeat)
    figures["due_rows"] = len(rows)
    figures["query"], (total, _) = _cpu(lambda: opened.query("productOrder", {}, 0, 10), repeat)
    figures["query_total"] = total
    figures["query_deep"], _ = _cpu(lambda: opened.query("productOrder", {}, total // 2, 10), repeat)
    count = getattr(module, "_COUNT", OLD_COUNT).format(where="kind = ?")
    figures["count"], _ = _cpu(lambda: opened._run(count, ("productOrder",)), repeat)
    page = getattr(module, "_PAGE", OLD_PAGE).format(where="kind = ?")
    figures["page"], _ = _cpu(lambda: opened._run(page, ("productOrder", 10, 0)), repeat)
    figures["query_filter"], _ = _cpu(
        lambda: opened.query("productOrder", {"state": "completed"}, 0, 10), max(1, repeat // 3)
    )
    opened.close()
    return figures


def prune(tree: Path, path: Path, batch: int) -> dict[str, Any]:
    """Prune everything from ``path`` (a copy): rows per second, the longest statement, file sizes."""
    module = _store(tree)
    from adapters.rest import retention
    from adapters.rest.config import StoreOptions

    opened = module.ResourceStore(path).open()
    statements: list[float] = []
    originals = {"prune_events": opened.prune_events, "prune_resources": opened.prune_resources}

    def timed(name: str) -> Any:
        def call(before: float, limit: int) -> int:
            start = time.perf_counter()
            deleted = int(originals[name](before, limit))
            statements.append(time.perf_counter() - start)
            return deleted

        return call

    opened.prune_events = timed("prune_events")
    opened.prune_resources = timed("prune_resources")
    size = path.stat().st_size
    options = StoreOptions(events_keep="1d", resources_keep="1d", prune_batch=batch, prune_pause=0)
    start, cpu = time.perf_counter(), time.process_time()
    deleted = retention._batches(
        opened.prune_events, time.time() - 86400, options, retention.threading.Event()
    )
    deleted += retention._batches(
        opened.prune_resources, time.time() - 86400, options, retention.threading.Event()
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    opened._run("PRAGMA wal_checkpoint(TRUNCATE)")
    after_delete = path.stat().st_size
    start = time.perf_counter()
    pages = 0
    chunks: list[float] = []
    while True:
        chunk = time.perf_counter()
        freed = opened.free_pages(retention.VACUUM_PAGES)
        chunks.append(time.perf_counter() - chunk)
        pages += freed
        if freed < retention.VACUUM_PAGES:
            break
    vacuum = time.perf_counter() - start
    statements.sort()
    chunks.sort()
    opened._run("PRAGMA wal_checkpoint(TRUNCATE)")
    figures = {
        "rows": deleted, "wall": wall, "cpu": cpu, "rows_per_s": deleted / wall,
        "statement_median": statistics.median(statements),
        "statement_p99": statements[int(len(statements) * 0.99)], "statement_max": statements[-1],
        "vacuum_s": vacuum, "pages": pages, "vacuum_chunk_median": statistics.median(chunks),
        "vacuum_chunk_max": chunks[-1], "size_mb": size / 1e6, "after_delete_mb": after_delete / 1e6,
        "after_vacuum_mb": path.stat().st_size / 1e6,
    }  # fmt: skip
    opened.close()
    return figures


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Fill a store per checkout, then alternate the measurements; prune a copy of this checkout's."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, help="the baseline checkout (a detached worktree of main)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/reststore-bench"))
    parser.add_argument("--step", choices=["fill", "measure", "prune"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "fill":
        fill(args.tree, args.path, args.rows, args.pending)
        print(json.dumps({"size_mb": args.path.stat().st_size / 1e6}))
        return
    if args.step == "measure":
        print(json.dumps(measure(args.tree, args.path, args.repeat)))
        return
    if args.step == "prune":
        print(json.dumps(prune(args.tree, args.path, args.batch)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    trees = {"after": HERE} | ({"before": args.before.resolve()} if args.before else {})
    #: what each run measures: (the code, the store it filled); "upgrade": this code opening main's store
    variants = {name: (tree, name) for name, tree in trees.items()}
    if args.before:
        variants["upgrade"] = (HERE, "before")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    filled = {}
    for name, tree in trees.items():
        filled[name] = args.dir / f"{name}.db"
        if not filled[name].exists():
            common = ["--tree", str(tree), "--path", str(filled[name]), "--rows", str(args.rows)]
            print(name, "fill", _child("--step", "fill", *common, "--pending", str(args.pending)), flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for run in range(args.runs):
        for name, (tree, store) in sorted(variants.items(), reverse=run % 2 == 1):
            copy = args.dir / f"{name}-run.db"
            shutil.copyfile(filled[store], copy)  # each run opens a store as its filling code left it
            figures = _child(
                "--step", "measure", "--tree", str(tree), "--path", str(copy), "--repeat", str(args.repeat)
            )
            results[name].append(figures)
            print(run, name, json.dumps(figures), f"load {os.getloadavg()[0]:.1f}", flush=True)
            copy.unlink()
    for name, runs in (item for item in results.items() if item[1]):
        for key in ("open", "due", "query", "query_deep", "count", "page", "query_filter"):
            values = sorted(r[key] * 1000 for r in runs)
            print(f"{name:6} {key:12} median {statistics.median(values):9.3f} ms CPU  "
                  f"range {values[0]:.3f}-{values[-1]:.3f}")  # fmt: skip
    copy = args.dir / "prune.db"
    shutil.copyfile(filled["after"], copy)
    print("prune", json.dumps(_child("--step", "prune", "--tree", str(HERE), "--path", str(copy),
                                     "--batch", str(args.batch))))  # fmt: skip
    copy.unlink()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
