"""The engine's store: the database, pinned definitions, and instance leases guarded by a fencing counter.

A runner **claims** a due instance (``status`` live, ``wake_at`` passed, no lease or an expired one): in
one transaction it reads a candidate (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` serialises writers) and sets ``lease_owner``, ``lease_until`` and ``fence = fence + 1``
where the fence is still the one it read. Every later write of that runner goes through :meth:`guard`,
an ``UPDATE ... WHERE id = :id AND fence = :fence`` in the write's own transaction: once another runner
has taken the instance over (after the lease expired) the fence differs, nothing is written and
:class:`LeaseLostError` rolls the transaction back.

The claim and every guarded write return the row as written (``RETURNING``; statements built once in
:mod:`.statements`): the claim keeps it in :attr:`Claim.seen`, so the runner reads the instance only
when no write of its own has shown it yet. Only the lease holder changes the instance's columns
(others only make it due sooner: ``wake_at``); an operator's retry moves the fence.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.exceptions import EsbError
from esb.journal.engine import DatabaseErrors, is_memory_sqlite, writer
from esb.journal.migrate import open_migrated
from esb.message import utcnow
from esb.process.definition import Process
from esb.process.engine import statements
from esb.process.engine.statements import LIVE
from esb.process.engine.tables import process_definitions
from esb.process.versions import fingerprint

__all__ = ["ENDED", "HOLD_IDLE", "LIVE", "STUCK", "Claim", "LeaseLostError", "ProcessStore", "Seen"]
#: Statuses that end an instance.
ENDED = ("completed", "partial", "failed", "cancelled")
#: Seconds a runner's held connection may sit idle (a call out) before the pool checks it again.
HOLD_IDLE = 1.0
#: A failed undo: the instance stops, visible, until an operator acts.
STUCK = "stuck"


class LeaseLostError(EsbError):
    """The instance's fence moved: another runner took it over, so this one must not write."""


class Seen:
    """The instance row as its claim last wrote or read it (None: not seen yet, read it).

    ``keys``: the business keys this claim recorded (a step that finds no new one writes none).
    """

    __slots__ = ("keys", "row")

    def __init__(self, row: Any = None) -> None:
        self.row = row
        self.keys: dict[str, tuple[str, ...]] = {}

    def keep(self, found: Any) -> None:
        """Keep a returned row; one returned without ``data`` takes the data last seen (or is not kept)."""
        if "data" in found._fields:
            self.row = found
        elif self.row is None:
            return
        else:
            self.row = SimpleNamespace(**found._mapping, data=self.row.data)


@dataclass(frozen=True)
class Claim:
    """A runner's lease on one instance: every write is guarded by ``fence``.

    ``seen`` holds the row as the holder's last write returned it (the holder is the only writer of
    the instance's columns but ``wake_at`` while its fence holds).
    """

    instance_id: str
    owner: str
    fence: int
    seen: Seen = field(default_factory=Seen, compare=False, repr=False)


class ProcessStore:
    """The process tables of one journal database (migrated to head on :meth:`connect`)."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._shared = is_memory_sqlite(url)  # one connection for every thread
        self.errors = DatabaseErrors(url, serialise=self._shared)
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._held = threading.local()  # a runner's connection while it holds one (see hold())
        self._definitions: dict[str, Process] = {}

    def __enter__(self) -> ProcessStore:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Create the engine and upgrade the schema to head (as the journal does)."""
        if self._engine is not None:
            return
        with self.errors("connect"):
            engine = open_migrated(self.url, pool_size=self.pool_size, owner="processes")
        self._engine, self._writer = engine, writer(engine)

    def close(self) -> None:
        """Dispose of the connections; harmless twice."""
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            engine.dispose()

    @property
    def engine(self) -> Engine:
        """The writing engine (``BEGIN IMMEDIATE`` on SQLite)."""
        if self._writer is None:
            raise RuntimeError("ProcessStore.connect() first")
        return self._writer

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep one connection for this thread's :meth:`begin` until the block ends (a runner's round).

        A round's transactions then skip the pool's checkout, ping and reset each. A connection idle
        longer than :data:`HOLD_IDLE` (a call out) or dropped by the database goes back to the pool
        and a checked one is taken, as a checkout per transaction would. Not for in-memory SQLite (its
        one connection is shared by every thread); nested blocks use the outer one.
        """
        if getattr(self._held, "conn", None) is not None or self._shared:
            yield
            return
        with self.errors("connect"):
            self._held.conn, self._held.used = self.engine.connect(), time.monotonic()
        try:
            yield
        finally:
            conn, self._held.conn = self._held.conn, None
            with self.errors("close"):
                conn.close()

    @contextlib.contextmanager
    def begin(self, what: str) -> Iterator[sa.Connection]:
        """A write transaction on the connection this thread holds (else one from the pool).

        Database errors become :class:`TransportError` naming ``what``.
        """
        with self.errors(what):
            held = self._checked_held()
            if held is None:
                with self.engine.begin() as conn:
                    yield conn
                return
            try:
                with held.begin():
                    yield held
            finally:
                self._held.used = time.monotonic()

    def _checked_held(self) -> sa.Connection | None:
        """The connection this thread holds, taken anew when it was dropped or sat idle too long."""
        held: sa.Connection | None = getattr(self._held, "conn", None)
        if held is None:
            return None
        if held.invalidated or held.closed or time.monotonic() - self._held.used > HOLD_IDLE:
            held.close()  # back to the pool, whose checkout pings it (or a fresh one) first
            held = self._held.conn = self.engine.connect()
        return held

    @property
    def postgres(self) -> bool:
        """True on PostgreSQL (row locks), False on SQLite (one writer at a time)."""
        return self.engine.dialect.name == "postgresql"

    # -- definitions ----------------------------------------------------------------------------------
    def pin(self, conn: sa.Connection, process: Process) -> str:
        """Store ``process`` by its content hash (once) and return the hash an instance pins."""
        digest = fingerprint(process)
        if digest not in self._definitions:
            found = conn.execute(
                sa.select(process_definitions.c.hash).where(process_definitions.c.hash == digest)
            ).first()
            if found is None:
                conn.execute(
                    process_definitions.insert().values(
                        hash=digest,
                        process=process.process,
                        version=process.version,
                        body=process.model_dump(mode="json", by_alias=True, exclude_unset=True),
                        created_at=utcnow(),
                    )
                )
            self._definitions[digest] = process
        return digest

    def definition(self, conn: sa.Connection | None, digest: str) -> Process:
        """Return the pinned definition ``digest`` (what the instance started with).

        Read once per store; ``conn`` None: in a transaction of its own when it must be read.
        """
        found = self._definitions.get(digest)
        if found is not None:
            return found
        if conn is None:
            with self.begin("read") as own:
                return self.definition(own, digest)
        body = conn.execute(
            sa.select(process_definitions.c.body).where(process_definitions.c.hash == digest)
        ).scalar_one()
        self._definitions[digest] = Process.model_validate(body)
        return self._definitions[digest]

    # -- leases ---------------------------------------------------------------------------------------
    def claim(self, owner: str, lease: float, now: datetime | None = None) -> Claim | None:
        """Take the lease of one due instance (earliest ``wake_at`` first); None when none is due.

        One statement: the due row is chosen (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), leased, its
        fence moved, and returned (kept in the claim's :attr:`Claim.seen`).
        """
        now = now or utcnow()
        with self.begin("claim") as conn:
            sql = statements.of(conn)
            row = conn.execute(
                sql.claim, {"now": now, "owner": owner, "until": now + timedelta(seconds=lease)}
            ).first()
        if row is None:
            return None
        return Claim(row.id, owner, row.fence, Seen(row))

    def guard(self, conn: sa.Connection, claim: Claim, **values: Any) -> None:
        """Write ``values`` to the claimed instance in ``conn``'s transaction, or raise LeaseLostError.

        The row as written is kept in ``claim.seen`` (it is the instance once the transaction commits;
        a transaction that rolls back ends the claim's run or is followed by another write).
        """
        sql = statements.of(conn)
        found = conn.execute(
            sql.guard_data if "data" in values else sql.guard,
            {"updated_at": utcnow(), **values, "iid": claim.instance_id, "ifence": claim.fence},
        ).first()
        if found is None:
            raise LeaseLostError(
                f"instance {claim.instance_id}: lease of {claim.owner} was taken over; not written"
            )
        claim.seen.keep(found)

    def extend(self, claim: Claim, lease: float, now: datetime | None = None) -> None:
        """Push the lease's end ``lease`` seconds past ``now`` (a runner that keeps working on it)."""
        with self.begin("lease") as conn:
            self.guard(conn, claim, lease_until=(now or utcnow()) + timedelta(seconds=lease))

    def release(self, claim: Claim) -> None:
        """Give the lease back (the fence stays: a stale holder still cannot write)."""
        with self.begin("release") as conn:
            self.guard(conn, claim, lease_owner=None, lease_until=None)

    def instance(self, conn: sa.Connection, instance_id: str, *, lock: bool = False) -> Any:
        """Return the instance row (``lock``: FOR UPDATE on PostgreSQL), or None.

        The row also says ``cancel_waiting``: whether a cancel request waits in the inbox for it.
        """
        query = statements.of(conn).read
        if lock and self.postgres:
            query = query.with_for_update()
        return conn.execute(query, {"iid": instance_id}).first()
