"""The listener's durable inbox: the orders in the resource store that no route has accepted yet.

A POST is answered 201 once the order is in the store (``ResourceStore.create`` writes the resource, its
held create event and its inbox row in one statement); the route drains the inbox asynchronously, like
a queue source. Nothing an answered caller was told exists can be lost to the route:

- **Claims with a lease.** Every inbox row a reader works on is claimed (owner, lease expiry,
  ``attempts``: the delivery count). An order POSTed to this process is written already claimed by it
  and handed to its readers in memory (no query to find it); orders written by other processes, given
  back, or left by a reader that closed or died are found by a claim query (:meth:`ResourceStore.claim`,
  a batch in one statement) at most every ``scan`` seconds. Rows stay in the inbox until the route
  settles them; a claim whose owner died is taken again once its lease expired, at once when the owner
  was a process on this host that no longer runs (the start-up reconciliation,
  :meth:`ResourceStore.reclaim`). A keeper thread renews this process's leases (a route may work on one
  order for longer than a lease). When the route is far behind (``capacity`` orders in memory), new
  orders are written unclaimed: they wait in the store, not in memory.
- **Settling.** Delivered or filtered: the row is deleted and the held create event released, batched
  (at most ``scan`` seconds or a batch later, and when the reader closes; a crash before that re-offers
  the order: the route's journal ignores a duplicate of a message it already ended). Dead-lettered: at
  once, the resource takes the failed state TMF names for it (``failed``, ``terminatedWithError`` with
  ``stateChangeReason``), its create and state-change events are released, the row deleted: the order is
  in the dead-letter queue, journaled and replayable. Given back (an error): the row is released and due
  again after a backoff.
- **Wake-ups.** A reader that handed out an order within the last ``BUSY`` seconds looks again every
  ``BUSY_POLL`` seconds (orders are then taken in batches, and a POST wakes nobody); an idle reader
  sleeps until a POST releases it. So the request path costs no thread switch under load.
"""

from __future__ import annotations

import os
import socket
import sqlite3
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
#: Orders claimed in one statement, and accepted ones settled in one transaction.
BATCH = 64
#: At most this often a reader looks in the store for orders not handed to it in memory, and settles.
SCAN_SECONDS = 0.2
#: A reader that handed out an order this recently polls instead of sleeping until woken.
BUSY = 0.05
BUSY_POLL = 0.002
#: Orders waiting in memory for the readers before new ones are left to the store's scans.
CAPACITY = 10_000
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
        self,
        store: ResourceStore,
        source: str,
        message_type: str | None,
        lease: float = LEASE_SECONDS,
        scan: float = SCAN_SECONDS,
        capacity: int = CAPACITY,
    ) -> None:
        self.store = store
        self.source = source
        self.message_type = message_type
        self.lease = lease
        self.scan = scan
        self.capacity = capacity
        self.owner = owner_token()
        self._mutex = threading.Lock()
        self._ready: deque[InboxRow] = deque()
        self._done: list[InboxRow] = []
        """Rows the route accepted, deleted with the next settling."""
        self._sleepers: deque[threading.Lock] = deque()
        self._scanned = 0.0
        self._settled_at = 0.0
        self._busy_until = 0.0
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
        self.store.settle_inbox(done, self.owner)
        self.store.release_owner(self.owner)
        self.wake_all()

    def _keep(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.store.renew(self.owner, time.time() + self.lease)
                self.store.reclaim(socket.gethostname())
            except Exception as exc:  # a locked or closing store: the next round tries again
                self.log.warning("inbox lease renewal failed", error=str(exc))

    # -- the request side -------------------------------------------------------------------------------
    def claim_for_new(self) -> tuple[str, float] | None:
        """The claim a new order is written with (this process's readers take it from memory), or None
        when the readers are far behind (it waits in the store for a scan)."""
        if len(self._ready) >= self.capacity or self._stop.is_set():
            return None
        return self.owner, time.time() + self.lease

    def offer(self, row: InboxRow) -> None:
        """A new order, written claimed by this process: hand it to a reader (waking one if all sleep)."""
        with self._mutex:
            self._ready.append(row)
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
        while True:
            row = self._next()
            if row is not None:
                self._busy_until = time.monotonic() + BUSY
                return self._delivery(row)
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0 or self._stop.is_set():
                return None
            if now < self._busy_until:  # orders are coming: look again shortly rather than be woken
                time.sleep(min(BUSY_POLL, remaining))
                continue
            self._flush()
            sleeper = threading.Lock()
            sleeper.acquire()
            with self._mutex:
                if self._ready:
                    continue
                self._sleepers.append(sleeper)
            woken = sleeper.acquire(True, min(remaining, self.scan) if self.scan > 0 else remaining)
            if not woken:
                with self._mutex:
                    if sleeper in self._sleepers:
                        self._sleepers.remove(sleeper)

    def _next(self) -> InboxRow | None:
        """A row ready to hand out: from memory, else from a scan of the store when one is due."""
        with self._mutex:
            if self._ready:
                row = self._ready.popleft()
                flush = len(self._done) >= BATCH
            else:
                row, flush = None, False
        now = time.monotonic()
        if row is not None:
            if flush or (self._done and now - self._settled_at >= self.scan):
                self._flush()
            return row
        if now - self._scanned < self.scan:
            return None
        self._scanned = self._settled_at = now
        with self._mutex:
            done, self._done = self._done, []
        wall = time.time()
        rows = self.store.claim(self.owner, wall, wall + self.lease, BATCH, done)
        if not rows:
            return None
        with self._mutex:
            self._ready.extend(rows[1:])
        return rows[0]

    def _flush(self) -> None:
        """Settle the accepted rows now (delete them, release their create events)."""
        with self._mutex:
            done, self._done = self._done, []
        self._settled_at = time.monotonic()
        if done:
            self.store.settle_inbox(done, self.owner)

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
        try:
            self._settle(row, delivery, error)
        except sqlite3.Error as exc:
            # the store cannot take the outcome now: hand the order out again after a pause (the route's
            # journal settles a second hand-out of an order it already ended without redoing it)
            self.log.error("inbox row not settled, handing it out again", order=row.id, error=str(exc))
            time.sleep(1.0)
            with self._mutex:
                self._ready.append(row._replace(attempts=row.attempts + 1))

    def _settle(self, row: InboxRow, delivery: Delivery, error: BaseException | None) -> None:
        if error is not None:
            backoff = min(float(row.attempts), MAX_BACKOFF)
            self.store.release(row, self.owner, time.time() + backoff)
        elif delivery.outcome == "dead_lettered":
            state, why = FAILED_STATE[row.kind]
            reason = str(delivery.failure or "refused by the route").splitlines()[0][:300]
            changes: dict[str, Any] = {"state": state}
            if why is not None:
                changes[why] = reason
            self.store.refuse(row, changes, partial(_state_change, row))
        else:
            with self._mutex:
                self._done.append(row)


def _state_change(row: InboxRow, resource: dict[str, Any]) -> dict[str, Any]:
    """The state-change event of a dead-lettered order (its resource as it now shows)."""
    return make_event(row.kind, STATE_CHANGE, resource, row.correlation_id)
