"""The REST listener's WSGI application, called directly (no server): every refusal gets its HTTP status
and TMF's error JSON, is logged and counted without secrets; GET answers from the resource store."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from adapters.http.audit import Audit
from adapters.rest.app import RESTApp, Served
from adapters.rest.config import ListenOptions
from adapters.rest.resources import validator
from adapters.rest.store import ResourceStore
from esb.testing import captured_logs

ROOT = Path(__file__).resolve().parents[2]
BASE = "/tmf-api/productOrderingManagement/v4"
SECRET = "s3cret-channel-password"
ORDER = {"id": "PO-1", "productOrderItem": [{"id": "1", "action": "add"}]}


def basic(user: str = "channel", password: str = SECRET) -> str:
    """An HTTP basic Authorization header."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[RESTApp, CollectorRegistry]]:
    """An application over a fresh store, with one account and a small body limit."""
    options = ListenOptions.model_validate(
        {"port": 0, "max_request_bytes": 2048, "throttle": {"max_failures": 3},
         "auth": {"users": [{"username": "channel", "password_env": "UNUSED"}]}}
    )  # fmt: skip
    store = ResourceStore(tmp_path / "rest.db").open()
    metrics = CollectorRegistry()
    served = Served(
        "channel.rest_orders", options, {"channel": SECRET}, store, Audit(BASE, metrics, protocol="rest"),
        {"productOrder": validator("productOrder", ROOT / "config" / "contracts" / "tmf")},
        base_url=f"http://127.0.0.1:1{BASE}",
    )  # fmt: skip
    yield RESTApp(served), metrics
    store.close()


def call(
    app: RESTApp,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    auth: str | None = None,
    content_type: str = "application/json",
    query: str = "",
    client: str = "127.0.0.1",
) -> tuple[int, dict[str, str], Any]:
    """Call the application; return (status, headers, parsed JSON body or None)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": BASE + path, "QUERY_STRING": query, "REMOTE_ADDR": client,
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
    }  # fmt: skip
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    data = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], orjson.loads(data) if data else None


def refused(metrics: CollectorRegistry, reason: str) -> float:
    """How many requests were refused for ``reason``."""
    value = metrics.get_sample_value("esb_rest_refused_total", {"path": BASE, "reason": reason})
    return value or 0.0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        pytest.param(b'{"id": ', "application/json", 400, "malformed", id="malformed-json"),
        pytest.param(b"[1, 2]", "application/json", 400, "malformed", id="not-an-object"),
        pytest.param(orjson.dumps(ORDER), "text/plain", 415, "wrong_content_type", id="wrong-content-type"),
        pytest.param(b"{}", "application/json", 400, "schema_violation", id="schema-no-items"),
        pytest.param(
            orjson.dumps({**ORDER, "state": "Submitted"}),
            "application/json",
            400,
            "schema_violation",
            id="schema-unknown-state",
        ),
        pytest.param(b'{"x": "' + b"a" * 3000 + b'"}', "application/json", 413, "oversize", id="over-limit"),
    ],
)
def test_bad_bodies_get_tmf_errors(
    app: tuple[RESTApp, CollectorRegistry], body: bytes, content_type: str, status: int, reason: str
) -> None:
    """Each bad body gets its status and TMF's error JSON, and is counted under its reason."""
    rest, metrics = app
    got, _, doc = call(rest, "POST", "/productOrder", body, auth=basic(), content_type=content_type)
    assert got == status
    assert doc["status"] == str(status)
    assert doc["code"] == str(status)
    assert doc["reason"]
    assert doc["message"]
    assert refused(metrics, reason) == 1


def test_schema_errors_name_their_json_paths(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """A schema violation's error JSON lists each error with its JSON path."""
    body = orjson.dumps({**ORDER, "state": 5})
    status, _, doc = call(app[0], "POST", "/productOrder", body, auth=basic())
    assert status == 400
    assert {"path": "$.state", "message": '5 is not of type "string"'} in doc["details"]


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        pytest.param(None, "missing_credentials", id="missing"),
        pytest.param(basic(password="wrong"), "bad_credentials", id="wrong-password"),
        pytest.param(basic(user="nobody"), "bad_credentials", id="unknown-user"),
        pytest.param("Bearer wrong-token", "bad_credentials", id="wrong-bearer"),
        pytest.param("Digest abc", "bad_credentials", id="unknown-scheme"),
    ],
)
def test_missing_or_wrong_credentials_get_401(
    app: tuple[RESTApp, CollectorRegistry], auth: str | None, reason: str
) -> None:
    """Every resource needs credentials: without the right ones, 401 with a challenge, before all else."""
    rest, metrics = app
    status, headers, doc = call(rest, "GET", "/productOrder/PO-1", auth=auth)
    assert status == 401
    assert doc["status"] == "401"
    assert "Basic" in headers["WWW-Authenticate"]
    assert refused(metrics, reason) == 1


def test_bearer_token_is_accepted(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """An account's secret sent as a bearer token authenticates it."""
    status, _, _ = call(app[0], "GET", "/productOrder", auth=f"Bearer {SECRET}")
    assert status == 200


def test_secrets_never_reach_the_log(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """Refusals are logged with the claimed user name, never a password or token."""
    with captured_logs() as logs:
        call(app[0], "GET", "/productOrder", auth=basic(password="wrong-" + SECRET))
        call(app[0], "GET", "/productOrder", auth=f"Bearer {SECRET}-guess")
    assert len(logs) == 2
    assert logs[0]["user"] == "channel"
    assert SECRET not in repr(logs)


def test_repeated_failures_lock_the_client_out(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """Three failed logins lock the address out: 429 with Retry-After even with the right password."""
    rest, _metrics = app
    for _ in range(3):
        call(rest, "GET", "/productOrder", auth=basic(password="wrong"), client="10.0.0.9")
    status, headers, doc = call(rest, "GET", "/productOrder", auth=basic(), client="10.0.0.9")
    assert status == 429
    assert doc["status"] == "429"
    assert int(headers["Retry-After"]) >= 1
    assert call(rest, "GET", "/productOrder", auth=basic())[0] == 200  # another address is not locked


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/serviceOrder", 404, id="unknown-resource"),
        pytest.param("GET", "/productOrder/PO-404", 404, id="unknown-id"),
        pytest.param("DELETE", "/productOrder/PO-1", 405, id="wrong-method"),
        pytest.param("GET", "/productOrder/a/b", 404, id="too-deep"),
        pytest.param("DELETE", "/hub/nobody", 404, id="unknown-listener"),
    ],
)
def test_unknown_resources_get_tmf_errors(
    app: tuple[RESTApp, CollectorRegistry], method: str, path: str, status: int
) -> None:
    """Paths and ids the listener does not serve get 404 (405 for a method) with TMF's error JSON."""
    got, _, doc = call(app[0], method, path, auth=basic())
    assert got == status
    assert doc["status"] == str(status)


def _created(rest: RESTApp, ident: str, state: str) -> None:
    store = rest.served.store
    href = rest.served.href("productOrder", ident)
    doc = {"id": ident, "href": href, "@type": "ProductOrder", "state": state, "category": "新装"}
    store.create("productOrder", ident, orjson.dumps(doc), {"eventId": f"E-{ident}"}, None)


def test_get_answers_from_the_store(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """GET by id returns the resource the hub keeps, href included."""
    _created(app[0], "PO-7", "inProgress")
    status, _, doc = call(app[0], "GET", "/productOrder/PO-7", auth=basic())
    assert status == 200
    assert doc["state"] == "inProgress"
    assert doc["href"].endswith("/productOrder/PO-7")


def test_list_filters_projects_and_pages(app: tuple[RESTApp, CollectorRegistry]) -> None:
    """?state= filters, fields= keeps only the named attributes (and id, href, @type), offset/limit page
    with X-Total-Count and X-Result-Count."""
    for n in range(5):
        _created(app[0], f"PO-{n}", "completed" if n % 2 else "acknowledged")
    status, headers, docs = call(
        app[0], "GET", "/productOrder", auth=basic(), query="state=acknowledged&fields=state&offset=1&limit=1"
    )
    assert status == 200
    assert headers["X-Total-Count"] == "3"
    assert headers["X-Result-Count"] == "1"
    assert docs == [{"id": "PO-2", "href": docs[0]["href"], "@type": "ProductOrder", "state": "acknowledged"}]


@pytest.mark.parametrize(
    "query",
    [
        "state=completed&fields=state,channel.id&offset=2&limit=3",
        "fields=priority&limit=4",
        "offset=8&limit=5",
        "channel.id=C1&offset=1",
        "state=nothing",
    ],
)
def test_list_headers_and_fields_as_the_old_statements(
    app: tuple[RESTApp, CollectorRegistry], query: str
) -> None:
    """A GET list's body (projected to ``fields``, in order) and X-Total-Count / X-Result-Count are those the
    replaced statements gave."""
    from adapters.rest.resources import list_query, project
    from tests.unit.test_rest_list import fill, old_query

    store = app[0].served.store
    fill(store)
    assert store._db is not None
    filters, fields, offset, limit = list_query(query)
    total, ids = old_query(store._db, "productOrder", filters, offset, limit)
    status, headers, docs = call(app[0], "GET", "/productOrder", auth=basic(), query=query)
    assert status == 200
    assert (headers["X-Total-Count"], headers["X-Result-Count"]) == (str(total), str(len(ids)))
    assert docs == [project(store.get("productOrder", i) or {}, fields) for i in ids]
    if fields:
        assert all(set(d) <= {"id", "href", "@type", *(f.split(".")[0] for f in fields)} for d in docs)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("limit=0", id="limit-zero"),
        pytest.param("offset=-1", id="negative-offset"),
        pytest.param("fields=a;b", id="bad-field"),
        pytest.param("x')=1", id="bad-filter-name"),
    ],
)
def test_bad_list_queries_get_400(app: tuple[RESTApp, CollectorRegistry], query: str) -> None:
    """A list query that cannot be understood is refused, never guessed at."""
    status, _, doc = call(app[0], "GET", "/productOrder", auth=basic(), query=query)
    assert status == 400
    assert doc["status"] == "400"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"callback": "http://127.0.0.1:9/listener"}, 201, id="http"),
        pytest.param({"callback": "file:///etc/passwd"}, 400, id="file-url"),
        pytest.param({"callback": "http:///nohost"}, 400, id="no-host"),
        pytest.param({"query": "eventType=X"}, 400, id="no-callback"),
        pytest.param({"callback": "https://h/l", "query": 5}, 400, id="query-not-text"),
    ],
)
def test_hub_registration_checks_the_callback(
    app: tuple[RESTApp, CollectorRegistry], body: dict[str, Any], status: int
) -> None:
    """Only http(s) callbacks with a host are registered (201 with an id); the rest get 400."""
    got, _, doc = call(app[0], "POST", "/hub", orjson.dumps(body), auth=basic())
    assert got == status
    if status == 201:
        assert doc["id"]
        assert call(app[0], "DELETE", f"/hub/{doc['id']}", auth=basic())[0] == 204
