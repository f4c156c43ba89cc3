"""The simulated credit-control feed and OSS's barring service."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import pytest

from esb.message import Message
from simulators.credit_control import (
    CRM_STATUS,
    SubscriberStatusReceiver,
    final_state_problems,
    plan_credit_events,
)
from simulators.oss_credit import OSSCreditControlSimulator
from simulators.soap_service import ServiceFault

if TYPE_CHECKING:
    from esb.project import Project


def test_plan_has_late_and_repeated_events_judged_by_the_sync_rules() -> None:
    """A plan holds late events (filtered as stale), repeats (filtered) and reminders (filtered)."""
    plan = plan_credit_events(120, "unit", serial_base=1000)
    late = [e for e in plan.events if e.kind.startswith("late")]
    repeats = [e for e in plan.events if e.kind.startswith("repeat")]
    assert any(e.expected == "filtered" for e in late)
    assert repeats
    assert all(e.expected in ("filtered", "dead_lettered") for e in repeats)
    assert all(e.expected == "filtered" for e in plan.events if e.command[0] == "REMIND")
    assert {e.msisdn for e in plan.events if e.expected == "dead_lettered"} == plan.refused | plan.down


def test_final_state_is_the_last_events_whatever_the_sending_order() -> None:
    """Each subscriber's expected final state is asked by its highest serial stop or resume."""
    plan = plan_credit_events(120, "unit", serial_base=1000)
    states = {("STOP", "1"): "ONE_WAY_BARRED", ("STOP", "2"): "TWO_WAY_BARRED", ("RESUME", ""): "ACTIVE"}
    for msisdn, final in plan.final.items():
        if msisdn in plan.refused | plan.down:
            assert final == "ACTIVE"
            continue
        last = max((e for e in plan.events if e.msisdn == msisdn and e.command[0] != "REMIND"),
                   key=lambda e: e.serial)  # fmt: skip
        assert final == states[last.command]


def test_billing_events_are_billings_json() -> None:
    """Events are Billing's own JSON: serial number, number, opType, amounts in fen, Beijing time."""
    event = plan_credit_events(12, "unit", serial_base=1000).events[0]
    body = json.loads(event.message.body_bytes())
    assert body["serialNo"] == str(event.serial)
    assert body["accNbr"] == event.msisdn
    assert body["opType"] in ("STOP", "RESUME", "REMIND")
    assert isinstance(body["oweAmount"], int)
    assert len(body["eventTime"]) == 19


def _request(
    request_id: str, action: str, barring: str | None = "ONE_WAY", msisdn: str = "13300000001"
) -> dict[str, str]:
    fields = {"requestId": request_id, "msisdn": msisdn, "action": action}
    if barring:
        fields["barring"] = barring
    return fields


def test_oss_bars_and_resumes_once_per_request_id() -> None:
    """OSS applies a command once per requestId, answers a repeat the same, and knows each state."""
    oss = OSSCreditControlSimulator()
    handler = oss.operations()["SetServiceStateRequest"][1]
    first = handler(_request("CC-1", "SUSPEND", "TWO_WAY"))
    assert first["serviceState"] == "TWO_WAY_BARRED"
    assert handler(_request("CC-1", "SUSPEND", "TWO_WAY")) == first
    assert handler(_request("CC-2", "RESUME", None))["serviceState"] == "ACTIVE"
    assert oss.applied("13300000001") == [("CC-1", "TWO_WAY_BARRED"), ("CC-2", "ACTIVE")]


@pytest.mark.parametrize(
    ("setup", "request_fields", "code"),
    [
        pytest.param("refused", _request("CC-3", "SUSPEND"), "OSS-2004", id="unknown-number"),
        pytest.param("down", _request("CC-4", "SUSPEND"), "OSS-0503", id="switch-down"),
        pytest.param("", _request("CC-5", "SUSPEND", None), "OSS-0400", id="suspend-without-barring"),
    ],
)
def test_oss_faults(setup: str, request_fields: dict[str, str], code: str) -> None:
    """OSS refuses an unknown number, a dead switch answers busy, a suspend needs its barring."""
    oss = OSSCreditControlSimulator()
    if setup:
        getattr(oss, setup).add(request_fields["msisdn"])
    with pytest.raises(ServiceFault) as caught:
        oss.operations()["SetServiceStateRequest"][1](request_fields)
    assert caught.value.code == code
    assert oss.state_of(request_fields["msisdn"]) == "ACTIVE"


def test_oss_refuses_a_request_id_reused_for_another_command() -> None:
    """A requestId already used for another command is OSS-1006, and changes nothing."""
    oss = OSSCreditControlSimulator()
    handler = oss.operations()["SetServiceStateRequest"][1]
    handler(_request("CC-6", "SUSPEND"))
    with pytest.raises(ServiceFault) as caught:
        handler(_request("CC-6", "RESUME", None))
    assert caught.value.code == "OSS-1006"
    assert oss.state_of("13300000001") == "ONE_WAY_BARRED"


def test_final_state_check_names_each_subscriber_off_its_last_event() -> None:
    """The demo's check lists a subscriber whose OSS state or CRM status is not its last event's."""
    plan = plan_credit_events(24, "unit", serial_base=1000)
    oss = OSSCreditControlSimulator()
    crm = SubscriberStatusReceiver(cast("Project", None))  # no I/O until run(): take() is enough here
    for number, (msisdn, final) in enumerate(plan.final.items()):
        oss.states[msisdn] = final
        if msisdn not in plan.refused | plan.down:
            update = {"Serial Number": msisdn, "Status": CRM_STATUS[final], "Credit Event Id": "1"}
            crm.take(Message(body=json.dumps(update).encode(), id=f"u{number}"))
    assert final_state_problems(plan, oss, crm) == []
    wrong = next(m for m in plan.final if m not in plan.refused | plan.down)
    oss.states[wrong] = "TWO_WAY_BARRED" if plan.final[wrong] != "TWO_WAY_BARRED" else "ACTIVE"
    crm.take(Message(body=json.dumps({"Serial Number": wrong, "Status": "Removed"}).encode(), id="bad"))
    problems = final_state_problems(plan, oss, crm)
    assert len(problems) == 1
    assert problems[0].startswith(f"{wrong}: OSS ")
    assert crm.malformed == ["bad: unknown Status 'Removed'"]
    other = "Active" if plan.final[wrong] != "ACTIVE" else "Suspended-OneWay"
    crm.take(Message(body=json.dumps({"Serial Number": wrong, "Status": other}).encode(), id="off"))
    assert [line.split(":")[1].split()[0] for line in final_state_problems(plan, oss, crm)] == ["OSS", "CRM"]
