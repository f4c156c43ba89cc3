"""What only the SQLite journal does: WAL and pragmas, write locks taken up front, in-memory databases."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from esb.exceptions import ConfigError, TransportError
from esb.journal import Journal
from esb.message import Message


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Path of a journal database file (not yet created)."""
    return tmp_path / "var" / "journal.db"


@pytest.fixture
def journal(db: Path) -> Iterator[Journal]:
    """A connected SQLite journal (its data folder is created by connect)."""
    with Journal(f"sqlite:///{db}") as j:
        yield j


def test_every_connection_gets_wal_and_pragmas(journal: Journal) -> None:
    """Pooled connections run in WAL with synchronous=NORMAL, a busy timeout and foreign keys."""
    assert journal._engine is not None
    with journal._engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in
                  ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}  # fmt: skip
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30_000, "foreign_keys": 1}


def test_writes_take_the_write_lock_up_front_and_reads_do_not(db: Path) -> None:
    """Writes open with BEGIN IMMEDIATE (no lock-upgrade deadlocks); reads with a deferred BEGIN."""
    seen: list[str] = []
    with Journal(f"sqlite:///{db}", pool_size=1) as journal:  # one thread: one pooled connection, reused
        assert journal._engine is not None
        with journal._engine.connect() as conn:
            conn.connection.driver_connection.set_trace_callback(seen.append)  # type: ignore[union-attr]
        message = Message(body=b"x")
        journal.received("orders", message)
        journal.outcome("orders", message.id)
    assert [s for s in seen if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]


def test_reads_go_on_while_another_process_holds_the_write_lock(journal: Journal, db: Path) -> None:
    """With WAL a reader is never blocked by a writer holding its lock."""
    message = Message(body=b"x")
    journal.received("orders", message)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert [r.id for r in journal.find()] == [message.id]
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_writer_waits_for_the_lock_instead_of_failing(journal: Journal, db: Path) -> None:
    """A write while another connection holds the write lock waits (busy timeout) and then succeeds."""
    other = sqlite3.connect(db, isolation_level=None, timeout=0, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        journal.received("orders", Message(body=b"x", id="waited"))
    finally:
        release.join()
        other.close()
    assert [r.id for r in journal.find()] == ["waited"]


def test_in_memory_database_is_shared_by_threads() -> None:
    """sqlite:// is one database for every thread of the journal, not one per thread."""
    with Journal("sqlite://") as j:
        worker = threading.Thread(target=j.received, args=("orders", Message(body=b"x", id="m1")))
        worker.start()
        worker.join()
        assert [r.id for r in j.find()] == ["m1"]


def test_unopenable_database_is_a_transport_error(tmp_path: Path) -> None:
    """A database path that cannot be opened raises a retryable TransportError naming the URL."""
    with pytest.raises(TransportError, match=r"journal connect.*not a regular file") as caught:
        Journal(f"sqlite:///{tmp_path}").connect()  # a folder, not a file
    assert caught.value.endpoint == f"sqlite:///{tmp_path}"


def test_data_folder_that_cannot_be_made_is_a_transport_error(tmp_path: Path) -> None:
    """A database under a regular file (not a folder) fails clearly."""
    (tmp_path / "file").write_text("")
    with pytest.raises(TransportError, match=r"cannot create its file.*not a folder"):
        Journal(f"sqlite:///{tmp_path / 'file' / 'journal.db'}").connect()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("not a url", "not a database URL", id="garbage"),
        pytest.param("nosuchdb://u:pw@127.0.0.1/x", "no driver", id="unknown-dialect"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    """A URL that names no usable database is a ConfigError, with any password masked."""
    with pytest.raises(ConfigError, match=message) as caught:
        Journal(url).connect()
    assert ":pw@" not in str(caught.value)


def test_delivery_to_one_endpoint_does_not_end_the_route(tmp_path: Path) -> None:
    """A fan-out's first delivery leaves the outcome open; the finishing commit closes it as delivered."""
    journal = Journal(f"sqlite:///{tmp_path}/j.db")
    journal.connect()
    message = Message(body=b"x", id="m1")
    journal.received("r", message)
    journal.mark_delivered("r", message, "b.out", body=b"x", event=True)
    assert journal.outcome("r", "m1") is None
    journal.mark_delivered("r", message, "c.out", body=b"x", event=True, finish=message)
    assert journal.outcome("r", "m1") == "delivered"
    journal.close()


def test_this_process_writers_take_turns_on_a_lock_released_at_commit_and_rollback(db: Path) -> None:
    """A second thread's write waits for the first one's commit (on the engine's lock, not in SQLite's
    busy handler: SQLite never reports the database locked to it), and a write that rolls back lets the
    next one in at once."""
    from esb.journal.engine import create_journal_engine, writer

    engine = writer(create_journal_engine(f"sqlite:///{db}", pool_size=2))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
    order: list[str] = []
    first_in = threading.Event()
    done = threading.Event()

    def second() -> None:
        first_in.wait(5)
        with engine.connect() as conn:
            # no busy wait at all on this connection: were it let in while the first holds SQLite's
            # write lock, its BEGIN IMMEDIATE would fail "database is locked" at once
            conn.connection.driver_connection.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
            with conn.begin():
                order.append("second")
                conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with engine.begin() as conn:
        first_in.set()
        threading.Event().wait(0.2)  # the second thread is at its BEGIN by now
        order.append("first")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    thread.join(10)
    assert order == ["first", "second"]
    assert done.is_set()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        _insert(engine, "'three'; no such value")  # a failing statement: the transaction rolls back
    third = threading.Thread(target=lambda: _insert(engine, 4))
    third.start()
    third.join(10)  # a lock left held by the rollback would keep it waiting the busy timeout (30 s)
    assert not third.is_alive()
    with engine.connect() as conn:
        assert sorted(v for (v,) in conn.exec_driver_sql("SELECT v FROM t")) == [1, 2, 4]
    engine.dispose()


def _insert(engine: Any, value: int | str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({value})")
