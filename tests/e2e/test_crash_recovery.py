"""SIGKILL the hub mid-flow on the embedded default, restart it: no message is lost."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from esb.journal import Journal
from esb.project import Project
from simulators.crm import CRMSimulator, PlannedMessage, order_scenario
from tests.e2e.hub_process import HubProcess, drain_iom, load_project, wait_for_outcomes

ROUTE = "crm-order-to-iom"


def test_sigkill_twice_loses_nothing(tmp_path: Path) -> None:
    """2,000 CRM orders survive two SIGKILLs of the hub: each ends as planned and IOM gets every good one."""
    project = load_project(tmp_path / "var")
    project.settings.data_dir.mkdir(parents=True)
    plan = order_scenario(2000, run="crash")
    ids = [p.message.id for p in plan]
    with CRMSimulator(project) as crm:
        for planned in plan:
            crm.send(planned.message)
    hub = HubProcess(project.settings.data_dir, tmp_path / "hub.log")
    journal = Journal(project.settings.journal.url)
    try:
        hub.start()
        journal.connect()
        for threshold in (150, 700):
            done = wait_for_outcomes(journal, ROUTE, ids, threshold)
            assert done < len(ids), "the hub finished before it could be killed: raise the message count"
            hub.kill()
            hub.start()
        assert wait_for_outcomes(journal, ROUTE, ids, len(ids)) == len(ids)
        assert hub.stop() == 0
        outcomes = {p.message.id: journal.outcome(ROUTE, p.message.id) for p in plan}
    finally:
        hub.stop()
        journal.close()
    assert outcomes == {p.message.id: p.expected for p in plan}
    expected_ids = {p.message.id for p in plan if p.expected == "delivered"}
    iom = drain_iom(project, len(expected_ids), settle=0)
    assert set(iom.received) == expected_ids
    assert iom.malformed == []


def test_sigkill_between_the_sinks_confirm_and_the_outcomes_commit(tmp_path: Path) -> None:
    """A hub SIGKILLed after a batch's orders were confirmed in IOM's queue and before the batch's
    outcomes were journaled: the held orders were journaled as received with no outcome; after a restart
    every order ends as planned, the held ones as redeliveries, and the re-sent orders carry the same
    ids, so IOM's idempotent receiver absorbs exactly those duplicates."""
    project = load_project(tmp_path / "var")
    project.settings.data_dir.mkdir(parents=True)
    plan = order_scenario(300, run="window")
    ids = [p.message.id for p in plan]
    with CRMSimulator(project) as crm:
        for planned in plan:
            crm.send(planned.message)
    marker = tmp_path / "window.json"
    log = tmp_path / "hub.log"
    held = HubProcess(project.settings.data_dir, log, launcher=("-m", "tests.e2e.window_hub", str(marker)))
    hub = HubProcess(project.settings.data_dir, log)
    journal = Journal(project.settings.journal.url)
    try:
        window: dict[str, str] = held_hub_reached(held, marker, "reached the window")["states"]
        held.kill()
        journal.connect()
        before = {mid: [e.state for e in journal.history(mid)] for mid in window}
        hub.start()
        assert wait_for_outcomes(journal, ROUTE, ids, len(ids)) == len(ids)
        assert hub.stop() == 0
        outcomes = {p.message.id: journal.outcome(ROUTE, p.message.id) for p in plan}
        after = {mid: [e.state for e in journal.history(mid)][:2] for mid in window}
    finally:
        held.stop()
        hub.stop()
        journal.close()
    assert before == {mid: ["received"] for mid in window}
    assert outcomes == {p.message.id: p.expected for p in plan}
    assert after == {mid: ["received", "redelivered"] for mid in window}
    assert_iom_got_the_window_again(project, plan, window)


def test_sigkill_with_a_batch_in_flight_and_the_next_one_prepared(tmp_path: Path) -> None:
    """A hub SIGKILLed while one batch waits for its outcomes' commit (outputs confirmed) and the next
    batch, overlapped with it, is journaled as received and mapped: both batches are journaled as
    received only; after a restart every order ends as planned, the next batch's as redeliveries, and
    IOM gets duplicates of the held batch only (the next batch sent nothing before the one ahead ended)."""
    project = load_project(tmp_path / "var")
    project.settings.data_dir.mkdir(parents=True)
    # bad orders take the one-message path, and a batch with one of them is never in flight: good ones only
    plan = [p for p in order_scenario(400, run="overlap") if p.expected in ("delivered", "filtered")]
    ids = [p.message.id for p in plan]
    with CRMSimulator(project) as crm:
        for planned in plan:
            crm.send(planned.message)
    marker = tmp_path / "window.json"
    log = tmp_path / "hub.log"
    launcher = ("-m", "tests.e2e.window_hub", "--next-batch", str(marker))
    held = HubProcess(project.settings.data_dir, log, launcher=launcher)
    hub = HubProcess(project.settings.data_dir, log)
    journal = Journal(project.settings.journal.url)
    try:
        found = held_hub_reached(held, marker, "had a batch in flight with the next one prepared")
        window: dict[str, str] = found["states"]
        following: list[str] = found["next"]
        held.kill()
        journal.connect()
        before = {mid: [e.state for e in journal.history(mid)] for mid in [*window, *following]}
        hub.start()
        assert wait_for_outcomes(journal, ROUTE, ids, len(ids)) == len(ids)
        assert hub.stop() == 0
        outcomes = {p.message.id: journal.outcome(ROUTE, p.message.id) for p in plan}
        after = {mid: [e.state for e in journal.history(mid)][:2] for mid in following}
    finally:
        held.stop()
        hub.stop()
        journal.close()
    assert following
    assert not set(following) & set(window)
    assert before == {mid: ["received"] for mid in [*window, *following]}
    assert outcomes == {p.message.id: p.expected for p in plan}
    assert after == {mid: ["received", "redelivered"] for mid in following}
    assert_iom_got_the_window_again(project, plan, window)


def assert_iom_got_the_window_again(
    project: Project, plan: list[PlannedMessage], window: dict[str, str]
) -> None:
    """IOM (its idempotent receiver started now) got every order planned as delivered, and one duplicate
    of each order the held batch had sent (state ``delivered`` in ``window``) and no more."""
    sent_in_window = {mid for mid, state in window.items() if state == "delivered"}
    assert sent_in_window, "the held batch sent nothing: the window was not exercised"
    expected_ids = {p.message.id for p in plan if p.expected == "delivered"}
    iom = drain_iom(project, len(expected_ids), len(sent_in_window))  # a duplicate too many shows too
    assert set(iom.received) == expected_ids
    assert iom.duplicates == len(sent_in_window)
    assert iom.malformed == []


def held_hub_reached(held: HubProcess, marker: Path, what: str) -> dict[str, Any]:
    """Start ``held`` (tests.e2e.window_hub) and return the marker it writes when it holds the window."""
    held.start()
    end = time.monotonic() + 300  # a guard: the held hub starts and reaches its window (slow under load)
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert marker.exists(), f"the hub never {what}: see {held.log}"
    found: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    return found
