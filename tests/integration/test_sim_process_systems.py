"""`make run`'s RIM, OSS and Billing subscriber simulators answer the project's own endpoints as declared."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esb.codec import json_body
from esb.message import Message
from esb.project import Project
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.process_systems import ProcessSystems
from tests.integration.soap_project import REPO


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The repository's project on free ports, throwaway credentials, a fresh data folder."""
    for name, value in choose_free_ports({}).items():
        monkeypatch.setenv(name, value)
    for name in ("RIM_PASSWORD", "OSS_PASSWORD", "BILLING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    project = Project.load(REPO, environ={**os.environ, "ESB_DATA_DIR": str(tmp_path / "var")})
    made = ensure_credentials(project)
    for name, value in made.items():
        monkeypatch.setenv(name, value)  # undone after the test
    return project


@pytest.fixture
def systems(project: Project) -> Iterator[ProcessSystems]:
    """The process systems started for the project."""
    started = ProcessSystems(project)
    lines = started.start()
    assert [line.split()[0] for line in lines] == ["RIM", "OSS", "Billing", "WorkOrd"]
    yield started
    started.stop()


def call(project: Project, endpoint: str, body: dict[str, str | dict[str, str]]) -> dict[str, str]:
    """Call ``endpoint`` through the adapter the project declares for it; return the reply body."""
    with project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint)) as client:
        reply = client.request(Message(body), 5.0).body
    assert isinstance(reply, dict)
    return reply


def test_the_declared_endpoints_reach_the_simulators(project: Project, systems: ProcessSystems) -> None:
    """Reserve, activate (result on the declared queue), create a subscriber via systems.yaml's endpoints."""
    assert systems.rim is not None
    assert systems.oss is not None
    assert systems.billing is not None
    systems.rim.refusal_rate = 0.0
    systems.oss.timeout_rate, systems.oss.result_delay = 0.0, 0.0
    keys = {"orderId": "O-9", "componentId": "mobile"}
    held = call(
        project, "rim.reserve_resources", {"idempotencyKey": "O-9/rim", **keys, "number": {"areaCode": "571"}}
    )
    assert held["state"] == "PRE_RESERVED"
    assert [r.msisdn for r in systems.rim.inventory.live_reservations("O-9")] == [held["msisdn"]]
    ticket = call(
        project, "oss.activate_service", {"idempotencyKey": "O-9/oss", **keys, "serviceType": "MOBILE"}
    )
    results = project.endpoint("oss.activation_results")
    source = project.adapter_for("oss.activation_results").source(
        results, project.context("oss.activation_results")
    )
    deadline, delivery = time.monotonic() + 10, None
    with source:
        while delivery is None and time.monotonic() < deadline:
            delivery = source.read(0.2)
        assert delivery is not None
        delivery.ack()
    assert json_body(delivery.message.body, "result")["ticketId"] == ticket["ticketId"]
    systems.billing.add_account("2000000009")
    subscriber = {"externalId": "O-9/billing", "accountId": "2000000009", "serviceType": "MOBILE"}
    assert call(project, "billing.create_subscriber", subscriber)["status"] == "ACTIVE"
    assert call(project, "billing.delete_subscriber", {"externalId": "O-9/billing"})["status"] == "DELETED"
    assert call(project, "rim.release_reservation", {"idempotencyKey": "O-9/rim"})["state"] == "RELEASED"
    assert systems.rim.inventory.live_reservations("O-9") == []
