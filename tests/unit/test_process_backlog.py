"""Timers held while the reply endpoints are not read back: an answer waiting on the queue beats a deadline
that came due while the hub was down, a drained hub fires its timers on time, and the hold is bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from esb.process.engine import ProcessStore, Runner, deliver_reply
from esb.process.engine.backlog import Backlog, reply_endpoints
from esb.process.engine.inbox import wake
from tests.unit.test_process_engine import (
    FLOW,
    RESULT,
    UNDOS,
    Clock,
    FakeResources,
    instance,
    order,
    process,
    reply,
    steps_of,
)
from tests.unit.test_process_engine import clock as clock
from tests.unit.test_process_engine import fakes as fakes
from tests.unit.test_process_engine import store as store
from tests.unit.test_process_engine import store_url as store_url

DEADLINE = 30 * 60


class Ticks:
    """A monotonic clock the test moves by hand (the backlog's grace)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    """The backlog's clock."""
    return Ticks()


@pytest.fixture
def backlog(ticks: Ticks) -> Backlog:
    """A backlog with a 60 s grace whose reply endpoint oss.results is behind (the hub just started)."""
    found = Backlog(60.0, clock=ticks)
    found.behind("oss.results")
    return found


@pytest.fixture
def held_runner(store: ProcessStore, fakes: FakeResources, clock: Clock, backlog: Backlog) -> Runner:
    """A runner of a hub whose reply endpoint is not read back yet."""
    return Runner(store, fakes, owner="r1", lease=60, clock=clock, backlog=backlog)


def overdue(runner: Runner, clock: Clock) -> str:
    """Start an instance, run it to its await, and move the clock past the deadline (the hub was down)."""
    iid = runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    clock.advance(DEADLINE + 5)
    return iid


def test_reply_endpoints_are_the_awaits_sources() -> None:
    """A definition's reply endpoints are the from of each of its awaits."""
    assert reply_endpoints(process(FLOW, compensations=UNDOS)) == {"oss.results"}


def test_an_overdue_deadline_is_held_and_the_answer_on_the_queue_wins(
    store: ProcessStore, held_runner: Runner, clock: Clock, backlog: Backlog
) -> None:
    """A deadline that passed while the hub was down does not fire before the reply endpoint is read back;
    the answer read from it then completes the step."""
    iid = overdue(held_runner, clock)
    assert held_runner.run_due() == 1
    row = instance(store, iid)
    assert (row.status, row.wake_at) == ("running", clock() + timedelta(seconds=60))
    assert ("result", "timed_out") not in steps_of(store, iid)
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())  # the reader takes the answer
    assert backlog.drained("oss.results") == [iid]
    held_runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.data["activation"]["result"]) == ("completed", "COMPLETED")


def test_a_held_deadline_fires_once_the_endpoint_drained_without_an_answer(
    store: ProcessStore, held_runner: Runner, fakes: FakeResources, clock: Clock, backlog: Backlog
) -> None:
    """The drain wakes the held instance at once; with no answer read, its deadline fires then."""
    iid = overdue(held_runner, clock)
    held_runner.run_due()
    assert held_runner.run_due() == 0
    wake(store, backlog.drained("oss.results"), clock())
    assert held_runner.run_due() == 1
    assert instance(store, iid).status == "failed"
    assert ("result", "timed_out") in steps_of(store, iid)


def test_the_hold_ends_with_the_grace(
    store: ProcessStore, held_runner: Runner, clock: Clock, ticks: Ticks
) -> None:
    """An endpoint never read back holds a due timer for the grace only, then the timer fires."""
    iid = overdue(held_runner, clock)
    held_runner.run_due()
    ticks.now += 60
    clock.advance(60)
    held_runner.run_due()
    assert instance(store, iid).status == "failed"


def test_a_drained_hub_fires_a_deadline_on_time(
    store: ProcessStore, held_runner: Runner, clock: Clock, backlog: Backlog
) -> None:
    """Once the reply endpoint was read back, a deadline fires when it comes due: no grace is added."""
    backlog.drained("oss.results")
    iid = held_runner.start(process(FLOW, compensations=UNDOS), order())
    held_runner.run_due()
    clock.advance(DEADLINE)
    held_runner.run_due()
    assert instance(store, iid).status == "failed"


def test_a_wait_that_came_due_is_held_too(
    store: ProcessStore, held_runner: Runner, clock: Clock, backlog: Backlog
) -> None:
    """A wait's due time that passed while the replies were unread is held like a deadline, then ends."""
    flow = [{"name": "start", "set_state": "inProgress"}, {"name": "pause", "wait": {"for": "1m"}}, RESULT]
    iid = held_runner.start(process(flow), order())
    held_runner.run_due()
    clock.advance(61)
    held_runner.run_due()
    assert ("pause", "done") not in steps_of(store, iid)
    wake(store, backlog.drained("oss.results"), clock())
    held_runner.run_due()
    assert ("pause", "done") in steps_of(store, iid)


def test_an_instance_held_after_the_drain_wakes_itself(
    store: ProcessStore, held_runner: Runner, clock: Clock, backlog: Backlog
) -> None:
    """A hold written after the endpoint drained (the drain's wake came first) makes the instance due now."""
    iid = overdue(held_runner, clock)
    held_runner.run_due()
    backlog.drained("oss.results")
    held_runner.hold(iid, process(FLOW, compensations=UNDOS))
    assert instance(store, iid).wake_at == clock()


def test_an_endpoint_lost_again_holds_from_then_on(ticks: Ticks) -> None:
    """An endpoint drained and lost again is behind with a new grace; a second mark keeps the first time."""
    backlog = Backlog(60.0, clock=ticks)
    assert backlog.holds({"a"}) is None
    backlog.behind("a")
    ticks.now += 50
    backlog.behind("a")
    assert backlog.holds({"a", "b"}) == 10
    assert backlog.hold("i-1", {"a"})
    assert backlog.drained("a") == ["i-1"]
    assert backlog.drained("a") == []
    assert backlog.holds({"a"}) is None
    assert not backlog.hold("i-2", {"a"})
