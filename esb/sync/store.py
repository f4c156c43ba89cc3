"""The sync store: per (sync name, key), what the hub last sent that target, in the journal's database.

Every write is a compare-and-set, so two hub processes (or two workers) can never make an older version
win, with or without ordered partitions:

- :meth:`SyncStore.claim` writes one key's new state only if the row is still at the revision the caller
  read (``INSERT ... ON CONFLICT DO NOTHING`` for a key never seen, ``UPDATE ... WHERE revision = :seen``
  otherwise) and, belt and braces, only if the stored version is not newer. A lost race returns False:
  read again and judge again.
- :meth:`SyncStore.put_many` writes many keys in one transaction (a resync's chunk), each an upsert guarded
  by version (``ON CONFLICT DO UPDATE ... WHERE stored version <= new version``): a row whose stored
  version is newer is left as it is.

Reads are bulk too: :meth:`get_many` for a chunk of keys, :meth:`iterate` for a whole sync in key order,
chunk by chunk (keyset pagination: flat memory however many rows), bodies only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from esb.journal.engine import DatabaseErrors, is_memory_sqlite, reader, writer
from esb.journal.migrate import open_migrated
from esb.journal.queries import Filter, find
from esb.journal.records import MessageRecord
from esb.journal.schema import messages
from esb.journal.statements import Statements
from esb.message import utcnow
from esb.sync.content import pack, unpack
from esb.sync.tables import sync_state, sync_target_ids

__all__ = ["SyncState", "SyncStore", "SyncWrite"]

#: Keys per ``IN (...)`` list in :meth:`SyncStore.get_many` (well under every driver's parameter limit).
IN_CHUNK = 500
_T = sync_state.c
#: The ``updated_at`` of a state read by :meth:`SyncStore.compare_many` (the column is not read).
NOT_READ = datetime(1970, 1, 1, tzinfo=UTC)
_LIGHT = (_T.name, _T.key, _T.hash, _T.version, _T.deleted, _T.message_id, _T.updated_at, _T.revision)


@dataclass(frozen=True, slots=True)
class SyncState:
    """What the target holds for one key, as the hub last sent it (see :mod:`esb.sync.tables`).

    ``packed`` is the stored projection (compressed; None when read without bodies or never sent):
    :attr:`body` decodes it.
    """

    name: str
    key: str
    hash: str
    version: int | None
    deleted: bool
    message_id: str | None
    updated_at: datetime
    revision: int
    packed: bytes | None = None

    @property
    def body(self) -> dict[str, Any] | None:
        """The projected canonical body that was sent (None if not read or never sent)."""
        return unpack(self.packed)


@dataclass(frozen=True, slots=True)
class SyncWrite:
    """A key's new state: its content hash, version, deleted or not, the message that set it, the body."""

    name: str
    key: str
    hash: str
    version: int | None
    deleted: bool
    message_id: str | None
    body: dict[str, Any] | None

    def row(self, now: datetime) -> dict[str, Any]:
        """The table row (without ``revision``)."""
        return {
            "name": self.name,
            "key": self.key,
            "hash": self.hash,
            "version": self.version,
            "deleted": self.deleted,
            "message_id": self.message_id,
            "updated_at": now,
            "body": None if self.body is None else pack(self.body),
        }


def _state(row: Any, bodies: bool) -> SyncState:
    return SyncState(
        row.name,
        row.key,
        row.hash,
        row.version,
        bool(row.deleted),
        row.message_id,
        row.updated_at,
        row.revision,
        row.body if bodies else None,
    )


class SyncStore:
    """The sync state of one journal database (migrated to head on :meth:`connect`)."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self.errors = DatabaseErrors(url, serialise=is_memory_sqlite(url))
        self._engine: Engine | None = None
        self._dialect = ""
        self._final_state: Any = None
        self._claim_statements: tuple[Any, Any, Any] | None = None

    def __enter__(self) -> SyncStore:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Create the engine and upgrade the schema to head (as the journal does)."""
        if self._engine is not None:
            return
        with self.errors("connect"):
            engine = open_migrated(self.url, pool_size=self.pool_size, owner="sync")
        self._dialect = engine.dialect.name
        self._final_state = Statements.build(self._dialect).final_state
        self._engine = engine

    def close(self) -> None:
        """Dispose of the connections; harmless twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def _reader(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("SyncStore.connect() first")
        return reader(self._engine)

    def _writer(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("SyncStore.connect() first")
        return writer(self._engine)

    def read_engine(self) -> Engine:
        """The engine for reads (the run and report tables of :mod:`esb.sync.runs` share it)."""
        return self._reader()

    def write_engine(self) -> Engine:
        """The engine for writes (on SQLite, writers take turns on one lock: see esb.journal.engine)."""
        return self._writer()

    # -- reads ----------------------------------------------------------------------------------------
    def get(self, name: str, key: str, *, bodies: bool = False) -> SyncState | None:
        """Return the state of one key (None: the hub never synced it)."""
        return self.get_many(name, [key], bodies=bodies).get(key)

    def get_many(self, name: str, keys: Iterable[str], *, bodies: bool = False) -> dict[str, SyncState]:
        """Return the state of each of ``keys`` that has one, by key (one query per 500 keys)."""
        wanted = list(dict.fromkeys(keys))
        columns = (*_LIGHT, _T.body) if bodies else _LIGHT
        found: dict[str, SyncState] = {}
        with self.errors("sync get"), self._reader().connect() as conn:
            for start in range(0, len(wanted), IN_CHUNK):
                query = sa.select(*columns).where(
                    _T.name == name, _T.key.in_(wanted[start : start + IN_CHUNK])
                )
                for row in conn.execute(query):
                    found[row.key] = _state(row, bodies)
        return found

    def compare_many(self, name: str, keys: Sequence[str]) -> dict[str, SyncState]:
        """Return the state of each of ``keys`` that has one, for a bulk compare (a resync's chunk).

        As :meth:`get_many` without bodies, faster: one query per 500 keys over the columns a compare
        needs, rows read as plain tuples; ``updated_at`` is not read (:data:`NOT_READ`).
        """
        columns = (_T.key, _T.hash, _T.version, _T.deleted, _T.message_id, _T.revision)
        found: dict[str, SyncState] = {}
        with self.errors("sync compare"), self._reader().connect() as conn:
            for start in range(0, len(keys), IN_CHUNK):
                query = sa.select(*columns).where(_T.name == name, _T.key.in_(keys[start : start + IN_CHUNK]))
                for key, hashed, version, deleted, message_id, revision in conn.execute(query):
                    found[key] = SyncState(
                        name, key, hashed, version, bool(deleted), message_id, NOT_READ, revision
                    )
        return found

    def iterate_keys(self, name: str, *, chunk: int = 5000) -> Iterator[list[tuple[str, bool, str | None]]]:
        """Yield a sync's ``(key, deleted, message_id)`` in key order, ``chunk`` at a time (keyset pages, as
        :meth:`iterate`, over three columns read as plain tuples: a resync's pass for missing keys)."""
        last: str | None = None
        while True:
            query = sa.select(_T.key, _T.deleted, _T.message_id).where(_T.name == name)
            query = query.order_by(_T.key).limit(chunk)
            if last is not None:
                query = query.where(_T.key > last)
            with self.errors("sync iterate"), self._reader().connect() as conn:
                rows = [(key, bool(deleted), message_id) for key, deleted, message_id in conn.execute(query)]
            if not rows:
                return
            yield rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    def iterate(
        self, name: str, *, after: str | None = None, chunk: int = 1000, bodies: bool = False
    ) -> Iterator[list[SyncState]]:
        """Yield a sync's rows in key order, ``chunk`` at a time, starting after key ``after``.

        Each chunk is its own short query (keyset pagination): memory stays flat, nothing is held open
        between chunks, and a pass that stopped can start again after the last key it finished.
        """
        columns = (*_LIGHT, _T.body) if bodies else _LIGHT
        last = after
        while True:
            query = sa.select(*columns).where(_T.name == name).order_by(_T.key).limit(chunk)
            if last is not None:
                query = query.where(_T.key > last)
            with self.errors("sync iterate"), self._reader().connect() as conn:
                rows = [_state(row, bodies) for row in conn.execute(query)]
            if not rows:
                return
            yield rows
            if len(rows) < chunk:
                return
            last = rows[-1].key

    def count(self, name: str, *, deleted: bool | None = None) -> int:
        """Return how many keys a sync holds (only deleted, or only live ones, when ``deleted`` is given)."""
        query = sa.select(sa.func.count()).select_from(sync_state).where(_T.name == name)
        if deleted is not None:
            query = query.where(_T.deleted == deleted)
        with self.errors("sync count"), self._reader().connect() as conn:
            return int(conn.execute(query).scalar_one())

    def names(self) -> list[str]:
        """Return the name of every sync that holds state, sorted."""
        with self.errors("sync names"), self._reader().connect() as conn:
            return list(conn.execute(sa.select(_T.name).distinct().order_by(_T.name)).scalars())

    def outcome(self, route: str, message_id: str) -> str | None:
        """Return the final journal state of ``message_id`` on ``route`` (as :meth:`Journal.outcome`)."""
        with self.errors("sync outcome"), self._reader().connect() as conn:
            state = conn.execute(self._final_state, {"mid": message_id, "r": route}).scalar()
        return None if state in (None, "replayed") else str(state)

    def sent_message(self, route: str, message_id: str) -> tuple[MessageRecord, bytes] | None:
        """Return how ``message_id`` entered ``route`` (its journaled envelope and the bytes it had on that
        route), or None when the journal holds no such message or kept no body (``keep_bodies: false``)."""
        body_query = sa.select(messages.c.body).where(
            messages.c.id == message_id, messages.c.route == route, messages.c.body.is_not(None)
        )
        flt = Filter(message_id=message_id, route=route)
        with self.errors("sync sent message"), self._reader().connect() as conn:
            body = conn.execute(body_query).scalar()
            found = find(conn, flt, 1) if body is not None else []
        return (found[0], bytes(body)) if found and body is not None else None

    def target_id(self, name: str, key: str) -> str | None:
        """Return the target's own id of ``key`` (kept by :meth:`remember_target_id`), or None."""
        ids = sync_target_ids.c
        query = sa.select(ids.target_id).where(ids.name == name, ids.key == key)
        with self.errors("sync target id"), self._reader().connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else str(found)

    # -- writes ---------------------------------------------------------------------------------------
    def claim(self, write: SyncWrite, revision: int | None) -> bool:
        """Write one key's new state if the row is still at ``revision`` (None: no row yet).

        Also refused when the stored version is newer than ``write.version``. Returns False when the
        row moved since it was read (another worker or process wrote it): read again and judge again.
        """
        row = write.row(utcnow())
        with self.errors("sync claim"), self._writer().begin() as conn:
            if revision is None:
                statement = self._insert().on_conflict_do_nothing(index_elements=["name", "key"])
                statement = statement.returning(_T.revision)  # rowcount is -1 here on psycopg
                return conn.execute(statement, {**row, "revision": 1}).first() is not None
            statement = (
                sa.update(sync_state)
                .where(_T.name == write.name, _T.key == write.key, _T.revision == revision)
                .where(_not_newer(write.version))
                .values(
                    {
                        **{k: v for k, v in row.items() if k not in ("name", "key")},
                        "revision": _T.revision + 1,
                    }
                )
                .returning(_T.revision)
            )
            return conn.execute(statement).first() is not None

    def claim_many(self, claims: Sequence[tuple[SyncWrite, int | None]]) -> set[str]:
        """:meth:`claim` each ``(write, revision read)`` in one transaction; return the keys claimed.

        For a resync's chunk of differences: the same compare-and-set per key as :meth:`claim` (a key
        that moved since it was read is not written, and its caller judges it again), one commit. The
        three statements (insert a new key, update a versioned or an unversioned one) are built once per
        store with bound parameters, so each key costs one execution of a cached statement.
        """
        claimed: set[str] = set()
        now = utcnow()
        insert, versioned, unversioned = self._claims()
        with self.errors("sync claim"), self._writer().begin() as conn:
            for write, revision in claims:
                row = write.row(now)
                if revision is None:
                    done = conn.execute(insert, {**row, "revision": 1}).first()
                else:
                    params = {f"w_{k}": v for k, v in row.items()}
                    params["w_revision"] = revision
                    done = conn.execute(unversioned if write.version is None else versioned, params).first()
                if done is not None:
                    claimed.add(write.key)
        return claimed

    def _claims(self) -> tuple[Any, Any, Any]:
        """The statements of :meth:`claim_many`, built on first use: insert a new key (nothing when it
        exists), update a key at the revision read (versioned: unless the stored version is newer)."""
        if self._claim_statements is None:
            insert = self._insert().on_conflict_do_nothing(index_elements=["name", "key"])
            set_ = {
                column: sa.bindparam(f"w_{column}", type_=sync_state.c[column].type)
                for column in ("hash", "version", "deleted", "message_id", "updated_at", "body")
            }
            at_revision = sa.update(sync_state).where(
                _T.name == sa.bindparam("w_name", type_=_T.name.type),
                _T.key == sa.bindparam("w_key", type_=_T.key.type),
                _T.revision == sa.bindparam("w_revision", type_=_T.revision.type),
            )
            at_revision = at_revision.values({**set_, "revision": _T.revision + 1})
            versioned = at_revision.where(sa.or_(_T.version.is_(None), _T.version <= set_["version"]))
            self._claim_statements = (
                insert.returning(_T.revision),
                versioned.returning(_T.revision),
                at_revision.returning(_T.revision),
            )
        return self._claim_statements

    def advance(self, name: str, key: str, version: int, revision: int) -> bool:
        """Raise a key's stored version (nothing else changes) if the row is still at ``revision``.

        A change that was skipped as unchanged still moves the version on, so that a late, older update
        arriving after it is recognised as stale.
        """
        statement = (
            sa.update(sync_state)
            .where(_T.name == name, _T.key == key, _T.revision == revision, _not_newer(version))
            .values(version=version, updated_at=utcnow(), revision=_T.revision + 1)
            .returning(_T.revision)
        )
        with self.errors("sync advance"), self._writer().begin() as conn:
            return conn.execute(statement).first() is not None

    def put_many(self, writes: Sequence[SyncWrite]) -> None:
        """Write many keys in one transaction; a key whose stored version is newer keeps its row.

        For a resync's chunk, after the chunk's differences were sent. Keys without a version (a sync
        without a version rule) are always written.
        """
        if not writes:
            return
        now = utcnow()
        insert = self._insert()
        new = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["name", "key"],
            set_={
                "hash": new.hash,
                "version": new.version,
                "deleted": new.deleted,
                "message_id": new.message_id,
                "updated_at": new.updated_at,
                "body": new.body,
                "revision": _T.revision + 1,
            },
            where=sa.or_(_T.version.is_(None), new.version.is_(None), _T.version <= new.version),
        )
        with self.errors("sync put_many"), self._writer().begin() as conn:
            conn.execute(statement, [{**w.row(now), "revision": 1} for w in writes])

    def remember_target_id(self, name: str, key: str, target_id: str) -> None:
        """Keep the target's own id of ``key`` (from its answer to a create), replacing an older one.

        Apart from the key's state: it does not move the state's revision (a resync's fingerprints stay
        valid), and a compare-and-set never overwrites it.
        """
        row = {"name": name, "key": key, "target_id": target_id, "updated_at": utcnow()}
        insert = (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(sync_target_ids)
        statement = insert.on_conflict_do_update(
            index_elements=["name", "key"],
            set_={"target_id": insert.excluded.target_id, "updated_at": insert.excluded.updated_at},
        )
        with self.errors("sync remember target id"), self._writer().begin() as conn:
            conn.execute(statement, row)

    def delete_sync(self, name: str) -> int:
        """Forget every key of a sync (the next change of each is sent); return how many rows went."""
        counted = sa.select(sa.func.count()).select_from(sync_state).where(_T.name == name)
        with self.errors("sync forget"), self._writer().begin() as conn:
            gone = int(conn.execute(counted).scalar_one())  # rowcount is not reliable on every driver
            conn.execute(sa.delete(sync_state).where(_T.name == name))
        return gone

    def _insert(self) -> Any:
        """The dialect's INSERT (with ON CONFLICT) for the table."""
        return (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(sync_state)


def _not_newer(version: int | None) -> Any:
    """The guard of a versioned write: the stored version is absent or not newer than ``version``."""
    if version is None:
        return sa.true()
    return sa.or_(_T.version.is_(None), _T.version <= version)
