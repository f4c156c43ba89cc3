"""The demo's order mix: planning by scenario, what the CRM sends and hears, the demo's project overlay."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from esb.message import Message
from esb.process.loader import load_processes
from esb.project import Project
from simulators.demo import DEMO_DEADLINE, demo_project
from simulators.process_orders import CANCEL_TYPE, CRMStatusReceiver, Rates, plan_orders

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> Project:
    """The repository's project (its transforms and catalogue)."""
    return Project.load(ROOT, environ={})


def test_every_scenario_with_a_rate_appears_and_the_plan_is_deterministic() -> None:
    """Quotas round the rates but give each injected scenario at least one order; the same run plans the
    same orders, another run other ids."""
    plan = plan_orders(40, "r1", Rates(0.05, 0.05, 0.05))
    counts = Counter(o.scenario for o in plan)
    assert counts == {
        "completed": 34,
        "rim-refusal": 2,
        "oss-timeout": 2,
        "cancelled": 1,
        "cancel-refused": 1,
    }
    again = plan_orders(40, "r1", Rates(0.05, 0.05, 0.05))
    assert [(o.order_id, o.scenario, o.offering) for o in again] == [
        (o.order_id, o.scenario, o.offering) for o in plan
    ]
    assert plan_orders(3, "r2")[0].order_id == "SO-r2-00000"
    assert Counter(o.scenario for o in plan_orders(10, "r3", Rates(0, 0, 0))) == {"completed": 10}
    lone_cancels = {
        next(o.scenario for o in plan_orders(25, f"r{n}", Rates(0, 0, 0.02)) if o.cancel) for n in range(20)
    }
    assert lone_cancels == {"cancelled", "cancel-refused"}  # one cancel a plan: either kind, by the run


def test_expected_ends_follow_the_scenario_and_the_offering() -> None:
    """A refused order fails (a bundle's refused members are mandatory, so every member is undone); IPTV
    alone is never planned for a refusal; an OSS timeout fails; cancels end cancelled or stay completed."""
    plan = plan_orders(200, "r4", Rates(0.3, 0.2, 0.2))
    for order in plan:
        if order.scenario == "rim-refusal":
            assert order.offering != "PO-IPTV"
            assert order.expected_state == "failed"
        elif order.scenario == "oss-timeout":
            assert order.expected_state == "failed"
        elif order.scenario == "cancelled":
            assert order.expected_state == "cancelled"
            assert order.expected_status == "Cancelled"
        else:
            assert order.expected_state == "completed"
            assert order.expected_status == "Complete"
        assert (order.cancel is not None) == (order.scenario in ("cancelled", "cancel-refused"))


def test_rates_out_of_range_are_refused() -> None:
    """A negative rate or rates adding up to more than 1 are an error naming what came."""
    with pytest.raises(ValueError, match=r"between 0 and 1 adding up to at most 1, got \(0.6, 0.6, 0\)"):
        Rates(0.6, 0.6, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Rates(-0.1, 0, 0)


def test_planned_orders_map_to_reservable_components(project: Project) -> None:
    """Each planned order maps (CRM mapping, catalogue) to components whose RIM request is complete: a
    broadband port asked at the line's Service Address, RIM knows it."""
    transforms = project.transforms
    for order in plan_orders(30, "r5", Rates(0, 0, 0)):
        canonical = transforms.get("crm/siebel_order_to_canonical").apply(order.message)
        assert canonical.body["id"] == order.order_id
        with_components = transforms.get("hub/order_with_components").apply(canonical).body
        for component in with_components["components"]:
            if not component.get("reservationItem"):
                continue
            view = {"data": with_components, "item": component, "idempotency_key": "k", "keys": {}}
            request = transforms.get("rim/reserve_request").apply(Message(view)).body
            if component["componentKind"] == "broadband":
                assert request["port"]["address"].startswith("浙江省")
            else:
                assert request["number"] == {"pattern": "*"}


def test_the_cancel_names_the_order_and_starts_the_cancellation(project: Project) -> None:
    """A planned cancel is typed for order_cancellation's trigger and maps to a cancel of its order."""
    order = next(o for o in plan_orders(20, "r6", Rates(0, 0, 0.5)) if o.cancel is not None)
    assert order.cancel is not None
    assert order.cancel.type == CANCEL_TYPE
    cancel = project.transforms.get("crm/siebel_cancel_to_canonical").apply(order.cancel).body
    assert cancel["productOrder"]["id"] == order.order_id


def _update(project: Project, transform: str, view: dict[str, Any], mid: str) -> Message:
    body = project.transforms.get(transform).apply(Message(view)).body_bytes()
    return Message(body=body, id=mid)


def test_the_status_receiver_keeps_the_last_status_and_the_cancel_answer(project: Project) -> None:
    """Status updates and cancel answers, as the processes' mappings write them, are read per order; a
    refused cancel leaves the last status as it was; a body that is not a SiebelMessage is malformed."""
    receiver = CRMStatusReceiver(project)
    done = {"data": {"id": "SO-1"}, "state": "completed", "keys": {}}
    refused = {"data": {"productOrder": {"id": "SO-1"}, "outcome": {"accepted": False, "reason": "active"}}}
    accepted = {"data": {"productOrder": {"id": "SO-2"}, "outcome": {"accepted": True}}, "keys": {}}
    receiver.take(_update(project, "crm/order_status_update", done, "m1"))
    receiver.take(_update(project, "crm/cancel_reply", refused, "m2"))
    receiver.take(_update(project, "crm/cancel_reply", accepted, "m3"))
    receiver.take(Message(body=b"not xml", id="m4"))
    assert receiver.last_status("SO-1") == "Complete"
    assert receiver.cancel_answer("SO-1") == "refused"
    assert receiver.last_status("SO-2") == "Cancelled"
    assert receiver.cancel_answer("SO-2") == "accepted"
    assert receiver.last_status("SO-3") is None
    assert [m.split(":")[0] for m in receiver.malformed] == ["m4"]


def test_the_demo_overlay_cuts_the_short_await_deadlines_and_changes_nothing_else(tmp_path: Path) -> None:
    """The overlay's processes differ from the project's only in their deadlines of an hour or less (a
    repair's 30 days stay: the work-order system's short hour brings due times in); the rest is linked."""
    overlay = demo_project(ROOT, tmp_path / "project")
    assert (overlay / "routes.yaml").resolve() == (ROOT / "routes.yaml").resolve()
    loaded = load_processes(overlay)
    assert loaded.findings == []
    assert loaded.names() == ["fault_to_resolution", "order_cancellation", "order_to_activation"]
    original = (ROOT / "processes" / "order_to_activation.yaml").read_text(encoding="utf-8")
    assert (overlay / "processes" / "order_to_activation.yaml").read_text(
        encoding="utf-8"
    ) == original.replace("deadline: 30m", f"deadline: {DEMO_DEADLINE}")
    faults = (ROOT / "processes" / "fault_to_resolution.yaml").read_text(encoding="utf-8")
    shortened = (overlay / "processes" / "fault_to_resolution.yaml").read_text(encoding="utf-8")
    assert shortened == faults.replace("deadline: 30m", f"deadline: {DEMO_DEADLINE}")
    assert "deadline: 30d" in shortened
