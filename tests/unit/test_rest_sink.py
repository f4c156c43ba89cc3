"""State changes written to a served REST endpoint: the resource store is updated and the event hub's
listeners get a ProductOrderStateChangeEvent queued; bad changes are permanent errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.rest.config import RESTEndpoint
from adapters.rest.sink import RESTSink
from adapters.rest.store import store_path
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import DecodeError, MessageError
from esb.message import Message


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[RESTSink]:
    """The sink of a served endpoint, with one created order and one registered listener."""
    context = AdapterContext(Settings(data_dir=tmp_path), tmp_path, "channel.rest_orders")
    endpoint = RESTEndpoint.model_validate(
        {
            "adapter": "rest",
            "listen": {"port": 0, "auth": {"users": [{"username": "u", "password_env": "P"}]}},
        }
    )
    with RESTSink(endpoint, context) as made:
        assert made.store is not None
        made.store.create(
            "productOrder", "PO-1", b'{"id": "PO-1", "state": "acknowledged"}', {"eventId": "E0"}, None
        )
        made.store.add_listener("L1", "http://127.0.0.1:9/listener", "eventType=ProductOrderStateChangeEvent")
        yield made
    assert store_path(context).stat().st_mode & 0o777 == 0o600


def test_a_state_change_updates_the_order_and_queues_its_event(sink: RESTSink) -> None:
    """The order takes the new state; one StateChangeEvent waits for the listener, with the order in it."""
    sink.write(Message(body=b'{"id": "PO-1", "state": "inProgress"}', correlation_id="C-1"))
    assert sink.store is not None
    assert sink.store.get("productOrder", "PO-1") == {"id": "PO-1", "state": "inProgress"}
    due = sink.store.due(now=1e12)
    assert len(due) == 1
    assert due[0]["listener_id"] == "L1"
    assert due[0]["correlation_id"] == "C-1"
    event = orjson.loads(due[0]["body"])
    assert event["eventType"] == "ProductOrderStateChangeEvent"
    assert event["event"]["productOrder"]["state"] == "inProgress"


def test_the_same_state_again_queues_nothing(sink: RESTSink) -> None:
    """Writing the state the order already has changes nothing and announces nothing."""
    assert sink.change_state(Message(body={"id": "PO-1", "state": "acknowledged"})) is False
    assert sink.store is not None
    assert sink.store.due(now=1e12) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b'{"id": "PO-404", "state": "completed"}', MessageError, id="unknown-order"),
        pytest.param(b'{"id": "PO-1", "state": "Done"}', MessageError, id="not-a-tmf-state"),
        pytest.param(b'{"state": "completed"}', MessageError, id="no-id"),
        pytest.param(b'{"id": "PO-1", ', DecodeError, id="malformed"),
    ],
)
def test_bad_state_changes_are_permanent(sink: RESTSink, body: bytes, error: type[Exception]) -> None:
    """A change the hub cannot apply is a MessageError (dead-lettered, not retried)."""
    with pytest.raises(error):
        sink.write(Message(body=body))
