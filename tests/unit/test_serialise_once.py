"""Each output is serialised once (Message.body_bytes keeps its bytes): the journal's delivered bodies and
the bodies published are byte for byte those of the slow path, which serialises at every call."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import esb.message
from adapters.queue.source import peek_messages
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.crm import CRMSimulator, make_order
from simulators.siebel import siebel_order_xml

ROOT = Path(__file__).resolve().parents[2]
ROUTE = "crm-order-to-iom"
OUTPUTS = ("iom.orders_in", "hub.product_orders")


def _body_bytes_every_time(self: Message) -> bytes:
    """The slow path: Message.body_bytes as it was before it kept its bytes."""
    body = self.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        pass
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


class _CountingDumps:
    """``orjson`` as esb.message sees it, counting the documents serialised."""

    JSONEncodeError = orjson.JSONEncodeError
    OPT_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS

    def __init__(self) -> None:
        self.calls = 0

    def dumps(self, value: Any, **kwargs: Any) -> bytes:
        self.calls += 1
        return orjson.dumps(value, **kwargs)


def _orders(count: int) -> list[bytes]:
    rng = random.Random(27)
    return [siebel_order_xml(make_order(i, rng), encoding="GBK" if i % 2 else "UTF-8") for i in range(count)]


def _run(folder: Path, bodies: list[bytes], batch_size: int) -> dict[str, Any]:
    """Run the route over ``bodies``; return the journal's delivered bodies and the queues' bodies."""
    folder.mkdir(parents=True)
    project = Project.load(ROOT, environ={"ESB_DATA_DIR": str(folder), "ESB_RUNTIME__POLL_TIMEOUT": "0.05s"})
    project.settings.runtime.batch_size = batch_size
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"o-{i}" for i in range(len(bodies))]
    with CRMSimulator(project) as crm:
        for message_id, body in zip(ids, bodies, strict=True):
            crm.send(Message(body=body, id=message_id))
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    try:
        deadline = time.monotonic() + 60
        while any(hub.journal.outcome(ROUTE, i) is None for i in ids):
            assert time.monotonic() < deadline, "the route did not end every message"
            time.sleep(0.05)
        journaled = {
            (event.message_id, event.endpoint): hub.journal.event_body(event.id, event.message_id)
            for message_id in ids
            for event in hub.journal.history(message_id)
            if event.state == "delivered" and event.endpoint is not None
        }
    finally:
        hub.stop()
    published = {
        (message.id, name): message.body
        for name in OUTPUTS
        for message in peek_messages(project.endpoint(name), project.context(name), limit=10 * len(ids))
    }
    return {"journaled": journaled, "published": published}


@pytest.mark.parametrize(
    "batch_size", [pytest.param(1, id="one-message-path"), pytest.param(50, id="batched-path")]
)
def test_journal_and_queues_get_the_slow_paths_bytes_from_one_serialisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    """CRM orders through crm-order-to-iom leave the same delivered bodies in the journal and on both
    queues as the slow path, with one serialisation per output where the slow path makes two."""
    bodies = _orders(12)
    counting = _CountingDumps()
    monkeypatch.setattr(esb.message, "orjson", counting)
    fast = _run(tmp_path / "fast", bodies, batch_size)
    fast_calls, counting.calls = counting.calls, 0
    with monkeypatch.context() as slow_path:
        slow_path.setattr(Message, "body_bytes", _body_bytes_every_time)
        slow_path.setattr(esb.message, "orjson", orjson)
        slow = _run(tmp_path / "slow", bodies, batch_size)
    assert len(fast["journaled"]) == len(fast["published"]) == len(bodies) * len(OUTPUTS)
    assert set(fast["journaled"]) == set(fast["published"])
    assert fast == slow
    for key, body in fast["journaled"].items():
        assert body == fast["published"][key]
        assert isinstance(orjson.loads(body), dict)
    assert fast_calls == len(bodies) * len(OUTPUTS)  # the slow path: twice that (journal, then sink)


def test_a_body_assigned_anew_is_serialised_anew() -> None:
    """The kept bytes follow the body object: a new body (assigned, or in a copy) gets its own bytes."""
    message = Message(body={"a": 1})
    first = message.body_bytes()
    assert message.body_bytes() is first
    changed = message.replace(body={"a": 2})
    assert changed.body_bytes() == b'{"a":2}'
    message.body = {"a": 3}
    assert message.body_bytes() == b'{"a":3}'
    message.body = b"raw"
    assert message.body_bytes() == b"raw"


def test_copies_do_not_carry_the_kept_bytes() -> None:
    """replace() and derive() start without the kept bytes, and compare equal to the original."""
    message = Message(body={"k": [1, 2]}, id="m-1")
    message.body_bytes()
    copy = message.replace(attempt=2)
    assert copy._serialised is None
    assert copy.body_bytes() == message.body_bytes()
    assert message.derive({"k": 1}, suffix="1")._serialised is None
    assert message.replace() == message
