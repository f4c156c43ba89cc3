"""The inline route's turns (adapters/http/inline.py): who leads, what one lead takes, timeouts, a full
inbox. The route is a fake that records each lead; the threads are real."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapters.http.exchange import Exchange, Inbox
from adapters.http.inline import Arrivals, settle_inline
from esb.message import Message
from esb.typing import Delivery


class RecordingRoute:
    """Acks what each lead reads, records the batch and the leading thread; with a ``gate``, the first
    lead takes one request and waits for the gate before it settles it (others queue behind it)."""

    batches = True

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.leads: list[tuple[int, list[str]]] = []

    def lead(self, read: Callable[[], Delivery | None]) -> None:
        """Ack every delivery waiting now, as one batch."""
        gated = self.gate is not None and not self.leads
        batch: list[str] = []
        while (delivery := read()) is not None:
            batch.append(delivery.message.id)
            if gated and self.gate is not None:
                self.gate.wait(10)
            delivery.ack()
            if gated:
                break
        self.leads.append((threading.get_ident(), batch))

    def same(self, other: object) -> bool:
        """Only itself."""
        return other is self

    def close(self) -> None:
        """Nothing to close."""


def exchange(ident: str) -> Exchange:
    """A one-way request with message id ``ident``."""
    return Exchange(Message(body=b"<a/>", id=ident), one_way=True)


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (10 s at most)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met in 10 s"
        time.sleep(0.005)


def test_a_request_alone_runs_on_its_own_thread() -> None:
    """A request that finds no leader leads itself: the route runs on the caller's thread, then settles."""
    inbox, route = Inbox(), RecordingRoute()
    request = exchange("m1")
    assert settle_inline(inbox, route, request, timeout=5) is True
    assert route.leads == [(threading.get_ident(), ["m1"])]
    assert request.acked
    assert not inbox.leading


def test_requests_queued_behind_a_leader_share_its_successor_s_batch() -> None:
    """Requests arriving while a thread leads wait, and the next lead takes all of them at once."""
    gate = threading.Event()
    inbox, route = Inbox(), RecordingRoute(gate)
    results: dict[str, bool | None] = {}

    def call(ident: str) -> None:
        results[ident] = settle_inline(inbox, route, exchange(ident), timeout=10)

    first = threading.Thread(target=call, args=("m0",))
    first.start()
    wait_until(lambda: inbox.leading)
    others = [threading.Thread(target=call, args=(f"m{i}",)) for i in range(1, 6)]
    for thread in others:
        thread.start()
    wait_until(lambda: len(inbox.items) == 5)
    gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert results == {f"m{i}": True for i in range(6)}
    assert [len(batch) for _, batch in route.leads] == [1, 5]
    assert sorted(route.leads[1][1]) == [f"m{i}" for i in range(1, 6)]
    assert not inbox.leading


def test_a_request_waiting_too_long_is_cancelled_and_skipped() -> None:
    """A follower whose timeout passes before any lead took it gets False and is never handed out."""
    gate = threading.Event()
    inbox, route = Inbox(), RecordingRoute(gate)
    leader = threading.Thread(target=settle_inline, args=(inbox, route, exchange("m0"), 10))
    leader.start()
    wait_until(lambda: inbox.leading)
    late = exchange("late")
    assert settle_inline(inbox, route, late, timeout=0.05) is False
    assert late.cancelled
    assert not late.acked
    gate.set()
    leader.join(10)
    assert [batch for _, batch in route.leads] == [["m0"]]
    assert not inbox.leading


def test_a_full_inbox_answers_busy() -> None:
    """When the inbox holds its capacity, a request is refused (None) without being queued."""
    inbox, route = Inbox(capacity=1), RecordingRoute()
    inbox.items.append(exchange("waiting"))
    inbox.leading = True
    assert settle_inline(inbox, route, exchange("refused"), timeout=5) is None
    assert [e.message.id for e in inbox.items] == ["waiting"]


def test_arrivals_leave_when_queued() -> None:
    """A request counted among the arrivals leaves them once queued (the next leader stops waiting)."""
    arrivals = Arrivals()
    arrivals.enter()
    settle_inline(Inbox(), RecordingRoute(), exchange("m1"), timeout=5, arrivals=arrivals)
    assert arrivals.count == 0
