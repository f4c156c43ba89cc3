"""Status queries through a running hub (flow 3 of issue 15): the CRM and the 10000 hotline ask over SOAP
where an order stands, by order number and by MSISDN, on the embedded default (SQLite) and on
PostgreSQL; an unknown order is an answer, a query naming neither is a Client fault saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from esb.process.engine import ProcessStore
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.status_query import QueryRefused, StatusQueryClient, orders
from tests.integration.pg_server import PostgresServer
from tests.integration.soap_project import REPO, free_port
from tests.unit.test_process_engine import Clock
from tests.unit.test_process_status_query import MSISDN, ORDER, waiting_bundle

pytestmark = pytest.mark.integration

STEP = {
    "process": "order_to_activation",
    "keys": {"order_id": "body.orderId", "msisdn": "body.msisdn"},
    "product": "productOrderItem.productOffering.name",
    "into": "status",
}


def listener(system: str, wsdl: str, path: str, port: int, user: str, variable: str) -> dict[str, Any]:
    """A QueryOrderStatus listener endpoint of ``system``."""
    return {
        "name": system,
        "endpoints": {
            "soap_order_status": {
                "adapter": "soap",
                "wsdl": wsdl,
                "operation": "QueryOrderStatus",
                "message_type": "order_status.query",
                "listen": {
                    "host": "127.0.0.1",
                    "port": port,
                    "path": path,
                    "reply_timeout": "5s",
                    "auth": {"users": [{"username": user, "password_env": variable}]},
                },
            }
        },
    }


def route(system: str) -> dict[str, Any]:
    """The project's status query route of ``system``, as routes.yaml has it."""
    return {
        "id": f"{system}-order-status-query",
        "from": f"{system}.soap_order_status",
        "concurrency": 4,
        "steps": [
            {"transform": f"{system}/query_order_status_to_canonical"},
            {"process_status": STEP},
            {"transform": f"{system}/order_status_to_reply"},
        ],
        "on_error": {
            "redeliver": {"max": 1, "backoff": "fixed", "initial": "10ms"},
            "dead_letter": "dlq.all",
        },
    }


def make_project(tmp: Path, journal_url: str, port: int) -> Project:
    """A project with the repo's contracts and mappings, both status services, and no process files."""
    (tmp / "config").mkdir(parents=True)
    for name in ("transforms", "canonical_model"):
        (tmp / name).symlink_to(REPO / name)
    # linked, as a project overlay links it: the listener serves ?file= names of a linked contract folder
    (tmp / "config" / "contracts").symlink_to(REPO / "config" / "contracts")
    (tmp / "config" / "siebel.yaml").symlink_to(REPO / "config" / "siebel.yaml")
    settings = {
        "data_dir": str(tmp / "var"),
        "journal": {"url": journal_url},
        "monitoring": {"enabled": False},
        "runtime": {"watch_project": False},
    }
    (tmp / "config" / "settings.yaml").write_text(yaml.safe_dump(settings))
    systems = {
        "crm": listener("crm", "config/contracts/crm/esb-crm.wsdl", "/soap/crm", port, "siebel", "T_CRM_PW"),
        "hotline": listener(
            "hotline", "config/contracts/hotline/hotline.wsdl", "/soap/hotline", port, "hotline", "T_HOT_PW"
        ),
        "dlq": {"name": "DLQ", "endpoints": {"all": {"adapter": "memory"}}},
    }
    (tmp / "config" / "systems.yaml").write_text(json.dumps({"systems": systems}, ensure_ascii=False))
    (tmp / "routes.yaml").write_text(json.dumps({"routes": [route("crm"), route("hotline")]}))
    return Project.load(tmp, environ={})


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The embedded default (a SQLite file), and a fresh database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database("status")
    yield url
    server.drop_database(url)


@pytest.fixture
def base(tmp_path: Path, journal_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A hub serving both status services over a store holding one bundle waiting for OSS."""
    monkeypatch.setenv("T_CRM_PW", "crm-secret")
    monkeypatch.setenv("T_HOT_PW", "hotline-secret")
    with ProcessStore(journal_url) as store:
        waiting_bundle(store, Clock())
    port = free_port()
    hub = Hub(make_project(tmp_path / "project", journal_url, port))
    hub.start(wait=20)
    try:
        yield f"http://127.0.0.1:{port}/soap"
    finally:
        hub.stop(timeout=5)


@pytest.fixture
def crm(base: str) -> Iterator[StatusQueryClient]:
    """The simulated CRM's status query client."""
    client = StatusQueryClient(f"{base}/crm", "siebel", "crm-secret", system="crm")
    yield client
    client.close()


@pytest.fixture
def hotline(base: str) -> Iterator[StatusQueryClient]:
    """The simulated 10000 hotline's status query client."""
    client = StatusQueryClient(f"{base}/hotline", "hotline", "hotline-secret", system="hotline")
    yield client
    client.close()


def test_the_crm_gets_the_order_by_number_in_its_own_codes(crm: StatusQueryClient) -> None:
    """CRM by Order Number: Found Y, Status In Progress, each component waiting for OSS's result."""
    answer = crm.query(order_id=ORDER)
    assert answer["Found"] == "Y"
    (order,) = orders(answer)
    assert (order.order_id, order.state, order.step) == (ORDER, "In Progress", "components")
    assert [c.id for c in order.components] == [f"{ORDER}-{n}" for n in (1, 2, 3)]
    assert {(c.state, c.status, c.step) for c in order.components} == {
        ("In Progress", "running", "activation_result")
    }
    assert answer["ListOfOrder"]["Order"][0]["ListOfComponent"]["Component"][1]["Product"] == "300M光宽带"


def test_the_hotline_gets_the_bundle_by_a_components_msisdn(hotline: StatusQueryClient) -> None:
    """Hotline by MSISDN: the bundle, its TMF state with the agents' Chinese text, its components."""
    answer = hotline.query(msisdn=MSISDN)
    assert answer["found"] is True
    (order,) = answer["order"]
    assert (order["orderId"], order["state"], order["stateText"]) == (ORDER, "inProgress", "处理中")
    assert len(order["component"]) == 3


def test_the_crm_asks_by_msisdn_and_the_hotline_by_number(
    crm: StatusQueryClient, hotline: StatusQueryClient
) -> None:
    """Each service takes both keys: the CRM by MSISDN and the hotline by order number find the order."""
    assert [o.order_id for o in orders(crm.query(msisdn=MSISDN))] == [ORDER]
    assert [o.order_id for o in orders(hotline.query(order_id=ORDER))] == [ORDER]


def test_an_unknown_order_is_answered_not_found(crm: StatusQueryClient, hotline: StatusQueryClient) -> None:
    """No such order: the CRM gets Found N, the hotline found false, no fault."""
    assert crm.query(order_id="1-NONE")["Found"] == "N"
    assert hotline.query(msisdn="13900000000") == {"found": False, "order": []}


@pytest.mark.parametrize("system", ["crm", "hotline"])
def test_a_query_naming_neither_is_a_client_fault_saying_what_was_expected(
    system: str, crm: StatusQueryClient, hotline: StatusQueryClient
) -> None:
    """Neither order number nor MSISDN: a Client (Sender) fault BadRequest naming both keys."""
    client = crm if system == "crm" else hotline
    with pytest.raises(QueryRefused) as refused:
        client.query()
    assert (refused.value.code, refused.value.sender) == ("BadRequest", True)
    assert "expected order_id (body.orderId) or msisdn (body.msisdn)" in refused.value.text
