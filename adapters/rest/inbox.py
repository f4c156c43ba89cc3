"""The listener's durable inbox: the orders in the resource store that no route has accepted yet.

A POST is answered 201 once the order is in the store (``ResourceStore.create`` writes the resource, its
held create event and its inbox row in one statement); the route drains the inbox asynchronously, like
a queue source. Nothing an answered caller was told exists can be lost to the route:

- **Claims with a lease.** A reader claims a batch of due rows in one statement (owner, lease expiry,
  attempts + 1; ``attempts`` is the delivery count). Rows stay in the inbox until the route settles
  them; a claim whose owner died is taken again once its lease expired, at once when the owner was a
  process on this host that no longer runs (the start-up reconciliation, :meth:`ResourceStore.reclaim`).
  A keeper thread renews this process's leases while it holds claims (a route may work on one order for
  longer than a lease).
- **Settling.** Delivered or filtered: the row is deleted and the held create event released, batched
  into the next claim's transaction (a crash before that re-offers the order: the route's journal
  ignores a duplicate of a message it already ended). Dead-lettered: at once, the resource takes the
  failed state TMF names for it (``failed``, ``terminatedWithError`` with ``stateChangeReason``), its
  create and state-change events are released, the row deleted: the order is in the dead-letter queue,
  journaled and replayable. Given back (an error): the row is released and due again after a backoff.
- **Wake-ups.** A reader with nothing to do registers a sleeper and checks the store once more before
  sleeping; a POST releases one sleeper (none when no reader waits: no thread switch on the request
  path). Orders written by another process on the same store are found by the readers' polling.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from adapters.rest.events import STATE_CHANGE, make_event
from adapters.rest.store import InboxRow, ResourceStore
from esb.logging import get_logger
from esb.message import Message
from esb.typing import Delivery

#: How long a claim stays valid without renewal (another process takes the order again afterwards).
LEASE_SECONDS = 30.0
#: Orders claimed in one statement.
BATCH = 64
#: The longest wait before a given-back order is due again.
MAX_BACKOFF = 30.0
#: What a dead-lettered resource shows on GET: (state, attribute for the reason or None).
FAILED_STATE = {
    "productOrder": ("failed", None),
    "cancelProductOrder": ("terminatedWithError", "stateChangeReason"),
}


def owner_token() -> str:
    """This process's claim owner: ``host:pid:random`` (the host and pid let a restart reclaim at once)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class StoreInbox:
    """Hands the store's unaccepted orders to the route's readers, and settles them as the route does."""

    def __init__(
        self, store: ResourceStore, source: str, message_type: str | None, lease: float = LEASE_SECONDS
    ) -> None:
        self.store = store
        self.source = source
        self.message_type = message_type
        self.lease = lease
        self.owner = owner_token()
        self._mutex = threading.Lock()
        self._ready: deque[InboxRow] = deque()
        self._claimed: set[int] = set()
        """Rows this process holds: claimed and not settled yet."""
        self._done: list[tuple[int, str]] = []
        """(seq, event_id) of rows the route accepted, deleted with the next claim."""
        self._sleepers: deque[threading.Lock] = deque()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self.log = get_logger("rest-inbox")

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Reclaim the orders of dead processes on this host, and start renewing this process's leases."""
        self.store.reclaim(socket.gethostname())
        self._keeper = threading.Thread(target=self._keep, name="rest-inbox-lease", daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        """Settle what the route accepted and give back every claim still held (for the next reader)."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(5.0)
            self._keeper = None
        with self._mutex:
            done, self._done = self._done, []
            self._ready.clear()
            self._claimed.clear()
        self.store.settle_inbox(done, self.owner)
        self.store.release_owner(self.owner)
        self.wake_all()

    def _keep(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                if self._claimed:
                    self.store.renew(self.owner, time.time() + self.lease)
                self.store.reclaim(socket.gethostname())
            except Exception as exc:  # a locked or closing store: the next round tries again
                self.log.warning("inbox lease renewal failed", error=str(exc))

    # -- the request side -------------------------------------------------------------------------------
    def notify(self) -> None:
        """An order was written: wake one sleeping reader, if any (no lock taken when none sleeps)."""
        if not self._sleepers:
            return
        with self._mutex:
            sleeper = self._sleepers.popleft() if self._sleepers else None
        if sleeper is not None:
            sleeper.release()

    def wake_all(self) -> None:
        """Wake every sleeping reader (the source is closing)."""
        with self._mutex:
            sleepers, self._sleepers = list(self._sleepers), deque()
        for sleeper in sleepers:
            sleeper.release()

    # -- the route side ---------------------------------------------------------------------------------
    def get(self, timeout: float) -> Delivery | None:
        """Return the next order as a Delivery, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, 0.0)
        sleeper: threading.Lock | None = None
        while True:
            row = self._next()
            if row is not None:
                if sleeper is not None:
                    self._forget(sleeper)
                return self._delivery(row)
            if sleeper is not None:  # registered before the last look: sleep until a POST or the deadline
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set() or not sleeper.acquire(True, remaining):
                    self._forget(sleeper)
                    row = self._next()  # a last look (a commit from another process meanwhile)
                    return self._delivery(row) if row is not None else None
                sleeper = None
                continue
            if deadline - time.monotonic() <= 0:
                return None
            sleeper = threading.Lock()
            sleeper.acquire()
            with self._mutex:
                self._sleepers.append(sleeper)

    def _forget(self, sleeper: threading.Lock) -> None:
        with self._mutex:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    def _next(self) -> InboxRow | None:
        """A claimed row ready to hand out; claims a batch (settling the accepted ones) when none is."""
        with self._mutex:
            if self._ready:
                return self._ready.popleft()
            done, self._done = self._done, []
        now = time.time()
        rows = self.store.claim(self.owner, now, now + self.lease, BATCH, done)
        if not rows:
            return None
        with self._mutex:
            self._claimed.update(row.seq for row in rows)
            self._ready.extend(rows[1:])
        return rows[0]

    def _delivery(self, row: InboxRow) -> Delivery:
        headers: dict[str, Any] = orjson.loads(row.headers)
        message = Message(
            body=row.body, id=row.id, source=self.source, type=self.message_type, headers=headers,
            correlation_id=row.correlation_id or "", created_at=datetime.fromtimestamp(row.created, UTC),
        )  # fmt: skip
        delivery = Delivery(
            message, lambda error: self._settled(row, delivery, error), delivery_count=row.attempts
        )
        return delivery

    def _settled(self, row: InboxRow, delivery: Delivery, error: BaseException | None) -> None:
        if error is not None:
            backoff = min(float(row.attempts), MAX_BACKOFF)
            self.store.release(row.seq, self.owner, time.time() + backoff)
        elif delivery.outcome == "dead_lettered":
            state, why = FAILED_STATE[row.kind]
            reason = str(delivery.failure or "refused by the route").splitlines()[0][:300]
            changes: dict[str, Any] = {"state": state}
            if why is not None:
                changes[why] = reason
            self.store.refuse(row, changes, partial(_state_change, row))
        else:
            with self._mutex:
                self._done.append((row.seq, row.event_id))
        with self._mutex:
            self._claimed.discard(row.seq)


def _state_change(row: InboxRow, resource: dict[str, Any]) -> dict[str, Any]:
    """The state-change event of a dead-lettered order (its resource as it now shows)."""
    return make_event(row.kind, STATE_CHANGE, resource, row.correlation_id)
