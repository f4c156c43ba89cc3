"""The batch ack check reads the state databases through sqlite3 with the rows SQLAlchemy's statements
over the store's tables give (adapters/batch/acks.py: SENT_SQL, STAGED_SQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.batch.acks import SENT_SQL, STAGED_SQL, _read
from adapters.batch.store import StateStore, batches, files


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A state database created by the store, with sent, rendered and staged files."""
    store = StateStore(tmp_path / "state.db")
    store.open()
    with store.db.begin() as conn:
        for index, (status, created) in enumerate(
            [("uploaded", 100), ("rendered", 150), ("uploaded", 200), ("uploaded", 300), ("uploaded", 250)]
        ):
            conn.execute(
                batches.insert().values(
                    file_name=f"DIR_{index}.txt",
                    status=status,
                    records=index * 10,
                    local="x",
                    created=created,
                )
            )
        for index, reconciliation in enumerate([None, '{"header": {"count": "3"}}', "not json: 中文"]):
            conn.execute(
                files.insert().values(
                    key=f"k{index}", name=f"ACK_DIR_{index}.txt", size=1, mtime=1, sha256="s", staged="p",
                    status="done", reconciliation=reconciliation, created=1, updated=1,
                )
            )  # fmt: skip
    store.close()
    return tmp_path / "state.db"


@pytest.mark.parametrize("since", [0, 200, 201, 1000])
def test_the_sent_files_are_the_sqlalchemy_statements(db: Path, since: int) -> None:
    """SENT_SQL gives the uploaded files created since ``since``, oldest first, as the statement over
    ``batches`` does (the boundary included)."""
    statement = (
        sa.select(batches.c.file_name, batches.c.records, batches.c.created)
        .where(batches.c.status == "uploaded", batches.c.created >= since)
        .order_by(batches.c.created)
    )
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(statement)]
    engine.dispose()
    assert [tuple(row) for row in _read(db, SENT_SQL, (since,))] == expected
    if since == 200:
        assert [name for name, _, _ in expected] == ["DIR_2.txt", "DIR_4.txt", "DIR_3.txt"]


def test_the_staged_files_are_the_sqlalchemy_statements(db: Path) -> None:
    """STAGED_SQL gives every staged file's name and reconciliation, as the statement over ``files``."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        expected = {tuple(row) for row in conn.execute(sa.select(files.c.name, files.c.reconciliation))}
    engine.dispose()
    assert {tuple(row) for row in _read(db, STAGED_SQL)} == expected
    assert len(expected) == 3


def test_a_missing_database_or_table_reads_nothing_and_creates_nothing(tmp_path: Path) -> None:
    """No state database yet, or one without the tables: no rows, and nothing is created or written."""
    missing = tmp_path / "none" / "state.db"
    assert _read(missing, SENT_SQL, (0,)) == []
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    assert _read(empty, STAGED_SQL) == []
