"""A cancel of an instance that completed after its point of no return is refused with the definition's
refuse_reason (what the requester is told), not the engine's "already ended"; other ended instances keep
that answer."""

from __future__ import annotations

from esb.message import Message
from esb.process.engine import ProcessStore, Runner, request_cancel
from tests.unit import test_process_engine as _cases
from tests.unit.test_process_engine import Clock, order, process

store_url = _cases.store_url
store = _cases.store
clock = _cases.clock
fakes = _cases.fakes
runner = _cases.runner

ON_CANCEL = {"point_of_no_return": "activate", "refuse_reason": "services are active"}
FLOW = [
    {"name": "start", "set_state": "inProgress"},
    {"name": "activate", "set_state": "inProgress"},
    {"name": "done", "set_state": "completed"},
]


def test_a_completed_instance_past_its_point_of_no_return_gives_the_refuse_reason(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """Completed after the point of no return: refused with refuse_reason."""
    runner.start(process(FLOW, on_cancel=ON_CANCEL), order("o-1"))
    runner.run_due()
    answer = request_cancel(store, "p", "order_id", "o-1", Message(body={}), now=clock())
    assert (answer.accepted, answer.reason) == (False, "services are active")


def test_a_completed_instance_without_a_point_of_no_return_says_it_ended(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """Completed, with no point of no return named: refused as already ended."""
    iid = runner.start(process(FLOW, on_cancel={"refuse_reason": "no"}), order("o-2"))
    runner.run_due()
    answer = request_cancel(store, "p", "order_id", "o-2", Message(body={}), now=clock())
    assert (answer.accepted, answer.reason) == (False, f"instance {iid} already ended (completed)")
