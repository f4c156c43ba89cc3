"""The behaviour every adapter shows through the contract of ``esb/typing.py``, run over each adapter.

Each test runs once per harness in ``conftest.HARNESSES`` (direct, the queue on SQLite and on RabbitMQ,
SOAP, REST, batch over SFTP) and is skipped, with the harness's reason, where the adapter legitimately cannot
show the behaviour (``harness.cannot``: a request-reply source answers its caller instead of
redelivering; an in-process channel has no peer to be down). Capabilities are in ``test_capabilities.py``;
what only a queue broker does (two processes sharing a queue, SIGKILL) in ``test_queue_contract.py``.

Adding an adapter (e.g. REST):

1. write ``tests/contract/harness_rest.py`` with one class implementing
   :class:`tests.contract.harness.AdapterHarness` (derive from ``HarnessDefaults`` for the parts it
   skips): its constructor takes ``(request, tmp_path)``, starts or asks for its peers on loopback
   (``request.getfixturevalue(...)``), and makes its endpoints; ``put`` feeds the source through the
   adapter's natural inlet (for REST: POST with a real HTTP client), ``received`` reads what the sink
   delivered from the peer's side; ``declares`` lists exactly the capabilities it implements and
   ``cannot`` says, with reasons, which behaviours do not apply (keys: ``harness.BEHAVIOURS``);
2. add ``pytest.param(RESTHarness, id="rest")`` to ``HARNESSES`` in ``tests/contract/conftest.py``.
"""

from __future__ import annotations

import pytest

from esb.exceptions import EsbError, TransportError
from esb.typing import AlreadySettledError, Requester, Sink, capability
from tests.contract.harness import AdapterHarness, read_n, require


def test_read_hands_out_every_message_intact(harness: AdapterHarness) -> None:
    """N messages put in come out as N deliveries with their ids and bodies, each handed out once."""
    require(harness, "read")
    with harness.source() as source:
        sent = harness.put(5)
        got = read_n(source, 5)
        assert {d.message.id: harness.marker(d.message) for d in got} == sent
        assert [d.delivery_count for d in got] == [1] * 5
        assert source.read(harness.quiet) is None
        if "answer" not in harness.cannot:  # while the source is open: see SOAPHarness.answers
            assert harness.answers(list(sent)) == dict.fromkeys(sent, "ok")


def test_acked_delivery_is_not_handed_out_after_reconnect(harness: AdapterHarness) -> None:
    """What was acked stays settled: a source connected afterwards hands none of it out again."""
    require(harness, "read", "reconnect")
    with harness.source() as source:
        harness.put(3)
        assert len(read_n(source, 3)) == 3
    with harness.source() as source:
        assert source.read(harness.quiet) is None


def test_nack_redelivers_with_a_higher_count(harness: AdapterHarness) -> None:
    """A delivery settled with an error is handed out again: same id, delivery count one higher."""
    require(harness, "read", "redeliver")
    with harness.source() as source:
        [mid] = harness.put(1)
        [first] = read_n(source, 1, ack=False)
        first.ack(RuntimeError("downstream refused"))
        [again] = read_n(source, 1)
    assert (again.message.id, again.delivery_count) == (mid, first.delivery_count + 1)


def test_nack_answers_the_caller_with_an_error(harness: AdapterHarness) -> None:
    """A request-reply source answers an acked request with success and a nacked one with an error."""
    require(harness, "read", "answer")
    with harness.source() as source:
        harness.put(2)
        good, bad = read_n(source, 2, ack=False)
        good.ack()
        bad.ack(RuntimeError("the hub could not take it"))
        answers = harness.answers([good.message.id, bad.message.id])
    assert answers == {good.message.id: "ok", bad.message.id: "error"}


def test_second_settlement_is_refused(harness: AdapterHarness) -> None:
    """A delivery refuses a second ack or nack, whichever came first."""
    require(harness, "read")
    with harness.source() as source:
        harness.put(2)
        acked, nacked = read_n(source, 2, ack=False)
        acked.ack()
        nacked.ack(RuntimeError("given back"))
        for delivery in (acked, nacked):
            with pytest.raises(AlreadySettledError):
                delivery.ack()
            with pytest.raises(AlreadySettledError):
                delivery.ack(RuntimeError("again"))
        if "redeliver" not in harness.cannot:
            assert len(read_n(source, 1)) == 1  # the nacked one, handed out again
        if "answer" not in harness.cannot:
            answers = harness.answers([acked.message.id, nacked.message.id])
            assert answers == {acked.message.id: "ok", nacked.message.id: "error"}


def test_unsettled_deliveries_come_back_after_reconnect(harness: AdapterHarness) -> None:
    """Deliveries left unsettled at close are handed out again once the source reconnects."""
    require(harness, "read", "reconnect")
    source = harness.source()
    source.connect()
    try:
        sent = harness.put(2)
        assert len(read_n(source, 2, ack=False)) == 2
        source.close()
        source.close()
        source.connect()
        again = read_n(source, 2)
    finally:
        source.close()
    assert {d.message.id: harness.marker(d.message) for d in again} == sent


def test_unsettled_request_is_answered_with_an_error_at_close(harness: AdapterHarness) -> None:
    """A request-reply source closed with a request unsettled answers its caller with an error."""
    require(harness, "read", "answer")
    source = harness.source()
    source.connect()
    try:
        [mid] = harness.put(1)
        assert len(read_n(source, 1, ack=False)) == 1
    finally:
        source.close()
    assert harness.answers([mid]) == {mid: "error"}


def test_close_is_safe_twice_and_before_connect(harness: AdapterHarness) -> None:
    """Sources and sinks are context managers; close may come twice, or before any connect."""
    made = []
    if "read" not in harness.cannot:
        made.append(harness.source)
    if "write" not in harness.cannot:
        made.append(harness.sink)
    assert made, "a harness must read or write"
    for make in made:
        never = make()
        never.close()
        with make() as endpoint:
            pass
        endpoint.close()
        endpoint.close()


def test_sink_delivers_every_message_to_the_peer(harness: AdapterHarness) -> None:
    """N messages written are N messages received, as the peer sees them."""
    require(harness, "write")
    with harness.sink() as sink:
        harness.send(sink, [harness.message(i) for i in range(5)])
    assert sorted(harness.received()) == [str(i) for i in range(5)]


def _connect_and_send(harness: AdapterHarness, sink: Sink) -> None:
    sink.connect()
    harness.send(sink, [harness.message(1)])


def test_peer_down_is_a_retryable_transport_error(harness: AdapterHarness) -> None:
    """A peer that is not there: a retryable TransportError with the endpoint, no password; close is safe."""
    require(harness, "write", "down")
    sink, secret = harness.down_sink()
    try:
        with pytest.raises(TransportError) as caught:
            _connect_and_send(harness, sink)
    finally:
        sink.close()
        sink.close()
    error = caught.value
    assert error.retryable
    assert error.endpoint
    assert error.endpoint in str(error)
    assert secret not in str(error)
    assert secret not in error.endpoint


def test_refusals_are_translated_into_the_error_tree(harness: AdapterHarness) -> None:
    """A peer that receives and refuses a message: the error its errors.py promises, retryable or not."""
    require(harness, "write", "refuse")
    refusals = harness.refusals()
    assert refusals
    for refusal in refusals:
        sink, message = refusal.prepare()
        try:
            with pytest.raises(EsbError) as caught:
                harness.send(sink, [message])
        finally:
            sink.close()
        assert isinstance(caught.value, refusal.error), f"{refusal.name}: {caught.value!r}"
        assert caught.value.retryable is refusal.retryable, refusal.name


def test_requester_returns_the_peers_answer(harness: AdapterHarness) -> None:
    """A sink that is a Requester returns the peer's answer to the request it was sent."""
    require(harness, "request")
    with harness.sink() as sink:
        requester = capability(sink, Requester)
        assert requester is not None
        reply = requester.request(harness.message(7), 5.0)
    assert harness.request_answer(reply) == "7"
