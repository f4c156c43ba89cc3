"""The hub's REST listener over real HTTP(S) on loopback: a TMF622 order POSTed, answered 201 once
stored and drained by the route, GET from the store, conflicts, a route that gives the order back or
dead-letters it, TLS, the event hub posting to a real listener with retries, and the REST client against
a real peer honouring Retry-After."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.rest.config import RESTEndpoint
from adapters.rest.sink import RESTSink
from adapters.rest.source import RESTSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import MappingError, RemoteError, TransportError
from esb.message import Message
from esb.typing import Delivery
from simulators.channel import tmf_order, to_json
from tests.contract.harness import Peer
from tests.integration.certs import make_ca, make_leaf, write_cert, write_key

REPO = Path(__file__).resolve().parents[2]
AUTH = ("channel", "channel-secret")
JSON = {"Content-Type": "application/json"}


class FakeRoute(threading.Thread):
    """Reads the source as a route worker would: acks each delivery, or gives it back when told to."""

    def __init__(self, source: RESTSource) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.give_back = False
        self.dead_letter: BaseException | None = None
        self.seen: list[Message] = []
        self.counts: list[int] = []
        self.stop_event = threading.Event()

    def wait(self, count: int, timeout: float = 10.0) -> list[Message]:
        """The messages read once there are ``count`` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.seen

    def run(self) -> None:
        """Read until stopped."""
        while not self.stop_event.is_set():
            delivery: Delivery | None = self.source.read(0.05)
            if delivery is not None:
                self.seen.append(delivery.message)
                self.counts.append(delivery.delivery_count)
                if self.dead_letter is not None:
                    delivery.ended("dead_lettered", self.dead_letter)
                elif not self.give_back:
                    delivery.ended("delivered")
                delivery.ack(TransportError("broker down") if self.give_back else None)


class Listener:
    """A loopback HTTP server recording the events POSTed to it; answers 500 to the first ``failures``."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures = failures
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.failures > 0:
                    outer.failures -= 1
                    self.send_response(500)
                else:
                    outer.events.append(json.loads(data))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/listener"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The events received once there are ``count`` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events


def endpoint(**listen: Any) -> RESTEndpoint:
    """A served productOrder endpoint on a free port with one account and fast event retries."""
    options = {
        "port": 0, "reply_timeout": "3s",
        "auth": {"users": [{"username": "channel", "password_env": "TEST_REST_PASSWORD"}]},
        "events": {"poll": "50ms", "initial_backoff": "50ms", "max_attempts": 5}, **listen,
    }  # fmt: skip
    return RESTEndpoint.model_validate({"adapter": "rest", "listen": options})


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """channel.rest_orders served on a free port, read by a fake route."""
    monkeypatch.setenv("TEST_REST_PASSWORD", AUTH[1])
    context = AdapterContext(Settings(data_dir=tmp_path), REPO, "channel.rest_orders")
    source = RESTSource(endpoint(), context)
    source.connect()
    route = FakeRoute(source)
    route.start()
    try:
        yield {"url": source.url, "route": route, "context": context}
    finally:
        route.stop_event.set()
        route.join(2)
        source.close()


def order(index: int = 1) -> bytes:
    """A clean TMF622 order."""
    return to_json(tmf_order(index, random.Random(index)))


def test_posted_order_is_created_and_drained_by_the_route(served: dict[str, Any]) -> None:
    """POST answers 201 with id, href and state acknowledged; the route gets the client's bytes under the
    order id; GET by id and by filter answer from the store."""
    body = order()
    answer = requests.post(f"{served['url']}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
    assert answer.status_code == 201
    doc = answer.json()
    assert doc["state"] == "acknowledged"
    assert answer.headers["Location"] == doc["href"] == f"{served['url']}/productOrder/{doc['id']}"
    seen = served["route"].wait(1)
    assert [m.id for m in seen] == [doc["id"]]
    assert seen[0].body == body
    got = requests.get(doc["href"], auth=AUTH, timeout=10)
    assert got.json() == doc
    listed = requests.get(f"{served['url']}/productOrder?state=acknowledged&fields=id", auth=AUTH, timeout=10)
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.json() == [{"id": doc["id"], "href": doc["href"], "@type": "ProductOrder"}]


def test_a_second_post_of_the_same_order_is_a_conflict(served: dict[str, Any]) -> None:
    """The order id is taken: posting it again is a 409 with TMF's error JSON, and no second message."""
    url = f"{served['url']}/productOrder"
    assert requests.post(url, data=order(), headers=JSON, auth=AUTH, timeout=10).status_code == 201
    again = requests.post(url, data=order(), headers=JSON, auth=AUTH, timeout=10)
    assert again.status_code == 409
    assert again.json()["status"] == "409"
    time.sleep(0.3)
    assert len(served["route"].wait(1)) == 1


def test_an_order_the_route_gives_back_is_handed_out_again(served: dict[str, Any]) -> None:
    """A route that could not take the order (nack): the 201 stands, the order shows acknowledged, and it
    comes again (a higher delivery count) until the route accepts it, once."""
    served["route"].give_back = True
    url = f"{served['url']}/productOrder"
    answer = requests.post(url, data=order(), headers=JSON, auth=AUTH, timeout=10)
    assert answer.status_code == 201
    served["route"].wait(1)
    ident = json.loads(order())["id"]
    assert requests.get(f"{url}/{ident}", auth=AUTH, timeout=10).json()["state"] == "acknowledged"
    served["route"].give_back = False
    seen = served["route"].wait(2, timeout=15.0)
    time.sleep(0.3)
    assert [m.id for m in seen] == [ident, ident]
    assert served["route"].counts == [1, 2]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(
            MappingError("channel/tmf_product_order_in", "state", "$.state", "code list: 'x' is unknown"),
            id="refused",
        ),
        pytest.param(TransportError("IOM unreachable after 5 attempts"), id="undeliverable"),
    ],
)
def test_an_order_the_route_dead_letters_shows_failed(served: dict[str, Any], failure: BaseException) -> None:
    """An order the route dead-lettered was answered 201 (it is stored, in the dead-letter queue and
    replayable); GET shows it failed, and it is not handed out again."""
    served["route"].dead_letter = failure
    url = f"{served['url']}/productOrder"
    answer = requests.post(url, data=order(3), headers=JSON, auth=AUTH, timeout=10)
    assert answer.status_code == 201
    served["route"].wait(1)
    ident = json.loads(order(3))["id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = requests.get(f"{url}/{ident}", auth=AUTH, timeout=10).json()["state"]
        if state != "acknowledged":
            break
        time.sleep(0.05)
    assert state == "failed"
    time.sleep(0.3)
    assert len(served["route"].seen) == 1


def test_oversized_body_is_refused_before_it_is_read(served: dict[str, Any]) -> None:
    """A declared body over the limit gets 413 with TMF's error JSON."""
    big = b'{"note": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = requests.post(f"{served['url']}/productOrder", data=big, headers=JSON, auth=AUTH, timeout=10)
    assert answer.status_code == 413
    assert answer.json()["code"] == "413"
    assert served["route"].seen == []


def test_registered_listener_gets_events_with_retries(served: dict[str, Any]) -> None:
    """A listener registered on the hub gets the order's CreateEvent (after two 500s: retried with backoff)
    and then its StateChangeEvent (never overtaking the create in backoff); each delivery is journaled;
    after DELETE it gets nothing more while a listener still registered gets the next event."""
    listener, witness = Listener(failures=2), Listener()
    url = served["url"]
    hub, other = (requests.post(f"{url}/hub", json={"callback": x.url}, auth=AUTH, timeout=10)
                  for x in (listener, witness))  # fmt: skip
    assert hub.status_code == other.status_code == 201
    created = requests.post(f"{url}/productOrder", data=order(), headers=JSON, auth=AUTH, timeout=10).json()
    with RESTSink(endpoint(), served["context"]) as sink:
        sink.write(Message(body={"id": created["id"], "state": "inProgress"}))
    events = listener.wait(2)
    assert [e["eventType"] for e in events] == ["ProductOrderCreateEvent", "ProductOrderStateChangeEvent"]
    assert events[1]["event"]["productOrder"]["state"] == "inProgress"
    notes = served["context"].services.journal_notes()
    try:
        ident = f"{events[0]['eventId']}:{hub.json()['id']}"
        deadline = time.monotonic() + 30
        while notes.outcome(f"rest-events:{served['context'].endpoint}", ident) is None:
            assert time.monotonic() < deadline, "the delivery was not journaled"
            time.sleep(0.05)
    finally:
        notes.close()
    assert requests.delete(f"{url}/hub/{hub.json()['id']}", auth=AUTH, timeout=10).status_code == 204
    with RESTSink(endpoint(), served["context"]) as sink:
        sink.write(Message(body={"id": created["id"], "state": "completed"}))
    assert [e["event"]["productOrder"]["state"] for e in witness.wait(3)[1:]] == ["inProgress", "completed"]
    assert len(listener.events) == 2


def test_listener_serves_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With listen.tls the resources are served over https with the given certificate."""
    monkeypatch.setenv("TEST_REST_PASSWORD", AUTH[1])
    ca_key, ca = make_ca("esb rest test CA")
    key, cert = make_leaf(ca_key, "esb rest test CA", server=True)
    write_cert(tmp_path / "ca.pem", ca)
    write_cert(tmp_path / "server.pem", cert)
    write_key(tmp_path / "server.key", key)
    context = AdapterContext(Settings(data_dir=tmp_path / "data"), REPO, "channel.rest_orders")
    tls = {"cert_file": str(tmp_path / "server.pem"), "key_file": str(tmp_path / "server.key")}
    source = RESTSource(endpoint(tls=tls), context)
    source.connect()
    try:
        assert source.url.startswith("https://127.0.0.1:")
        answer = requests.get(
            f"{source.url}/productOrder", auth=AUTH, verify=str(tmp_path / "ca.pem"), timeout=10
        )
        assert answer.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{source.url}/productOrder", auth=AUTH, timeout=10)  # untrusted without the CA
    finally:
        source.close()


def client_sink(peer: Peer, tmp_path: Path) -> RESTSink:
    """A client endpoint of ``peer`` with basic credentials from the environment."""
    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "base_url": peer.url, "timeout": "2s",
         "auth": {"username": "esb", "password_env": "TEST_REST_PASSWORD"},
         "retries": {"max_attempts": 3, "initial_backoff": "50ms"}}
    )  # fmt: skip
    return RESTSink(endpoint, AdapterContext(Settings(data_dir=tmp_path), REPO, "peer.orders"))


def test_client_retries_a_busy_peer_after_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 with Retry-After: 1 is retried about a second later; the 201's JSON is the reply."""
    monkeypatch.setenv("TEST_REST_PASSWORD", "peer-secret")
    peer = Peer(
        (429, {"Retry-After": "1"}, b""), (201, {"Content-Type": "application/json"}, b'{"id": "P-1"}')
    )
    with client_sink(peer, tmp_path) as sink:
        started = time.monotonic()
        reply = sink.request(Message(body=b'{"x": 1}'), 5)
    assert time.monotonic() - started >= 0.9
    assert reply.body == {"id": "P-1"}
    assert peer.bodies == [b'{"x": 1}', b'{"x": 1}']


def test_client_4xx_is_a_permanent_remote_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 422 from the peer is not retried: a RemoteError that is not retryable."""
    monkeypatch.setenv("TEST_REST_PASSWORD", "peer-secret")
    peer = Peer((422, {}, b'{"code": "BAD", "message": "no such offering"}'))
    with client_sink(peer, tmp_path) as sink, pytest.raises(RemoteError) as caught:
        sink.write(Message(body=b"{}"))
    assert caught.value.retryable is False
    assert caught.value.code == "BAD"
    assert len(peer.bodies) == 1


def test_an_order_the_route_refuses_is_announced_only_once_settled(served: dict[str, Any]) -> None:
    """The create event written with the order is held until the route settles it: a refused order is
    announced created then failed, an accepted one created; nothing else is posted or kept."""
    listener = Listener()
    url = served["url"]
    assert (
        requests.post(f"{url}/hub", json={"callback": listener.url}, auth=AUTH, timeout=10).status_code == 201
    )
    served["route"].dead_letter = MappingError("channel/tmf_product_order_in", "state", "$.state", "unknown")
    refused = requests.post(f"{url}/productOrder", data=order(4), headers=JSON, auth=AUTH, timeout=10)
    assert refused.status_code == 201
    served["route"].wait(1)
    served["route"].dead_letter = None
    accepted = requests.post(f"{url}/productOrder", data=order(5), headers=JSON, auth=AUTH, timeout=10)
    assert accepted.status_code == 201
    events = listener.wait(3)
    time.sleep(0.3)  # several polls of the postman: a wrongly released event would have come by now
    shown = [(e["eventType"], e["event"]["productOrder"]["id"], e["event"]["productOrder"]["state"])
             for e in events]  # fmt: skip
    assert sorted(shown) == sorted([
        ("ProductOrderCreateEvent", refused.json()["id"], "acknowledged"),
        ("ProductOrderStateChangeEvent", refused.json()["id"], "failed"),
        ("ProductOrderCreateEvent", accepted.json()["id"], "acknowledged"),
    ])  # fmt: skip
    with RESTSink(endpoint(), served["context"]) as sink:
        assert sink.store is not None
        assert {e["event_id"] for e in sink.store.events()} == {e["eventId"] for e in events}
        assert {e["status"] for e in sink.store.events()} == {"delivered"}
