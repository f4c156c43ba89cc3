"""The REST adapter's pure parts: ids written into bodies, event queries, the endpoint model's rules."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from adapters.rest.config import RESTEndpoint
from adapters.rest.errors import Refusal
from adapters.rest.events import CREATE, STATE_CHANGE, check_query, make_event, matches
from adapters.rest.resources import project, with_id

LISTEN = {"port": 0, "auth": {"users": [{"username": "u", "password_env": "P"}]}}


def test_a_given_id_keeps_the_clients_bytes() -> None:
    """When the client names the order, the route gets its bytes exactly as sent."""
    data = b'{ "id": "PO-1", "amount": 199.00 }'
    assert with_id(data, orjson.loads(data)) == ("PO-1", data)


@pytest.mark.parametrize(
    "data",
    [pytest.param(b'{"amount": 199.00}', id="with-attributes"), pytest.param(b" { } ", id="empty-object")],
)
def test_a_missing_id_is_written_first_and_nothing_else_changes(data: bytes) -> None:
    """Without an id the listener assigns one, written first; the rest stays byte for byte."""
    ident, body = with_id(data, orjson.loads(data))
    doc = orjson.loads(body)
    assert doc["id"] == ident
    assert len(ident) == 32
    assert body.endswith(data.lstrip()[1:])


@pytest.mark.parametrize("value", [pytest.param(5, id="number"), pytest.param("", id="empty")])
def test_an_unusable_id_is_refused(value: object) -> None:
    """An id that is not a non-empty string is a 400, never replaced silently."""
    doc = {"id": value}
    with pytest.raises(Refusal) as caught:
        with_id(orjson.dumps(doc), doc)
    assert caught.value.status == 400


def test_projection_keeps_identity() -> None:
    """fields= keeps id, href and @type whatever it names; nested names keep their top attribute."""
    doc = {
        "id": "1",
        "href": "h",
        "@type": "ProductOrder",
        "state": "x",
        "channel": [{"id": "app"}],
        "note": [],
    }
    assert project(doc, ["channel.id"]) == {
        "id": "1",
        "href": "h",
        "@type": "ProductOrder",
        "channel": [{"id": "app"}],
    }
    assert project(doc, None) is doc


def test_events_name_their_type_and_carry_the_resource() -> None:
    """A state-change event is a ProductOrderStateChangeEvent with the order inside and a fresh id."""
    one = make_event("productOrder", STATE_CHANGE, {"id": "1", "state": "completed"}, "corr")
    two = make_event("productOrder", CREATE, {"id": "1"}, None)
    assert one["eventType"] == "ProductOrderStateChangeEvent"
    assert two["eventType"] == "ProductOrderCreateEvent"
    assert one["event"]["productOrder"]["state"] == "completed"
    assert one["correlationId"] == "corr"
    assert one["eventId"] != two["eventId"]
    assert one["eventTime"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(None, True, id="no-query"),
        pytest.param("eventType=ProductOrderStateChangeEvent", True, id="type"),
        pytest.param("eventType=ProductOrderCreateEvent", False, id="other-type"),
        pytest.param("event.productOrder.state=held,completed", True, id="one-of-values"),
        pytest.param(
            "eventType=ProductOrderStateChangeEvent&event.productOrder.state=held", False, id="all-terms"
        ),
    ],
)
def test_listener_queries_select_events(query: str | None, expected: bool) -> None:
    """A listener's query selects events by dotted paths, each term one of its comma-separated values."""
    event = make_event("productOrder", STATE_CHANGE, {"id": "1", "state": "completed"}, None)
    assert matches(query, event) is expected


def test_unusable_queries_are_named() -> None:
    """A query that is not name=value terms is refused at registration."""
    assert check_query("eventType") is not None
    assert check_query("=x") is not None
    assert check_query("eventType=A&x=1") is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"listen": LISTEN, "base_url": "http://peer/api"}, id="listener-with-base-url"),
        pytest.param({}, id="neither-role"),
        pytest.param({"base_url": "ftp://peer"}, id="not-http"),
        pytest.param({"listen": {**LISTEN, "base_path": "no-slash"}}, id="bad-base-path"),
        pytest.param({"listen": {**LISTEN, "auth": {"users": []}}}, id="no-accounts"),
    ],
)
def test_endpoint_model_refuses_mistakes(options: dict[str, object]) -> None:
    """A REST endpoint is a listener or a client, never both or neither, with usable URLs and accounts."""
    with pytest.raises(ValidationError):
        RESTEndpoint.model_validate({"adapter": "rest", **options})
