"""Status queries on SQLite (esb.process.engine.query): an order's process state by order number or MSISDN,
with each component's sub-order state, status and step (flow 3 of issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from esb.exceptions import ConfigError
from esb.message import Message
from esb.process.engine import ProcessStore, Runner, feed
from esb.process.engine.query import order_status
from esb.process.engine.tables import process_instances
from tests.unit import test_process_engine as _cases
from tests.unit.test_process_engine import Clock, process
from tests.unit.test_process_engine_branches import ProjectTransforms, bundle, example

# the engine's fixtures (tests/integration runs this module on PostgreSQL by replacing store_url)
store_url = _cases.store_url
store = _cases.store
clock = _cases.clock

ORDER = "PO-20260105-000123"
MSISDN = "13357100000"  # what ProjectTransforms' RIM reserves for every component


def waiting_bundle(store: ProcessStore, clock: Clock, order_id: str = ORDER) -> tuple[str, Runner]:
    """Start order_to_activation for a three-component bundle and run it until it waits for OSS."""
    runner = Runner(store, ProjectTransforms(), clock=clock)
    iid = runner.start(example("order_to_activation"), bundle(order_id))
    runner.run_due()
    return iid, runner


def test_an_order_is_found_by_its_number_with_each_component(store: ProcessStore, clock: Clock) -> None:
    """By order_id: the order's state, status, step and times, and per component its sub-order and step."""
    iid, _ = waiting_bundle(store, clock)
    (found,) = order_status(store, "order_to_activation", "order_id", ORDER, now=clock())
    shipped = example("order_to_activation").version
    assert (found.instance_id, found.process, found.version) == (iid, "order_to_activation", shipped)
    assert (found.state, found.status, found.step) == ("inProgress", "waiting", "components")
    assert found.keys == {"order_id": ORDER, "msisdn": MSISDN}
    assert found.created_at <= found.updated_at
    assert [c.id for c in found.components] == [f"{ORDER}-1", f"{ORDER}-2", f"{ORDER}-3"]
    assert {(c.state, c.status, c.step) for c in found.components} == {
        ("inProgress", "running", "activation_result")
    }
    assert all(c.step_name == "components" for c in found.components)
    assert found.components[0].item["reservation"]["reservationId"] == "RSV-1"


def test_an_msisdn_finds_the_bundle_its_component_belongs_to(store: ProcessStore, clock: Clock) -> None:
    """By msisdn (a key RIM's reply brought): the whole bundle, all its components."""
    iid, _ = waiting_bundle(store, clock)
    (found,) = order_status(store, "order_to_activation", "msisdn", MSISDN, now=clock())
    assert found.instance_id == iid
    assert len(found.components) == 3


def test_no_such_order_is_an_empty_answer(store: ProcessStore, clock: Clock) -> None:
    """A key no instance has gives no order, not an error; so does another process's name."""
    waiting_bundle(store, clock)
    assert order_status(store, "order_to_activation", "order_id", "PO-NONE") == []
    assert order_status(store, "order_cancellation", "order_id", ORDER) == []


def test_an_ended_order_has_no_current_step(store: ProcessStore, clock: Clock) -> None:
    """Once completed: state and status completed, no step, each component done with no step."""
    _, runner = waiting_bundle(store, clock)
    definition = example("order_to_activation")
    for n in (1, 2, 3):
        result = {
            "ticketId": "T",
            "action": "activate",
            "orderId": ORDER,
            "componentId": f"{ORDER}-{n}",
            "result": "COMPLETED",
        }
        feed(store, [definition], "oss.activation_results", Message(body=result), now=clock())
    runner.run_due()
    (found,) = order_status(store, "order_to_activation", "order_id", ORDER)
    assert (found.state, found.status, found.step) == ("completed", "completed", None)
    assert {(c.state, c.status, c.step) for c in found.components} == {("completed", "done", None)}


def test_several_orders_with_one_key_come_newest_first_up_to_the_limit(
    store: ProcessStore, clock: Clock
) -> None:
    """Two orders holding one MSISDN: the one updated last first; limit 1 gives only that one."""
    first, _ = waiting_bundle(store, clock, "PO-1")
    clock.advance(60)
    second, _ = waiting_bundle(store, clock, "PO-2")
    with store.engine.begin() as conn:  # updated_at is the database writer's clock: make the order explicit
        t = process_instances.c
        conn.execute(
            process_instances.update()
            .where(t.id == first)
            .values(updated_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
    found = order_status(store, "order_to_activation", "msisdn", MSISDN)
    assert [f.instance_id for f in found] == [second, first]
    assert [f.instance_id for f in order_status(store, "order_to_activation", "msisdn", MSISDN, limit=1)] == [
        second
    ]


def test_a_top_level_instance_without_branches_has_no_components(store: ProcessStore, clock: Clock) -> None:
    """A process without foreach or parallel: its step is the one it waits in, and no components."""
    runner = Runner(store, _cases.FakeResources(), clock=clock)
    definition = process(
        [{"name": "start", "set_state": "inProgress"}, {"name": "pause", "wait": {"for": "1h"}}]
    )
    iid = runner.start(definition, Message(body={"id": "o-9"}))
    runner.run_due()
    (found,) = order_status(store, "p", "order_id", "o-9", now=clock())
    assert (found.instance_id, found.step, found.components) == (iid, "pause", [])
    assert found.as_dict()["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("limit", "value", "problem"),
    [
        pytest.param(0, ORDER, "limit", id="limit-zero"),
        pytest.param(101, ORDER, "limit", id="limit-too-big"),
        pytest.param(1, "", "no value", id="empty-value"),
    ],
)
def test_a_bad_query_is_refused_with_what_was_expected(
    store: ProcessStore, limit: int, value: str, problem: str
) -> None:
    """A limit outside 1..100 or an empty value is a ConfigError naming the problem."""
    with pytest.raises(ConfigError, match=problem):
        order_status(store, "order_to_activation", "order_id", value, limit=limit)


def test_the_query_reads_while_a_writer_holds_the_database(
    store: ProcessStore, clock: Clock, store_url: str
) -> None:
    """The query takes no write lock: it answers while another connection holds SQLite's write lock."""
    if not store_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    waiting_bundle(store, clock)
    other = sa.create_engine(store_url, connect_args={"timeout": 0.1})
    with other.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            (found,) = order_status(store, "order_to_activation", "order_id", ORDER)
        finally:
            conn.exec_driver_sql("ROLLBACK")
    other.dispose()
    assert found.state == "inProgress"
