"""The simulated work-order system (simulators/workorder.py) and 112 desk (simulators/fault112.py): picks,
per-ticket scripts, recalls, and the planned fault mix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from esb.message import Message
from simulators.fault112 import plan_faults
from simulators.workorder import NoTechnician, Technician, WorkOrderSystem

NOW = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def system(*technicians: Technician) -> tuple[WorkOrderSystem, list[tuple[dict[str, Any], float]]]:
    """A work-order system whose events are collected with their delays."""
    sent: list[tuple[dict[str, Any], float]] = []

    def publish(message: Message, delay: float) -> None:
        sent.append((message.body, delay))

    return WorkOrderSystem(list(technicians), publish=publish, clock=lambda: NOW, answer_delay=1.0), sent


def pick(wos: WorkOrderSystem, ticket: str = "TT-1", **extra: Any) -> dict[str, Any]:
    """Ask for a hz-fiber technician with the fiber skill for ``ticket``."""
    return wos.pick({"ticketNo": ticket, "team": "hz-fiber", "skill": "fiber", "slaHours": 8, **extra})


def fiber(tech_id: str, load: int = 0, *, available: bool = True) -> Technician:
    """A hz-fiber technician."""
    return Technician(tech_id, "师傅", "hz-fiber", frozenset({"fiber"}), available=available, load=load)


def test_pick_takes_the_least_loaded_available_technician_with_the_skill() -> None:
    """Load decides, then id; an unavailable one or one without the skill is never picked."""
    copper = Technician("T-0", "师傅", "hz-fiber", frozenset({"copper"}))
    wos, _ = system(copper, fiber("T-1", 2), fiber("T-2", 1), fiber("T-3", 0, available=False))
    answer = pick(wos)
    assert (answer["techNo"], answer["load"], answer["dueAt"]) == ("T-2", 2, "2026-12-06 16:00:00")


def test_a_ticket_is_never_offered_twice_to_one_technician_and_nobody_left_is_an_error() -> None:
    """The second pick of a ticket skips the first technician; the third finds nobody and says why."""
    wos, _ = system(fiber("T-1"), fiber("T-2"))
    assert [pick(wos)["techNo"], pick(wos)["techNo"]] == ["T-1", "T-2"]
    with pytest.raises(NoTechnician, match="offered ticket TT-1 already: T-1, T-2"):
        pick(wos)


def test_the_same_pick_asked_again_gets_the_same_work_order() -> None:
    """requestId and previousWoNo name a pick: asked again (a redo after a crash), the same answer."""
    wos, _ = system(fiber("T-1"), fiber("T-2"))
    first = pick(wos, requestId="i:pick")
    assert pick(wos, requestId="i:pick") == first
    assert pick(wos, requestId="i:pick", previousWoNo=first["woNo"])["techNo"] == "T-2"


def test_a_pick_without_its_team_is_refused_naming_the_field() -> None:
    """A bad request says which field is missing."""
    wos, _ = system(fiber("T-1"))
    with pytest.raises(ValueError, match="team is required"):
        wos.pick({"ticketNo": "TT-1", "skill": "fiber", "slaHours": 8})


def test_scripts_reject_and_silence_only_the_first_technician() -> None:
    """reject: the first technician refuses, the second accepts; silent: the first never answers."""
    wos, sent = system(fiber("T-1"), fiber("T-2"))
    wos.scenarios["TT-1"] = "reject"
    wos.take({"action": "DISPATCH", "woNo": pick(wos)["woNo"]})
    wos.take({"action": "DISPATCH", "woNo": pick(wos)["woNo"]})
    assert [(b["techNo"], b["event"]) for b, _ in sent] == [
        ("T-1", "REJECT"),
        ("T-2", "ACCEPT"),
        ("T-2", "APPOINT"),
        ("T-2", "COMPLETE"),
    ]
    wos.scenarios["TT-2"] = "silent"
    sent.clear()
    wos.take({"action": "DISPATCH", "woNo": pick(wos, "TT-2")["woNo"]})
    assert sent == []


def test_a_recall_frees_the_technician_and_a_repeated_dispatch_is_answered_once() -> None:
    """RECALL takes the order off its technician's load; the same DISPATCH twice gives one set of events."""
    wos, sent = system(fiber("T-1"))
    order = pick(wos)
    wos.take({"action": "DISPATCH", "woNo": order["woNo"]})
    wos.take({"action": "DISPATCH", "woNo": order["woNo"]})
    assert [b["event"] for b, _ in sent] == ["ACCEPT", "APPOINT", "COMPLETE"]
    assert wos.duplicates == 1
    other, _ = system(fiber("T-9"))
    wo = pick(other)["woNo"]
    other.take({"action": "RECALL", "woNo": wo})
    assert (other.orders[wo].state, other.technicians["T-9"].load) == ("recalled", 0)


def test_late_work_is_completed_after_its_due_time() -> None:
    """late: the completion is published after the work order's due time (8 hours here)."""
    wos, sent = system(fiber("T-1"))
    wos.scenarios["TT-1"] = "late"
    wos.take({"action": "DISPATCH", "woNo": pick(wos)["woNo"]})
    ((complete, delay),) = [(b, d) for b, d in sent if b["event"] == "COMPLETE"]
    assert delay > 8 * 3600
    assert complete["resultCode"] == "00"


def test_an_unknown_work_order_or_action_is_refused() -> None:
    """Work orders never picked and actions other than DISPATCH and RECALL are refused with the reason."""
    wos, _ = system(fiber("T-1"))
    with pytest.raises(ValueError, match="never picked"):
        wos.take({"action": "DISPATCH", "woNo": "WO-X"})
    wo = pick(wos)["woNo"]
    with pytest.raises(ValueError, match="expected DISPATCH or RECALL"):
        wos.take({"action": "CLOSE", "woNo": wo})


def test_the_fault_plan_holds_each_scenario_by_quota_with_112_reports() -> None:
    """round(rate x N) of each scenario, the rest resolved; reports in 112's own fields."""
    planned = plan_faults(40, "r1")
    counts = {s: sum(f.scenario == s for f in planned) for s in ("reject", "silent", "late", "resolved")}
    assert counts == {"reject": 4, "silent": 4, "late": 2, "resolved": 30}
    assert len({f.ticket_id for f in planned}) == 40
    assert set(planned[0].report) == {
        "faultNo", "reportTime", "accNbr", "areaCode", "prodType", "faultType", "faultLevel", "faultDesc",
        "addr", "contactPhone",
    }  # fmt: skip
    again = plan_faults(40, "r1")  # seeded: the same run plans the same faults (reportTime is now)
    assert [(f.report["accNbr"], f.scenario) for f in again] == [
        (f.report["accNbr"], f.scenario) for f in planned
    ]
