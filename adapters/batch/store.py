"""The batch adapter's own state: files seen, progress through the file in hand, sequences, outbox.

A small SQLite database per endpoint under ``settings.data_dir/batch/`` (SQLAlchemy Core, WAL). It is
what makes restarts safe: a file is known by name + size + SHA-256 and never processed twice, the file
in hand resumes from its last checkpoint, and file sequence numbers never repeat.

File states: ``staged`` (or ``checked``) -> ``processing`` -> ``processed`` (or ``failed``) -> ``done``
(or ``error``) once the remote file has been moved to ``done/`` (``error/``). A file whose content
(SHA-256) was already accepted under another name is recorded ``duplicate`` (its ``reconciliation``
names the original) and goes to ``done`` without a record handed out.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from esb.files import create_private

metadata = MetaData()

files = Table(
    "batch_files",
    metadata,
    Column("key", String, primary_key=True),  # name|size|sha256
    Column("name", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("mtime", Integer, nullable=False),
    Column("sha256", String, nullable=False),
    Column("staged", String, nullable=False),  # local staged path
    Column("status", String, nullable=False),
    Column("first_offset", Integer, nullable=False, default=0),
    Column("next_offset", Integer, nullable=False, default=0),  # resume point: byte offset
    Column("next_record", Integer, nullable=False, default=0),  # records settled before it
    Column("reject_size", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("delivered", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("reconciliation", Text),
    Column("created", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
)

sightings = Table(
    "batch_sightings",
    metadata,
    Column("name", String, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("mtime", Integer, nullable=False),
    Column("count", Integer, nullable=False),
)

sequences = Table(
    "batch_sequences",
    metadata,
    Column("scope", String, primary_key=True),
    Column("last", Integer, nullable=False),
)

outbox = Table(
    "batch_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String, nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("batch", Integer),  # set when the record was put into a file
)

batches = Table(
    "batch_out_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String, nullable=False, unique=True),
    Column("status", String, nullable=False),  # rendered -> uploaded
    Column("records", Integer, nullable=False),
    Column("local", String, nullable=False),
    Column("created", Integer, nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class StateStore:
    """The state database of one batch endpoint; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine: Engine | None = None
        self.lock = threading.RLock()
        self._progress: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create the database (and its folder) if needed."""
        create_private(self.path)  # 0600 before SQLite opens it: its -wal and -shm take its mode
        self.engine = create_engine(f"sqlite:///{self.path}")
        event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        """Dispose of the connections. Safe to call twice."""
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    @property
    def db(self) -> Engine:
        """The engine (``open()`` first)."""
        assert self.engine is not None, "open() first"
        return self.engine

    # -- files --------------------------------------------------------------------------------------
    def file(self, key: str) -> dict[str, Any] | None:
        """Return the row of file ``key``."""
        with self.db.connect() as conn:
            row = conn.execute(select(files).where(files.c.key == key)).mappings().first()
        return dict(row) if row else None

    def files_in(self, *statuses: str) -> list[dict[str, Any]]:
        """Return the files in ``statuses``, oldest first."""
        with self.db.connect() as conn:
            rows = (
                conn.execute(
                    select(files).where(files.c.status.in_(statuses)).order_by(files.c.created, files.c.name)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def known_name(self, name: str, size: int) -> dict[str, Any] | None:
        """Return the newest row for a remote ``name`` of ``size`` bytes (already staged or finished)."""
        with self.db.connect() as conn:
            row = (
                conn.execute(
                    select(files)
                    .where(files.c.name == name, files.c.size == size)
                    .order_by(files.c.created.desc())
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def latest(self, name: str) -> dict[str, Any] | None:
        """Return the newest row for the remote file ``name`` (any size and content)."""
        with self.db.connect() as conn:
            row = (
                conn.execute(select(files).where(files.c.name == name).order_by(files.c.created.desc()))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def original(self, sha256: str, name: str) -> dict[str, Any] | None:
        """Return the oldest file with content ``sha256`` under another name than ``name`` that was
        accepted (staged, in hand, processed or done): the original of a duplicate."""
        accepted = ("staged", "checked", "processing", "processed", "done")
        with self.db.connect() as conn:
            row = (
                conn.execute(
                    select(files)
                    .where(files.c.sha256 == sha256, files.c.name != name, files.c.status.in_(accepted))
                    .order_by(files.c.created, files.c.name)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def add_file(self, row: dict[str, Any]) -> bool:
        """Record a staged file; False when the same name + size + hash is already known."""
        now = int(time.time())
        try:
            with self.db.begin() as conn:
                conn.execute(insert(files).values(created=now, updated=now, **row))
        except IntegrityError:
            return False
        return True

    def set_file(self, key: str, **values: Any) -> None:
        """Update file ``key``."""
        if "reconciliation" in values and not isinstance(values["reconciliation"], str | None):
            values["reconciliation"] = json.dumps(values["reconciliation"], ensure_ascii=False)
        with self.db.begin() as conn:
            conn.execute(update(files).where(files.c.key == key).values(updated=int(time.time()), **values))

    def checkpoint(
        self, key: str, next_offset: int, next_record: int, reject_size: int, **counts: int
    ) -> None:
        """Update file ``key``'s progress without waiting for the disk (``synchronous=NORMAL``).

        A checkpoint lost to a power cut (never to a crash of the hub: WAL keeps it) only makes the
        records after the previous one come again, with the same ids, and the route's journal drops
        them as duplicates; a change of status still waits for the disk (``set_file``). A connection
        of its own, with a fixed statement: it runs every ``checkpoint_every`` records.
        """
        with self.lock:
            if self._progress is None:
                self._progress = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
                self._progress.execute("PRAGMA synchronous=NORMAL")
            with self._progress:
                self._progress.execute(
                    "UPDATE batch_files SET next_offset=?, next_record=?, reject_size=?, delivered=?, "
                    "rejected=?, updated=? WHERE key=?",
                    (
                        next_offset,
                        next_record,
                        reject_size,
                        counts["delivered"],
                        counts["rejected"],
                        int(time.time()),
                        key,
                    ),
                )

    # -- sightings (stable size and mtime) ------------------------------------------------------------
    def sighting(self, name: str, size: int, mtime: int) -> int:
        """Record one observation; return how many polls in a row saw this size and mtime."""
        with self.db.begin() as conn:
            row = conn.execute(select(sightings).where(sightings.c.name == name)).mappings().first()
            if row and row["size"] == size and row["mtime"] == mtime:
                count = int(row["count"]) + 1
                conn.execute(update(sightings).where(sightings.c.name == name).values(count=count))
                return count
            conn.execute(delete(sightings).where(sightings.c.name == name))
            conn.execute(insert(sightings).values(name=name, size=size, mtime=mtime, count=1))
            return 1

    def forget_sighting(self, name: str) -> None:
        """Drop the observations of ``name``."""
        with self.db.begin() as conn:
            conn.execute(delete(sightings).where(sightings.c.name == name))

    # -- sequences -----------------------------------------------------------------------------------
    def next_sequence(self, scope: str) -> int:
        """Return the next number in ``scope`` (1, 2, ...), committed before it is returned."""
        with self.lock, self.db.begin() as conn:
            last = conn.execute(select(sequences.c.last).where(sequences.c.scope == scope)).scalar()
            value = (last or 0) + 1
            if last is None:
                conn.execute(insert(sequences).values(scope=scope, last=value))
            else:
                conn.execute(update(sequences).where(sequences.c.scope == scope).values(last=value))
        return value

    # -- outbox --------------------------------------------------------------------------------------
    def spool(self, message_id: str, body: str) -> int:
        """Keep one outgoing record (once per message id); return how many records wait."""
        with self.lock, self.db.begin() as conn:
            exists = conn.execute(select(outbox.c.seq).where(outbox.c.message_id == message_id)).first()
            if exists is None:
                conn.execute(insert(outbox).values(message_id=message_id, body=body))
            return int(
                conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.batch.is_(None))
                ).scalar()
                or 0
            )
