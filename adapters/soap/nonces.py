"""WS-Security nonces already used, kept where every hub process sees them: the journal's database.

A digest UsernameToken is accepted once. Its nonce is recorded as the sha256 of user and nonce (the
nonce itself is never stored) by an INSERT on the primary key: a second INSERT of the same key fails, in
this process, in another hub process on the same database, and after a restart. Rows are kept until
``FRESHNESS`` seconds after the latest moment the token could still be fresh (its Created may lie up to
``FRESHNESS`` in the future), and pruned now and then. A database that cannot be reached refuses the
token (fail closed): :class:`NonceStoreDown` is raised and the caller refuses the request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from esb.context import OneTimeKeys
from esb.exceptions import TransportError
from esb.logging import get_logger

#: Seconds a token's Created may lie before or after the listener's clock.
FRESHNESS = 300.0


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


class LedgerNonceStore:
    """Nonces in the engine's one-time key ledger (the journal's database), shared by every hub process
    using it and kept across restarts (``context.services.one_time_keys()``)."""

    def __init__(self, ledger: OneTimeKeys) -> None:
        self.ledger = ledger
        self.log = get_logger("soap-listener")

    def first_use(self, user: str, nonce: bytes) -> bool:
        """Record ``user``'s ``nonce`` for twice the freshness window; False when it was already used."""
        try:
            return self.ledger.first_use(nonce_key(user, nonce), 2 * FRESHNESS)
        except TransportError as error:
            self.log.error(
                "WS-Security nonce store unreachable: digest tokens are refused until it is back",
                database=error.endpoint,
                error=str(error),
            )
            raise NonceStoreDown(str(error)) from None

    def close(self) -> None:
        """Release the ledger's connection. Safe to call twice."""
        self.ledger.close()
