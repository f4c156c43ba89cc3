"""The hand-over between the listeners' server threads and the route workers (adapters/http/exchange.py):
each request reaches exactly one worker, in order, and its server thread wakes on the ack or the reply."""

from __future__ import annotations

import threading
import time

from adapters.http.exchange import Exchange, Inbox
from esb.message import Message


def _exchange(body: str = "x", *, one_way: bool = True) -> Exchange:
    return Exchange(Message(body=body), one_way=one_way)


def test_requests_come_out_in_the_order_they_were_put() -> None:
    """A worker reads the queued requests first in, first out."""
    inbox = Inbox()
    for body in ("a", "b", "c"):
        assert inbox.put(_exchange(body), timeout=0.1)
    bodies = []
    while (delivery := inbox.get(0)) is not None:
        bodies.append(delivery.message.body)
    assert bodies == ["a", "b", "c"]


def test_get_returns_none_after_its_timeout_when_nothing_comes() -> None:
    """An empty inbox answers None, after the timeout and not long before it."""
    inbox = Inbox()
    started = time.monotonic()
    assert inbox.get(0.05) is None
    assert time.monotonic() - started >= 0.045


def test_a_put_wakes_a_sleeping_worker() -> None:
    """A worker asleep on an empty inbox gets a request put meanwhile, long before its timeout."""
    inbox = Inbox()
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(inbox.get(5.0)))
    worker.start()
    time.sleep(0.05)
    started = time.monotonic()
    inbox.put(_exchange("woken"), timeout=0.1)
    worker.join(2.0)
    assert time.monotonic() - started < 1.0
    assert [d.message.body for d in got if d is not None] == ["woken"]


def test_every_request_reaches_exactly_one_of_several_workers() -> None:
    """With several workers reading, each of many requests is taken once: none lost, none twice."""
    inbox = Inbox()
    taken: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            delivery = inbox.get(0.01)
            if delivery is not None:
                with lock:
                    taken.append(delivery.message.body)
                delivery.ack()

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    sent = [str(i) for i in range(2000)]
    putters = [
        threading.Thread(target=lambda part=part: [inbox.put(_exchange(b), timeout=1.0) for b in part])
        for part in (sent[0::2], sent[1::2])
    ]
    for putter in putters:
        putter.start()
    for putter in putters:
        putter.join()
    deadline = time.monotonic() + 10
    while len(taken) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for worker in workers:
        worker.join()
    assert sorted(taken) == sorted(sent)


def test_a_full_inbox_refuses_after_the_timeout_and_takes_again_once_read() -> None:
    """Put answers False when the route is `capacity` requests behind, and True once one was read."""
    inbox = Inbox(capacity=2)
    assert inbox.put(_exchange("a"), timeout=0.1)
    assert inbox.put(_exchange("b"), timeout=0.1)
    assert not inbox.put(_exchange("c"), timeout=0.05)
    reader = threading.Timer(0.05, lambda: inbox.get(0))
    reader.start()
    assert inbox.put(_exchange("d"), timeout=2.0)
    reader.join()
    assert [inbox.get(0).message.body, inbox.get(0).message.body] == ["b", "d"]  # type: ignore[union-attr]


def test_drain_empties_the_inbox() -> None:
    """Drain hands back every queued request and leaves nothing to read."""
    inbox = Inbox()
    inbox.put(_exchange("a"), timeout=0.1)
    inbox.put(_exchange("b"), timeout=0.1)
    assert [e.message.body for e in inbox.drain()] == ["a", "b"]
    assert inbox.get(0) is None


def test_the_ack_wakes_the_waiting_server_thread_with_its_outcome() -> None:
    """The server thread's wait ends on the ack, with the error and the route's outcome."""
    exchange = _exchange()
    delivery = exchange.take()
    assert delivery is not None
    failure = ValueError("no")
    threading.Timer(0.02, lambda: delivery.ended("dead_lettered", failure).ack()).start()
    assert exchange.wait(5.0)
    assert (exchange.acked, exchange.error, exchange.outcome, exchange.failure) == (
        True,
        None,
        "dead_lettered",
        failure,
    )


def test_a_reply_then_the_ack_settles_once() -> None:
    """A request-reply's respond wakes the server thread; the ack after it raises nothing."""
    exchange = _exchange(one_way=False)
    delivery = exchange.take()
    assert delivery is not None
    assert delivery.respond is not None
    delivery.respond(Message(body="reply"))
    delivery.ack()
    assert exchange.wait(0.1)
    assert exchange.reply is not None
    assert exchange.reply.body == "reply"
    assert exchange.settled
    assert exchange.acked


def test_a_request_not_taken_in_time_is_cancelled_and_never_handed_out() -> None:
    """A timed-out wait cancels a request no worker took: the worker then gets None for it."""
    inbox = Inbox()
    exchange = _exchange()
    inbox.put(exchange, timeout=0.1)
    assert not exchange.wait(0.01)
    assert exchange.cancelled
    assert inbox.get(0) is None


def test_a_request_taken_but_not_settled_in_time_is_not_cancelled() -> None:
    """A timed-out wait on a request a worker holds answers False and leaves it to the worker."""
    exchange = _exchange()
    assert exchange.take() is not None
    assert not exchange.wait(0.01)
    assert not exchange.cancelled
