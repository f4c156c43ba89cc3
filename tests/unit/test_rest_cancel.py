"""TMF622 cancelProductOrder served by the REST adapter, called directly (no server): validated against
the published class (with the model's errata), created once the route took it, GET and list from the
store; its state changes (TaskStateType) through the sink, with a CancelProductOrderStateChangeEvent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from adapters.http.audit import Audit
from adapters.rest.app import RESTApp, Served
from adapters.rest.config import ListenOptions, RESTEndpoint
from adapters.rest.resources import validator
from adapters.rest.sink import RESTSink
from adapters.rest.store import ResourceStore
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import MessageError
from esb.message import Message
from tests.unit.test_rest_app import BASE, SECRET, basic, call, refused

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "config" / "contracts" / "tmf"
CANCEL = {
    "id": "CXL-1",
    "cancellationReason": "客户改变主意",
    "productOrder": {"id": "PO-1", "@referredType": "ProductOrder"},
}


def listen(*resources: str) -> ListenOptions:
    """Listener options serving ``resources`` with one account."""
    return ListenOptions.model_validate(
        {
            "port": 0,
            "resources": list(resources),
            "auth": {"users": [{"username": "channel", "password_env": "X"}]},
        }
    )


@pytest.fixture
def metrics() -> CollectorRegistry:
    """Where the listener counts its refusals."""
    return CollectorRegistry()


@pytest.fixture
def served(tmp_path: Path, metrics: CollectorRegistry) -> Iterator[Served]:
    """A served cancelProductOrder endpoint over a fresh store."""
    store = ResourceStore(tmp_path / "rest.db").open()
    served = Served(
        "channel.rest_cancels", listen("cancelProductOrder"), {"channel": SECRET}, store,
        Audit(BASE, metrics, protocol="rest"),
        {"cancelProductOrder": validator("cancelProductOrder", SCHEMAS)},
        message_type="order.cancel_requested", base_url=f"http://127.0.0.1:1{BASE}",
    )  # fmt: skip
    yield served
    store.close()


def route_takes_one(served: Served) -> tuple[threading.Thread, list[Message]]:
    """Start a route stand-in that takes one delivery from the inbox and acks it delivered."""
    seen: list[Message] = []

    def take() -> None:
        delivery = served.inbox.get(5.0)
        assert delivery is not None
        seen.append(delivery.message)
        delivery.ended("delivered")
        delivery.ack(None)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, seen


def test_a_cancel_request_is_created_once_the_route_took_it(served: Served) -> None:
    """POST answers 201 with the resource acknowledged; the route gets the client's bytes with the type."""
    route, seen = route_takes_one(served)
    body = orjson.dumps(CANCEL)
    status, headers, doc = call(RESTApp(served), "POST", "/cancelProductOrder", body, auth=basic())
    assert status == 201
    assert doc == {**CANCEL, "href": f"http://127.0.0.1:1{BASE}/cancelProductOrder/CXL-1",
                   "@type": "CancelProductOrder", "state": "acknowledged"}  # fmt: skip
    assert headers["Location"] == doc["href"]
    route.join(5.0)
    (message,) = seen
    assert (message.id, message.type, message.body) == ("CXL-1", "order.cancel_requested", body)
    assert message.headers["tmf-resource"] == "cancelProductOrder"
    status, _, got = call(RESTApp(served), "GET", "/cancelProductOrder/CXL-1", auth=basic())
    assert (status, got) == (200, doc)
    status, headers, page = call(RESTApp(served), "GET", "/cancelProductOrder", auth=basic(),
                                 query="productOrder.id=PO-1&fields=state")  # fmt: skip
    assert (status, headers["X-Total-Count"]) == (200, "1")
    assert page == [
        {"id": "CXL-1", "href": doc["href"], "@type": "CancelProductOrder", "state": "acknowledged"}
    ]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"id": "CXL-2", "cancellationReason": "x"}, "$", id="no-order"),
        pytest.param({**CANCEL, "state": "cancelled"}, "$.state", id="not-a-task-state"),
        pytest.param({**CANCEL, "cancellationReason": 5}, "$.cancellationReason", id="reason-not-text"),
    ],
)
def test_a_cancel_breaking_the_tmf_class_gets_400(
    served: Served, metrics: CollectorRegistry, body: dict[str, object], path: str
) -> None:
    """A body that breaks TMF622's CancelProductOrder is refused with the error's JSON path, never routed."""
    app = RESTApp(served)
    status, _, doc = call(app, "POST", "/cancelProductOrder", orjson.dumps(body), auth=basic())
    assert status == 400
    assert path in [d["path"] for d in doc["details"]]
    assert refused(metrics, "schema_violation") == 1
    assert served.inbox.get(0.01) is None


def test_cancels_need_credentials(served: Served) -> None:
    """The cancel resource is behind the listener's authentication like productOrder."""
    status, headers, _ = call(RESTApp(served), "POST", "/cancelProductOrder", orjson.dumps(CANCEL))
    assert status == 401
    assert "Basic" in headers["WWW-Authenticate"]


def test_an_endpoint_serves_only_the_resources_it_lists(tmp_path: Path) -> None:
    """A productOrder endpoint answers 404 to cancelProductOrder (and the reverse)."""
    store = ResourceStore(tmp_path / "rest.db").open()
    served = Served("channel.rest_orders", listen("productOrder"), {"channel": SECRET}, store,
                    Audit(BASE, CollectorRegistry(), protocol="rest"), {"productOrder": None})  # fmt: skip
    try:
        status, _, _ = call(
            RESTApp(served), "POST", "/cancelProductOrder", orjson.dumps(CANCEL), auth=basic()
        )
        assert status == 404
    finally:
        store.close()


def test_the_endpoint_model_takes_cancel_product_order_only_as_declared() -> None:
    """resources accepts cancelProductOrder; another name is refused with the allowed ones."""
    assert listen("cancelProductOrder").resources == ["cancelProductOrder"]
    with pytest.raises(ValueError, match="cancelProductOrder"):
        listen("cancelOrder")


def sink_for(tmp_path: Path, *resources: str) -> RESTSink:
    """A connected sink of a served endpoint with a created cancel request and a listener for its events."""
    context = AdapterContext(Settings(data_dir=tmp_path), tmp_path, "channel.rest_cancels")
    options = listen(*resources).model_dump(mode="json")
    sink = RESTSink(RESTEndpoint.model_validate({"adapter": "rest", "listen": options}), context)
    sink.connect()
    assert sink.store is not None
    sink.store.create(
        "cancelProductOrder",
        "CXL-1",
        orjson.dumps({**CANCEL, "state": "acknowledged"}),
        {"eventId": "E0"},
        None,
    )
    sink.store.add_listener("L1", "http://127.0.0.1:9/l", "eventType=CancelProductOrderStateChangeEvent")
    return sink


def test_a_refused_cancel_shows_terminated_with_its_reason(tmp_path: Path) -> None:
    """terminatedWithError with stateChangeReason is stored and announced as a CancelProductOrder event."""
    sink = sink_for(tmp_path, "cancelProductOrder")
    try:
        change = {"id": "CXL-1", "@type": "CancelProductOrder", "state": "terminatedWithError",
                  "stateChangeReason": "the order's services are active"}  # fmt: skip
        sink.write(Message(body=orjson.dumps(change), correlation_id="C-1"))
        assert sink.store is not None
        shown = sink.store.get("cancelProductOrder", "CXL-1")
        assert shown is not None
        assert (shown["state"], shown["stateChangeReason"]) == (
            "terminatedWithError",
            change["stateChangeReason"],
        )
        (due,) = sink.store.due(now=1e12)
        event = orjson.loads(due["body"])
        assert event["eventType"] == "CancelProductOrderStateChangeEvent"
        assert event["event"]["cancelProductOrder"]["state"] == "terminatedWithError"
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("resources", "change", "problem"),
    [
        pytest.param(
            ("cancelProductOrder",),
            {"id": "CXL-1", "state": "completed"},
            "not a TMF622 CancelProductOrder state",
            id="an-order-state",
        ),
        pytest.param(
            ("productOrder", "cancelProductOrder"),
            {"id": "CXL-1", "state": "done"},
            "give the state change's @type",
            id="which-resource",
        ),
    ],
)
def test_a_cancel_state_change_it_cannot_apply_is_permanent(
    tmp_path: Path, resources: tuple[str, ...], change: dict[str, str], problem: str
) -> None:
    """A state a cancel cannot take, or a change that does not say which resource, is a MessageError."""
    sink = sink_for(tmp_path, *resources)
    try:
        with pytest.raises(MessageError, match=problem):
            sink.write(Message(body=change))
    finally:
        sink.close()


def test_an_endpoint_serving_both_picks_the_resource_by_type(tmp_path: Path) -> None:
    """On an endpoint serving orders and cancels, @type CancelProductOrder moves the cancel request."""
    sink = sink_for(tmp_path, "productOrder", "cancelProductOrder")
    try:
        assert sink.change_state(
            Message(body={"id": "CXL-1", "@type": "CancelProductOrder", "state": "done"})
        )
        assert sink.store is not None
        shown = sink.store.get("cancelProductOrder", "CXL-1")
        assert shown is not None
        assert shown["state"] == "done"
    finally:
        sink.close()
