"""停机 / 复机 through a running hub: Billing's events on its queue, OSS over SOAP, the CRM's status queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from esb.journal import Journal
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.credit_control import SubscriberStatusReceiver, billing_event
from simulators.crm import CRMSimulator
from simulators.devenv import free_port
from simulators.oss_credit import OSSCreditControlSimulator
from tests.e2e.hub_process import ROOT, hub_environ

ROUTE = "billing-credit-control"
SOURCE = "billing.credit_control_out"
STOP_ONE_WAY, STOP_TWO_WAY, RESUME = ("STOP", "1"), ("STOP", "2"), ("RESUME", "")


@dataclass
class Flow:
    """The running hub with OSS and the CRM simulated, and a way to send Billing's events."""

    hub: Hub
    project: Project
    oss: OSSCreditControlSimulator
    crm: SubscriberStatusReceiver

    def send(self, *events: tuple[str, int, str, tuple[str, str]]) -> None:
        """Publish Billing's events (message id, serial number, MSISDN, command) in this order."""
        with CRMSimulator(self.project, SOURCE) as billing:
            for message_id, serial, msisdn, command in events:
                body = billing_event(serial, msisdn, command, time.time())
                billing.send(Message(body=json.dumps(body).encode(), id=message_id, source="billing"))

    def outcomes(self, *ids: str, timeout: float = 30) -> list[str | None]:
        """Wait until each message ended on the route; return the outcomes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [self.hub.journal.outcome(ROUTE, mid) for mid in ids]
            if all(ended):
                return ended
            time.sleep(0.1)
        return [self.hub.journal.outcome(ROUTE, mid) for mid in ids]

    def journal(self) -> Journal:
        """The hub's journal."""
        return self.hub.journal

    def told(self, msisdn: str, count: int, timeout: float = 10) -> list[str]:
        """Wait until the CRM got ``count`` updates for ``msisdn``; return their Credit Event Ids."""
        deadline = time.monotonic() + timeout
        while len(self.crm.events.get(msisdn, [])) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # one more would show now
        return list(self.crm.events.get(msisdn, []))


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    """The repository's project on a fresh data folder, running only route billing-credit-control."""
    monkeypatch.setenv("OSS_PASSWORD", "oss-test")  # the hub's SOAP client reads it from the environment
    port = free_port()
    environ = hub_environ(tmp_path / "var", ESB_OSS_CC_PORT=str(port), OSS_PASSWORD="oss-test")
    project = Project.load(ROOT, environ=environ)
    project.settings.data_dir.mkdir(parents=True)
    oss = OSSCreditControlSimulator("esb", "oss-test")
    oss.serve(port=port)
    crm = SubscriberStatusReceiver(project)
    hub = Hub(project, route_ids=[ROUTE])
    hub.start(wait=30)
    crm.start()
    assert crm.ready.wait(10)
    try:
        yield Flow(hub, project, oss, crm)
    finally:
        crm.stop()
        crm.join(5)
        hub.stop(timeout=10)
        oss.stop()


def _filtered_detail(journal: Journal, message_id: str) -> dict[str, Any]:
    """The detail of a message's `filtered` event on the route."""
    events = [e for e in journal.history(message_id) if e.state == "filtered" and e.route == ROUTE]
    assert events, f"{message_id} was not filtered"
    return events[-1].detail or {}


def test_a_stop_after_a_newer_resume_is_dropped_and_journaled(flow: Flow) -> None:
    """A stop arriving after a newer resume is never applied: filtered as stale in the journal, OSS and the
    CRM stay on the resume."""
    flow.send(("s1", 100, "13300000101", STOP_ONE_WAY), ("r1", 120, "13300000101", RESUME))
    flow.send(("late", 110, "13300000101", STOP_TWO_WAY))
    assert flow.outcomes("s1", "r1", "late") == ["delivered", "delivered", "filtered"]
    detail = _filtered_detail(flow.journal(), "late")
    assert detail["sync"] == "credit-control-oss"
    assert detail["key"] == "13300000101"
    assert detail["skipped"] == "stale"
    assert [request for request, _ in flow.oss.applied("13300000101")] == ["CC-100", "CC-120"]
    assert flow.told("13300000101", 2) == ["100", "120"]
    assert flow.crm.status_of("13300000101") == "Active"


def test_the_same_event_twice_is_applied_once(flow: Flow) -> None:
    """Billing sending one event twice (two message ids): OSS applies it once, the CRM is told once."""
    flow.send(("a", 200, "13300000102", STOP_TWO_WAY), ("a-again", 200, "13300000102", STOP_TWO_WAY))
    assert flow.outcomes("a", "a-again") == ["delivered", "filtered"]
    assert _filtered_detail(flow.journal(), "a-again")["skipped"] == "unchanged"
    assert flow.oss.applied("13300000102") == [("CC-200", "TWO_WAY_BARRED")]
    assert flow.told("13300000102", 1) == ["200"]
    assert flow.crm.status_of("13300000102") == "Suspended-TwoWay"


def test_reminders_are_journaled_as_filtered_not_sent_to_oss(flow: Flow) -> None:
    """An arrears reminder (催缴) is no OSS command: filtered, OSS and the CRM untouched."""
    flow.send(("remind", 300, "13300000103", ("REMIND", "")))
    assert flow.outcomes("remind") == ["filtered"]
    assert flow.oss.applied("13300000103") == []
    assert flow.told("13300000103", 0, timeout=0.5) == []


def test_a_busy_oss_is_retried_and_the_crm_told_once_it_confirmed(flow: Flow) -> None:
    """OSS busy (OSS-0503) once: the route retries, OSS applies the stop, then the CRM is told."""
    flow.oss.busy_next(1)
    flow.send(("busy", 400, "13300000104", STOP_ONE_WAY))
    assert flow.outcomes("busy") == ["delivered"]
    assert flow.oss.applied("13300000104") == [("CC-400", "ONE_WAY_BARRED")]
    assert flow.told("13300000104", 1) == ["400"]
    assert len([f for _, f in flow.oss.calls if f.get("msisdn") == "13300000104"]) == 2  # busy, then done


def test_an_oss_that_never_answers_ends_in_the_dead_letter_queue_and_the_crm_is_not_told(flow: Flow) -> None:
    """A switch that keeps answering busy: retried per the route's policy (1 + 4 calls), then
    dead-lettered with OSS's error; the CRM never hears of a stop OSS did not confirm; the same event
    sent again after the switch came back is applied (its last sender was dead-lettered)."""
    flow.oss.down.add("13300000105")
    flow.send(("down", 500, "13300000105", STOP_ONE_WAY))
    assert flow.outcomes("down", timeout=60) == ["dead_lettered"]
    calls = [f for name, f in flow.oss.calls if f.get("msisdn") == "13300000105"]
    assert len(calls) == 1 + flow.project.route(ROUTE).on_error.redeliver.max
    errors = [e.error_text or "" for e in flow.journal().history("down") if e.state == "dead_lettered"]
    assert any("OSS-0503" in text for text in errors)
    assert flow.told("13300000105", 0, timeout=0.5) == []
    flow.oss.down.clear()
    flow.send(("down-again", 500, "13300000105", STOP_ONE_WAY))
    assert flow.outcomes("down-again") == ["delivered"]
    assert flow.oss.applied("13300000105") == [("CC-500", "ONE_WAY_BARRED")]
    assert flow.told("13300000105", 1) == ["500"]


def test_an_unknown_number_is_dead_lettered_at_once(flow: Flow) -> None:
    """OSS-2004 (unknown subscriber) is permanent: dead-lettered without retries, the CRM not told."""
    flow.oss.refused.add("13300000106")
    flow.send(("unknown", 600, "13300000106", STOP_TWO_WAY))
    assert flow.outcomes("unknown") == ["dead_lettered"]
    assert len([f for _, f in flow.oss.calls if f.get("msisdn") == "13300000106"]) == 1
    assert flow.told("13300000106", 0, timeout=0.5) == []
