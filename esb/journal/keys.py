"""A ledger of one-time keys in the journal's database: each key is accepted once within its time to live.

Used for WS-Security nonces (a replayed digest token is refused in this process, in every other hub
process on the same database, and after a restart). A key is recorded by an INSERT on the primary key, so
exactly one of several racing uses wins; an expired row with the same key is deleted first in the same
transaction, and expired rows are pruned now and then. The engine is made (and the schema migrated) at
the first use, and again at the next use after a failure: a database that is down when the hub starts
stops nothing but the uses themselves, which raise :class:`LedgerUnavailableError` (fail closed).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from esb.exceptions import EsbError, TransportError, mask_url
from esb.journal.engine import describe, writer
from esb.journal.migrate import open_migrated
from esb.journal.schema import one_time_keys

#: Seconds between two prunings of expired rows (per ledger).
PRUNE_EVERY = 60.0


class LedgerUnavailableError(TransportError):
    """The ledger could not say whether a key was used (the caller refuses: fail closed)."""


class OneTimeKeyLedger:
    """One-time keys in the journal's database (SQLite or PostgreSQL), shared by every process using it."""

    def __init__(self, url: str, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.url = url
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._pruned = 0.0

    def _connect(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_migrated(self.url, pool_size=2, owner="one-time keys")
            return writer(self._engine)

    def first_use(self, key: str, ttl: float) -> bool:
        """INSERT ``key`` for ``ttl`` seconds; False when it is there already (a replay)."""
        now = self.clock()
        try:
            engine = self._connect()
            self._prune(engine, now)
            with engine.begin() as conn:
                expired = sa.and_(one_time_keys.c.key == key, one_time_keys.c.expires_at < now)
                conn.execute(sa.delete(one_time_keys).where(expired))
                conn.execute(
                    sa.insert(one_time_keys).values(key=key, expires_at=now + dt.timedelta(seconds=ttl))
                )
        except exc.IntegrityError:
            return False
        except (exc.SQLAlchemyError, EsbError, OSError) as error:
            why = describe(error) if isinstance(error, exc.SQLAlchemyError) else str(error)
            self.close()
            raise LedgerUnavailableError(
                f"one-time key ledger unavailable: {why}", endpoint=mask_url(self.url)
            ) from None
        return True

    def _prune(self, engine: Engine, now: dt.datetime) -> None:
        if self._pruned and time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        with engine.begin() as conn:
            conn.execute(sa.delete(one_time_keys).where(one_time_keys.c.expires_at < now))

    def close(self) -> None:
        """Dispose of the engine (the next use connects again). Safe to call twice."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
