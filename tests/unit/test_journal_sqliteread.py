"""The cold paths on SQLite (sqlite3, no SQLAlchemy) return what the Journal returns: esb trace's
records, esb dlq list's counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from esb.exceptions import TransportError
from esb.journal import Journal, sqltext
from esb.journal.coldread import count_dead_lettered, read_trace
from esb.journal.constants import VERSION_TABLE
from esb.journal.sqlgen import render
from esb.journal.sqliteread import sqlite_file
from esb.message import Message

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A journal (SQLite file) with conversations of every shape esb trace follows."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    fill(url)
    return url


#: The keys the differential tests trace: every kind (id, business key, derived id, correlation id, a
#: conversation over several IN lists, no body, unknown).
KEYS = ["req-1", "SO-1", "133", "req-1:1", "other-conv", "unrelated", "big-0:700", "no-body", "nothing"]
#: The routes the dead-letter counts are read for (one with none, one unknown).
ROUTES = ["orders", "replies", "bulk", "process:crm.orders", "no-such-route"]


def fill(url: str) -> None:
    """Write conversations of every shape esb trace follows into the journal at ``url``."""
    with Journal(url) as journal:
        request = Message(body=b"<order/>", id="req-1", business_keys={"order_id": "SO-1", "msisdn": "133"})
        journal.received("orders", request)
        journal.event("orders", request, "transformed", body=b"{}", detail={"mapping": "订单", "n": 2})
        part = request.derive({"line": 1}, suffix="1")
        journal.event("orders", part, "delivered", endpoint="billing.accounts")
        journal.event("orders", part, "failed", error=TransportError("billing down: 超时"))
        journal.event("orders", part, "dead_lettered", error="permanent\nsecond line")
        reply = Message(body=b"ok", correlation_id="other-conv", causation_id=part.id)
        journal.received("replies", reply)
        journal.event("replies", reply, "filtered")
        journal.received("orders", Message(body=b"x", id="unrelated", business_keys={"order_id": "SO-2"}))
        big = Message(body=b"b", id="big-0", correlation_id="big-conv")
        journal.received("bulk", big)
        for index in range(1, 1_200):  # more ids than one IN list holds (CHUNK = 500)
            journal.received("bulk", big.derive({}, suffix=str(index)))
        journal.received("orders", Message(body=None, id="no-body"))
        again = Message(body=b"<order/>", id="dead-then-replayed")
        journal.received("orders", again)
        journal.event("orders", again, "dead_lettered", error="bad")
        journal.event("orders", again, "replayed")
        for index in range(3):
            dead = Message(body=b"p", id=f"proc-{index}")
            journal.received("process:crm.orders", dead)
            journal.event("process:crm.orders", dead, "dead_lettered", error="no instance took it")


@pytest.mark.parametrize("key", KEYS)
def test_the_cold_path_returns_the_journals_records(url: str, key: str) -> None:
    """For every kind of key, the sqlite3 path gives the records (values and types) Journal.trace gives."""
    check_trace(url, key)


def check_trace(url: str, key: str) -> None:
    """read_trace(url, key) answers, with Journal.trace's records: values, types, aware times."""
    with Journal(url) as journal:
        expected = journal.trace(key)
    got = read_trace(url, key)
    assert got is not None
    assert got == expected
    assert [type(e.at) for e in got or []] == [type(e.at) for e in expected]
    assert all(e.at.tzinfo is not None for e in got or [])
    if key == "big-0:700":
        assert len(got or []) == 1_200


@pytest.mark.parametrize("limit", [100_000, 2])
def test_the_dead_letter_counts_are_the_journals(url: str, limit: int) -> None:
    """esb dlq list's counts (one statement for every route, through sqlite3 and through the journal) are
    len(Journal.find(route, state=dead_lettered, limit)); no route, no count."""
    check_dead_letter_counts(url, limit)


def check_dead_letter_counts(url: str, limit: int) -> None:
    """count_dead_lettered answers len(Journal.find(...)) per route, and the journal's counts agree."""
    routes = ROUTES
    with Journal(url) as journal:
        expected = {r: len(journal.find(route=r, state="dead_lettered", limit=limit)) for r in routes}
        assert journal.dead_lettered_counts(routes, limit) == expected
        assert journal.dead_lettered_counts([], limit) == {}
    assert count_dead_lettered(url, routes, limit) == expected
    assert count_dead_lettered(url, [], limit) == {}
    assert expected["process:crm.orders"] == min(3, limit)  # the fixture has dead letters to count


def test_the_compiled_statements_are_a_fresh_compile() -> None:
    """esb/journal/sqltext.py is exactly what esb.journal.sqlgen compiles from the SQLAlchemy statements
    (regenerate: python -m esb.journal.sqlgen > esb/journal/sqltext.py)."""
    assert (ROOT / "esb" / "journal" / "sqltext.py").read_text(encoding="utf-8") == render()
    health = {
        "counts_since", "dead_lettered_since", "stuck", "stuck_count", "route_states", "process_counts",
        "process_held",
    }
    walk = {"keyed", "seed", "linked", "children", "correlated", "history", "dead_lettered_counts"}
    assert set(sqltext.SQLITE) == walk | health
    assert set(sqltext.POSTGRESQL) == walk | health | {"key_seqs", "id_seqs"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:////var/esb/journal.db", Path("/var/esb/journal.db"), id="absolute"),
        pytest.param("sqlite:///var/journal.db", Path("var/journal.db"), id="relative"),
        pytest.param("sqlite+pysqlite:////j.db", Path("/j.db"), id="pysqlite"),
        pytest.param("sqlite:///:memory:", None, id="memory"),
        pytest.param("sqlite://", None, id="memory-short"),
        pytest.param("sqlite:///j.db?mode=ro", None, id="query"),
        pytest.param("sqlite:////data/my%20journal.db", None, id="escaped"),
        pytest.param("postgresql+psycopg://u:p@127.0.0.1/esb", None, id="postgresql"),
    ],
)
def test_only_plain_sqlite_files_take_the_cold_path(url: str, expected: Path | None) -> None:
    """A SQLite file URL names its file; memory, query strings and other databases go to the Journal."""
    assert sqlite_file(url) == expected


def test_no_file_yet_goes_to_the_journal(tmp_path: Path) -> None:
    """Without a database file the cold path answers None (the journal creates and migrates it)."""
    assert read_trace(f"sqlite:///{tmp_path / 'none.db'}", "x") is None
    assert count_dead_lettered(f"sqlite:///{tmp_path / 'none.db'}", ["r"], 10) is None
    assert not (tmp_path / "none.db").exists()


def test_a_schema_not_at_head_goes_to_the_journal(url: str) -> None:
    """A journal at another revision (or none) is left to the Journal, which migrates it on connect."""
    path = sqlite_file(url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'older'")
    assert read_trace(url, "req-1") is None
    assert count_dead_lettered(url, ["orders"], 10) is None
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP TABLE {VERSION_TABLE}")
    assert read_trace(url, "req-1") is None


def test_a_broken_database_goes_to_the_journal(tmp_path: Path) -> None:
    """A file that is not a database answers None: the Journal reports the error as before."""
    (tmp_path / "j.db").write_bytes(b"not a database at all" * 100)
    assert read_trace(f"sqlite:///{tmp_path / 'j.db'}", "x") is None
    assert count_dead_lettered(f"sqlite:///{tmp_path / 'j.db'}", ["r"], 10) is None
