"""The REST listener's GET list (``ResourceStore.query``): the same ids, order and counts as the statements
it replaced on a store with ties, filters and two kinds, a first page read through ``resources_listed``
without a scan or a sort, and the count skipped only where the page gives it."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.rest.store import _COUNT, _PAGE, ResourceStore

ORDERS = 120


def old_query(
    db: sqlite3.Connection, kind: str, filters: dict[str, str], offset: int, limit: int
) -> tuple[int, list[str]]:
    """The count and page ids as the listener computed them before ``resources_listed`` (merge22)."""
    where = ["kind = ?", "status = 'created'"]
    args: list[Any] = [kind]
    for name, value in filters.items():
        where.append("CAST(json_extract(doc, ?) AS TEXT) = ?")
        args += [f"$.{name}", value]
    clause = " AND ".join(where)
    total = int(db.execute(f"SELECT count(*) FROM resources WHERE {clause}", args).fetchone()[0])
    rows = db.execute(
        f"SELECT doc FROM resources WHERE {clause} ORDER BY created, id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    return total, [orjson.loads(r[0])["id"] for r in rows]


def fill(store: ResourceStore) -> None:
    """``ORDERS`` orders written in shuffled order, three to a creation time (ties ordered by id; the id
    order is not the time order), with states, a nested channel and a number to filter on, some changed
    after; cancel requests beside them."""
    idents = list(range(ORDERS))
    random.Random(13).shuffle(idents)
    for n in idents:
        doc = {"id": f"PO-{n:03d}", "state": ("acknowledged", "completed", "inProgress")[n % 3],
               "channel": {"id": f"C{n % 2}"}, "priority": n % 4}  # fmt: skip
        store.create(
            "productOrder",
            doc["id"],
            orjson.dumps(doc),
            {"eventId": f"E-{n}"},
            None,
            created=1000.0 + (n * 37 % ORDERS) // 3,
        )
        if n % 10 == 0:
            store.change("productOrder", doc["id"], {"state": "completed"})
    for n in range(5):
        doc = {"id": f"CPO-{n}", "state": "completed"}
        store.create(
            "cancelProductOrder", doc["id"], orjson.dumps(doc), {"eventId": f"X-{n}"}, None, created=999.0
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A store filled by :func:`fill`."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    fill(opened)
    yield opened
    opened.close()


FILTERS = [
    {},
    {"state": "completed"},
    {"state": "completed", "channel.id": "C1"},
    {"priority": "2"},
    {"state": "nothing"},
]


@pytest.mark.parametrize(
    "filters", FILTERS, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items()) or "none"
)
def test_the_list_answers_as_the_old_statements(store: ResourceStore, filters: dict[str, str]) -> None:
    """Every page (offsets before, inside, at and past the end; limits 1 to 1,000) has the ids, order and
    count the replaced statements gave, per kind."""
    assert store._db is not None
    checked = 0
    for kind in ("productOrder", "cancelProductOrder"):
        for offset in (0, 1, 7, 39, 40, 119, 120, 200):
            for limit in (1, 10, 40, 1000):
                total, page = store.query(kind, filters, offset, limit)
                assert (total, [d["id"] for d in page]) == old_query(store._db, kind, filters, offset, limit)
                checked += bool(page)
    assert (checked >= 12) == (filters != {"state": "nothing"})  # the grid reaches non-empty pages


def plan(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[str]:
    """The details of ``sql``'s query plan."""
    return [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, args)]


@pytest.mark.parametrize(
    ("where", "args"),
    [
        pytest.param("kind = ?", ("productOrder",), id="no-filter"),
        pytest.param(
            "kind = ? AND CAST(json_extract(doc, ?) AS TEXT) = ?",
            ("productOrder", "$.state", "x"),
            id="filter",
        ),
    ],
)
def test_a_page_walks_the_listed_index_without_scan_or_sort(
    store: ResourceStore, where: str, args: tuple[Any, ...]
) -> None:
    """A page searches ``resources_listed`` in order and fetches its documents by rowid: no table scan, no
    temporary B-tree sorting the kind's rows; without filters the index alone covers the rows skipped."""
    assert store._db is not None
    details = plan(store._db, _PAGE.format(where=where), (*args, 10, 0))
    assert [d for d in details if d.startswith("SCAN resources") or "TEMP B-TREE" in d] == []
    searched = [d for d in details if "resources_listed" in d]
    assert len(searched) == 1
    assert ("COVERING INDEX" in searched[0]) == (where == "kind = ?")
    count = plan(store._db, _COUNT.format(where="kind = ?"), ("productOrder",))
    assert [d for d in count if "COVERING INDEX" in d] == count


def test_the_count_is_skipped_only_where_the_page_gives_it(
    store: ResourceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short non-empty page (or an empty first page) answers without counting; a full page or one past
    the end counts."""
    run = store._run
    counted: list[str] = []

    def spy(sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        counted.extend([sql] if sql.startswith("SELECT count") else [])
        return run(sql, args)

    monkeypatch.setattr(store, "_run", spy)
    assert store.query("productOrder", {}, 100, 40)[0] == ORDERS
    assert store.query("productOrder", {"state": "nothing"}, 0, 10)[0] == 0
    assert counted == []
    assert store.query("productOrder", {}, 0, 40)[0] == ORDERS
    assert store.query("productOrder", {}, 500, 10)[0] == ORDERS
    assert len(counted) == 2
