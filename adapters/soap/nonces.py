"""WS-Security nonces already used, kept where every hub process sees them: the journal's database.

A digest UsernameToken is accepted once. Its nonce is recorded as the sha256 of user and nonce (the
nonce itself is never stored) by an INSERT on the primary key: a second INSERT of the same key fails, in
this process, in another hub process on the same database, and after a restart. Rows are kept until
``FRESHNESS`` seconds after the latest moment the token could still be fresh (its Created may lie up to
``FRESHNESS`` in the future), and pruned now and then. A database that cannot be reached refuses the
token (fail closed): :class:`NonceStoreDown` is raised and the caller refuses the request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from esb.exceptions import EsbError, mask_url
from esb.journal.engine import create_journal_engine, describe, writer
from esb.journal.migrate import upgrade
from esb.journal.schema import wsse_nonces
from esb.logging import get_logger

#: Seconds a token's Created may lie before or after the listener's clock.
FRESHNESS = 300.0
#: Seconds between two prunings of expired rows (per process).
PRUNE_EVERY = 60.0


class NonceStoreDown(Exception):  # noqa: N818 - a signal to refuse the token, answered as a fault
    """The nonce store could not say whether a nonce was used: the token is refused (fail closed)."""


class NonceStore(Protocol):
    """Where used nonces are remembered: ``first_use`` is True once per (user, nonce) in the window."""

    def first_use(self, user: str, nonce: bytes) -> bool:
        """Record the nonce; False when it was already used; NonceStoreDown when that is unknown."""
        ...

    def close(self) -> None:
        """Release what the store holds (connections). Safe to call twice."""
        ...


def nonce_key(user: str, nonce: bytes) -> str:
    """Return the stored key of ``user``'s ``nonce``: hex sha256, so the table never holds a nonce."""
    return hashlib.sha256(user.encode("utf-8") + b"\x00" + nonce).hexdigest()


class MemoryNonceStore:
    """Nonces seen by this process only (simulators and unit tests; the listener uses the database)."""

    def __init__(self, capacity: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self.capacity = capacity
        self.clock = clock

    def first_use(self, user: str, nonce: bytes) -> bool:
        """Record ``user``'s ``nonce``; False when it was already used within the window."""
        now, key = self.clock(), nonce_key(user, nonce)
        with self._lock:
            if len(self._seen) >= self.capacity:
                self._seen = {n: t for n, t in self._seen.items() if t > now}
            expiry = self._seen.get(key)
            if expiry is not None and expiry > now:
                return False
            self._seen[key] = now + 2 * FRESHNESS
            return True

    def close(self) -> None:
        """Nothing to release."""


class DatabaseNonceStore:
    """Nonces in the journal's database (SQLite or PostgreSQL), shared by every process using it.

    The constructor stores the URL; the engine is made (and the schema migrated) at the first token, and
    again at the next token after a failure, so a database that is down when the hub starts does not stop
    the listener from serving HTTP basic callers.
    """

    def __init__(self, url: str, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.url = url
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._pruned = 0.0
        self.log = get_logger("soap-listener")

    def _connect(self) -> Engine:
        with self._lock:
            if self._engine is None:
                engine = create_journal_engine(self.url, pool_size=2)
                try:
                    with writer(engine).begin() as conn:
                        upgrade(conn)
                except BaseException:
                    engine.dispose()
                    raise
                self._engine = engine
            return writer(self._engine)

    def first_use(self, user: str, nonce: bytes) -> bool:
        """INSERT the nonce's key; False when the key is there already (a replay)."""
        now = self.clock()
        row = {"key": nonce_key(user, nonce), "expires_at": now + dt.timedelta(seconds=2 * FRESHNESS)}
        try:
            engine = self._connect()
            self._prune(engine, now)
            with engine.begin() as conn:
                conn.execute(
                    sa.delete(wsse_nonces).where(
                        wsse_nonces.c.key == row["key"], wsse_nonces.c.expires_at < now
                    )
                )
                conn.execute(sa.insert(wsse_nonces).values(row))
        except exc.IntegrityError:
            return False
        except (exc.SQLAlchemyError, EsbError, OSError) as error:
            why = describe(error) if isinstance(error, exc.SQLAlchemyError) else str(error)
            self.log.error(
                "WS-Security nonce store unreachable: digest tokens are refused until it is back",
                database=mask_url(self.url),
                error=why,
            )
            self.close()
            raise NonceStoreDown(why) from None
        return True

    def _prune(self, engine: Engine, now: dt.datetime) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY and self._pruned:
            return
        self._pruned = time.monotonic()
        with engine.begin() as conn:
            conn.execute(sa.delete(wsse_nonces).where(wsse_nonces.c.expires_at < now))

    def close(self) -> None:
        """Dispose of the engine (the next token connects again). Safe to call twice."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
