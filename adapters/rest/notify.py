"""The event hub's postman: every queued event POSTed to its listener, with retries and backoff.

Runs as a thread beside the listener. An event is kept in the endpoint's store (``store.py``) per
listener until the listener answers 2xx, and is then journaled through the engine's journal notes on
the pseudo-route ``rest-events:<system.endpoint>`` (state ``delivered``; ``dead_lettered`` when given up
after ``events.max_attempts``), with the order id as business key so that ``esb trace <order id>``
shows it. Delivery is at least once: a listener may get an event twice (a crash between its answer and
the store's update, or a journal that could not be reached: the event is kept and posted again) and
keys on ``eventId``. Calls have connect and read timeouts, follow no redirects,
and never use proxies from the environment.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from adapters.rest.config import EventOptions
from adapters.rest.store import ResourceStore
from esb.context import AdapterContext
from esb.exceptions import TransportError, mask_url
from esb.logging import get_logger
from esb.message import Message


def backoff(options: EventOptions, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts (exponential, capped)."""
    return float(min(options.max_backoff, options.initial_backoff * 2 ** max(0, attempts - 1)))


class Notifier(threading.Thread):
    """Posts the endpoint's due events until stopped."""

    def __init__(self, store: ResourceStore, options: EventOptions, context: AdapterContext) -> None:
        super().__init__(name=f"rest-events-{context.endpoint}", daemon=True)
        self.store = store
        self.options = options
        self.context = context
        self.route = f"rest-events:{context.endpoint}"
        self.stop_event = threading.Event()
        self.log = get_logger("rest-events")
        self._session: Any = None
        self._notes: Any = None

    def run(self) -> None:
        """Post due events every ``events.poll`` seconds."""
        import requests

        self._session = requests.Session()
        self._session.trust_env = False
        try:
            while not self.stop_event.wait(self.options.poll):
                try:
                    self.post_due()
                except Exception as exc:  # a store or journal hiccup must not end the postman
                    self.log.error("event delivery round failed", error=str(exc))
        finally:
            self._session.close()
            if self._notes is not None:
                self._notes.close()

    def post_due(self, now: float | None = None) -> int:
        """Attempt every event due now (or at ``now``), each listener's in order; return how many were
        delivered.

        Once a listener's event is not delivered, its later events wait for the next round (and, through
        ``store.due``, behind that event's backoff): a listener never gets them out of order."""
        delivered = 0
        held_back: set[str] = set()
        for row in self.store.due(time.time() if now is None else now):
            if self.stop_event.is_set():
                break
            if row["listener_id"] in held_back:
                continue
            done = self.attempt(row)
            if not done:
                held_back.add(row["listener_id"])
            delivered += done
        return delivered

    def attempt(self, row: dict[str, Any]) -> int:
        """POST one event to its listener and record the outcome; 1 when delivered."""
        attempts = int(row["attempts"]) + 1
        error = self._post(row["callback"], row["body"])
        if error is None:
            if not self._journal(row, "delivered", attempts, None):  # kept: posted again, journaled then
                self.store.settle(
                    row["seq"], "pending", attempts - 1, "delivered, not journaled", time.time() + 1
                )
                return 0
            self.store.settle(row["seq"], "delivered", attempts)
            return 1
        if attempts >= self.options.max_attempts:
            self.log.error("event given up", listener=row["listener_id"], event=row["event_id"], error=error)
            self._journal(row, "dead_lettered", attempts, error)
            self.store.settle(row["seq"], "failed", attempts, error)
            return 0
        delay = backoff(self.options, attempts)
        self.log.warning("event not delivered, will retry", listener=row["listener_id"], error=error,
                         attempt=attempts, delay=delay)  # fmt: skip
        self.store.settle(row["seq"], "pending", attempts, error, time.time() + delay)
        return 0

    def _post(self, callback: str, body: str) -> str | None:
        """POST ``body`` to ``callback``; None when it answered 2xx, else why not (URL masked)."""
        import requests

        try:
            answer = self._session.post(
                callback,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                timeout=(self.options.connect_timeout, self.options.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__} calling {mask_url(callback)}"
        answer.close()
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code} from {mask_url(callback)}"

    def _journal(self, row: dict[str, Any], state: str, attempts: int, error: str | None) -> bool:
        event = orjson.loads(row["body"])
        message = Message(
            body=event,
            id=f"{row['event_id']}:{row['listener_id']}",
            correlation_id=row["correlation_id"] or row["event_id"],
            type=str(event.get("eventType")),
            source=self.context.system,
            business_keys={"order_id": row["resource_id"]} if row["resource_id"] else {},
        )
        detail = {"listener": row["listener_id"], "callback": mask_url(row["callback"]), "attempts": attempts}
        if self._notes is None:
            self._notes = self.context.services.journal_notes()
        try:
            self._notes.note(self.route, message, state, detail=detail, error=error)
        except TransportError as exc:
            self.log.error("event delivery not journaled", event=row["event_id"], error=str(exc))
            return False
        return True

    def stop(self) -> None:
        """Stop after the event in hand."""
        self.stop_event.set()
