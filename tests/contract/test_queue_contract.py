"""What only a queue broker shows through the queue adapter, on SQLite and RabbitMQ: envelopes and
exchanges, two consumer processes sharing a queue, a consumer SIGKILLed before its ack.

What every adapter shows (read, ack, nack and redelivery, close and reconnect, queue inspection) is in
``test_adapter_contract.py`` and ``test_capabilities.py``, which run over both brokers too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from esb.message import Message

WORKER = str(Path(__file__).with_name("queue_worker.py"))


def _publish(broker: Any, n: int) -> list[str]:
    messages = [Message(body={"n": i}, type="test.event", headers={"k": str(i)}) for i in range(n)]
    with broker.adapter.sink(broker.endpoint(), broker.context()) as sink:
        for m in messages:
            sink.write(m)
    return [m.id for m in messages]


def _worker(broker: Any, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, WORKER, broker.settings_json(), broker.queue, mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _rest_of_output(proc: subprocess.Popen[str]) -> list[str]:
    """What the worker printed after ``ready``, once it exited. Not ``communicate()``: it reads the pipe
    itself and would miss lines the ``ready`` readline had already pulled into the text buffer."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(60)
    proc.stdout.close()
    return out.split()


def test_envelope_survives_the_trip(broker: Any) -> None:
    """Id, type, headers and body bytes arrive as they were sent."""
    sent = Message(body=b"\x00\xffbinary", type="order.submitted", headers={"msisdn": "8613800000000"})
    with broker.adapter.sink(broker.endpoint(), broker.context()) as sink:
        sink.write(sent)
    with broker.adapter.source(broker.endpoint(), broker.context("crm.in")) as source:
        delivery = source.read(5)
        assert delivery is not None
        delivery.ack()
    got = delivery.message
    assert (got.id, got.type, got.body) == (sent.id, sent.type, sent.body)
    assert got.headers["msisdn"] == "8613800000000"


def test_direct_exchange_with_routing_key(broker: Any) -> None:
    """Through a named direct exchange and routing key, the message reaches the bound queue."""
    endpoint = broker.endpoint(exchange=f"{broker.queue}-x", routing_key="orders.new")
    with broker.adapter.sink(endpoint, broker.context()) as sink:
        sink.write(Message(body=b"routed"))
    with broker.adapter.source(endpoint, broker.context()) as source:
        delivery = source.read(5)
        assert delivery is not None
        delivery.ack()
    assert delivery.message.body == b"routed"


def test_at_least_once_across_sigkill(broker: Any) -> None:
    """A consumer killed with SIGKILL before acking loses nothing: the next consumer gets the message."""
    [mid] = _publish(broker, 1)
    proc = _worker(broker, "hold")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == mid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    with broker.adapter.source(broker.endpoint(), broker.context()) as source:
        delivery = source.read(broker.lease * 3 + 5)
        assert delivery is not None
        delivery.ack()
    assert delivery.message.id == mid
    assert delivery.delivery_count >= 2


def test_two_processes_share_the_work_without_duplicates(broker: Any) -> None:
    """Two consumer processes on one queue between them take every message exactly once."""
    ids = _publish(broker, 200)
    workers = [_worker(broker, "drain"), _worker(broker, "drain")]
    outputs = [_rest_of_output(w) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert not set(outputs[0]) & set(outputs[1])
    assert sorted(outputs[0] + outputs[1]) == sorted(ids)


def test_publish_is_durable_before_write_returns(broker: Any) -> None:
    """Once write returned, a consumer started afterwards finds the message (nothing held in memory)."""
    [mid] = _publish(broker, 1)
    deadline = time.monotonic() + 5
    depth = 0
    while depth == 0 and time.monotonic() < deadline:
        depth = broker.adapter.queue_depth(broker.endpoint(), broker.context())
    assert depth == 1
    with broker.adapter.source(broker.endpoint(), broker.context()) as source:
        delivery = source.read(5)
        assert delivery is not None
        delivery.ack()
    assert delivery.message.id == mid
