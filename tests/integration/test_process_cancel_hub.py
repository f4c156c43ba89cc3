"""Flow 2 through a running hub (issue 15): a TMF622 CancelProductOrder POSTed to the hub's REST API
reaches the order_cancellation process as a canonical cancel (route channel-rest-cancel-to-hub) and is
answered on its resource. An order waiting for OSS ends cancelled with its reservations released and
the cancel `done`; one past its point of no return stays completed and the cancel ends
`terminatedWithError` with the order's reason. The CRM's cancel (route crm-cancel-to-hub) is
answered to the CRM. The project is the repository's mappings and systems on
a temp folder, with the two example definitions in its processes/ and simulated RIM, OSS and Billing."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import sqlalchemy as sa
import yaml

from esb.message import Message
from esb.process.engine.tables import process_instances
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.process_systems import ProcessSystems

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROUTES = ("crm-cancel-to-hub", "channel-rest-cancel-to-hub")
BASE = "/tmf-api/productOrderingManagement/v4"
REFUSAL = "the order's services are active; ask for a disconnection order instead"


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return the last answer."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The repository's mappings, model and systems, its two cancel routes, both order processes."""
    for name, value in choose_free_ports({}).items():
        monkeypatch.setenv(name, value)
    for name in ("RIM_PASSWORD", "OSS_PASSWORD", "BILLING_PASSWORD", "ESB_REST_CHANNEL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "project"
    for folder in ("config", "canonical_model", "transforms"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "processes").mkdir()
    for name in ("order_to_activation", "order_cancellation"):
        shutil.copy(REPO / "processes" / f"{name}.yaml", root / "processes" / f"{name}.yaml")
    routes = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    chosen = [route for route in routes if route["id"] in ROUTES]
    (root / "routes.yaml").write_text(
        yaml.safe_dump({"routes": chosen}, allow_unicode=True), encoding="utf-8"
    )
    settings = {
        "data_dir": str(tmp_path / "var"),
        "broker": {"url": "sqlite:///{data_dir}/queues.db"},
        "journal": {"url": "sqlite:///{data_dir}/journal.db"},
        "monitoring": {"enabled": False},
        "runtime": {"poll_timeout": "0.1s", "watch_project": False},
        "processes": {"runners": 2, "poll": "0.1s"},
    }
    (root / "config" / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    loaded = Project.load(root, environ=dict(os.environ))
    for name, value in ensure_credentials(loaded).items():
        monkeypatch.setenv(name, value)  # undone after the test
    return loaded


@pytest.fixture
def systems(project: Project) -> Iterator[ProcessSystems]:
    """RIM, OSS and Billing simulated on the ports the project's endpoints name; nothing refused."""
    started = ProcessSystems(project)
    started.start()
    assert started.rim is not None
    assert started.oss is not None
    assert started.billing is not None
    started.rim.refusal_rate = 0.0
    started.oss.result_delay = 0.0
    # the number the bundle's mobile line asks for, a port at its broadband line's address
    started.rim.inventory.add_numbers("571", ["13312345678"])
    started.rim.inventory.add_ports("GZ-TH", ["GZ-TH-OLT01-1/1/1"], ["广东省广州市天河区天河路385号"])
    started.billing.add_account("ACCT-2000123456")
    yield started
    started.stop()


@pytest.fixture
def hub(project: Project, systems: ProcessSystems) -> Iterator[Hub]:
    """The hub on the project (routes and processes), started; stopped at the end."""
    running = Hub(project)
    running.start(wait=30)
    yield running
    running.stop(timeout=10)


def place_order(project: Project, order_id: str) -> None:
    """Put the model's 好E家 bundle (three components) on hub.product_orders as order ``order_id``."""
    body = orjson.loads(
        (REPO / "canonical_model/examples/product_order.v1/valid/home_bundle_new.json").read_bytes()
    )
    endpoint = "hub.product_orders"
    with project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint)) as sink:
        sink.write(Message(body={**body, "id": order_id}, type="order.submitted", schema="product_order.v1"))


def order_state(project: Project, order_id: str) -> tuple[str, str] | None:
    """(status, state) of the order_to_activation instance of ``order_id`` (None before it exists)."""
    t = process_instances.c
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.status, t.state, t.data).where(t.process == "order_to_activation")
            )
            for row in rows:
                if row.data.get("id") == order_id:
                    return str(row.status), str(row.state)
    finally:
        engine.dispose()
    return None


def steps(project: Project) -> list[tuple[str, str, str | None]]:
    """Every step row (path, state, error): what an assertion shows when an instance did not get on."""
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT path, state, error FROM process_steps ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def api() -> tuple[str, tuple[str, str]]:
    """The cancelProductOrder collection's URL and the channel's credentials (from the environment)."""
    url = f"http://127.0.0.1:{os.environ['ESB_REST_CANCEL_PORT']}{BASE}/cancelProductOrder"
    return url, ("channel", os.environ["ESB_REST_CHANNEL_PASSWORD"])


def post_cancel(order_id: str) -> dict[str, Any]:
    """POST a TMF622 cancel of ``order_id``; return the 201's resource."""
    url, auth = api()
    request = {
        "@type": "CancelProductOrder",
        "cancellationReason": "客户改变主意",
        "productOrder": {"id": order_id, "@referredType": "ProductOrder"},
    }
    answer = requests.post(url, json=request, auth=auth, timeout=10)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    assert created["state"] == "acknowledged"
    return created


def cancel_resource(ident: str) -> dict[str, Any]:
    """GET the cancel request as the hub shows it."""
    url, auth = api()
    answer = requests.get(f"{url}/{ident}", auth=auth, timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_tmf622_cancel_of_an_order_waiting_for_oss_cancels_it(
    project: Project, systems: ProcessSystems, hub: Hub
) -> None:
    """The order waiting for OSS's results ends cancelled, RIM holds nothing for it, each activated
    service is deactivated, and the cancel resource ends done."""
    assert systems.oss is not None
    assert systems.rim is not None
    systems.oss.timeout_rate = 1.0  # OSS accepts the activations and never answers: the order waits
    place_order(project, "QD-WAIT-1")
    assert wait_for(
        lambda: len([t for t in systems.oss.tickets.values() if t.order_id == "QD-WAIT-1"]) == 3
    ), [s for s in steps(project) if s[1] != "done"]
    assert len(systems.rim.inventory.live_reservations("QD-WAIT-1")) == 2  # IPTV holds nothing in RIM
    assert order_state(project, "QD-WAIT-1") == ("running", "inProgress")
    created = post_cancel("QD-WAIT-1")
    assert wait_for(lambda: cancel_resource(created["id"])["state"] == "done"), cancel_resource(created["id"])
    # done once the order's instance accepted the cancel; its durable undo may still be running then
    assert wait_for(lambda: order_state(project, "QD-WAIT-1") == ("cancelled", "cancelled"))
    assert systems.rim.inventory.live_reservations("QD-WAIT-1") == []
    deactivated = [
        t for t in systems.oss.tickets.values() if t.order_id == "QD-WAIT-1" and t.action == "deactivate"
    ]
    assert len(deactivated) == 3
    assert "stateChangeReason" not in cancel_resource(created["id"])


def test_a_tmf622_cancel_past_the_point_of_no_return_ends_terminated_with_the_reason(
    project: Project, systems: ProcessSystems, hub: Hub
) -> None:
    """A completed order is not cancelled: the cancel resource ends terminatedWithError with the reason
    the order's definition gives, and the order stays completed."""
    assert systems.oss is not None
    systems.oss.timeout_rate = 0.0
    place_order(project, "QD-DONE-1")
    assert wait_for(lambda: order_state(project, "QD-DONE-1") == ("completed", "completed")), order_state(
        project, "QD-DONE-1"
    )
    created = post_cancel("QD-DONE-1")
    assert wait_for(lambda: cancel_resource(created["id"])["state"] == "terminatedWithError")
    shown = cancel_resource(created["id"])
    assert shown["stateChangeReason"] == REFUSAL
    assert order_state(project, "QD-DONE-1") == ("completed", "completed")


def test_a_crm_cancel_through_the_hub_is_answered_to_the_crm(
    project: Project, systems: ProcessSystems, hub: Hub
) -> None:
    """The CRM's SiebelMessage on crm.order_cancellations (route crm-cancel-to-hub) cancels the order
    waiting for OSS, and the CRM gets its order update with Status Cancelled on crm.order_status."""
    assert systems.oss is not None
    assert systems.rim is not None
    systems.oss.timeout_rate = 1.0
    place_order(project, "SO20261125000123")  # the order transforms/crm/samples/order_cancel.xml names
    assert wait_for(
        lambda: len([t for t in systems.oss.tickets.values() if t.order_id == "SO20261125000123"]) == 3
    )
    endpoint = "crm.order_cancellations"
    request = (REPO / "transforms/crm/samples/order_cancel.xml").read_bytes()
    with project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint)) as sink:
        sink.write(Message(body=request))
    assert wait_for(lambda: order_state(project, "SO20261125000123") == ("cancelled", "cancelled"))
    assert systems.rim.inventory.live_reservations("SO20261125000123") == []
    answers = []
    source = project.adapter_for("crm.order_status").source(
        project.endpoint("crm.order_status"), project.context("crm.order_status")
    )
    with source:
        deadline = time.monotonic() + 20
        while not any(b"Cancelled" in a for a in answers) and time.monotonic() < deadline:
            delivery = source.read(0.2)
            if delivery is not None:
                answers.append(delivery.message.body_bytes())
                delivery.ack()
    assert any(b"Cancelled" in a and b"SO20261125000123" in a for a in answers)
