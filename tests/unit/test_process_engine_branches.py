"""The process engine's parallel and foreach steps on SQLite: branches with their own keys, items and
sub-orders, replies routed to a branch, joins all / any / count, on_partial, per-branch undo, cancel."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from esb.config.yamlpos import load_yaml
from esb.exceptions import RemoteError
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import ProcessStore, Runner, deliver_reply, feed, request_cancel
from esb.process.engine.tables import process_branches, process_keys
from esb.project import Project
from tests.unit import test_process_engine as _cases
from tests.unit.test_process_engine import Clock, FakeResources, Mapping, instance, order, process

# the engine's fixtures (tests/integration runs this module on PostgreSQL by replacing store_url)
store_url = _cases.store_url
store = _cases.store
clock = _cases.clock
fakes = _cases.fakes
runner = _cases.runner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "processes"
RESERVE = {
    "name": "reserve",
    "call": {"endpoint": "rim.reserve", "into": "reservation"},
    "compensate": "release",
}
UNDOS = [{"name": "release", "call": {"endpoint": "rim.release", "retry": {"max": 1, "initial": "1s"}}}]
THREE = {"id": "o-1", "components": [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]}


def branches(store: ProcessStore, instance_id: str) -> dict[str, tuple[str, str | None]]:
    """path -> (status, sub-order state) of the instance's branches."""
    b = process_branches.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(b.path, b.status, b.state).where(b.instance_id == instance_id))
        return {r.path: (r.status, r.state) for r in rows}


def foreach(steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A foreach over data.components keyed by item.id."""
    return {
        "name": "components",
        "foreach": {"items": "data.components", "key": "item.id", "steps": steps, **spec},
    }


def test_foreach_runs_each_item_with_its_own_key_item_and_sub_order(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """Each item's call has the key <id>:components[<key>].reserve; into fills the item; sub-orders move."""
    fakes.endpoint("rim.reserve").reply = lambda m: {"msisdn": f"1330755{m.body['item']['id']}"}
    steps = [
        {"name": "accept", "set_state": "acknowledged"},
        {"name": "begin", "set_state": "inProgress"},
        RESERVE,
        {"name": "done", "set_state": "completed"},
    ]
    definition = process(
        [{"name": "start", "set_state": "inProgress"}, foreach(steps, machine="service_order")],
        compensations=UNDOS,
        business_keys={"order_id": "data.id", "msisdn": "data.components[].reservation.msisdn | [-1]"},
    )
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    row = instance(store, iid)
    assert row.status == "completed"
    assert fakes.calls("rim.reserve") == [f"{iid}:components[c{n}].reserve" for n in (1, 2, 3)]
    assert [c["reservation"]["msisdn"] for c in row.data["components"]] == [
        "1330755c1",
        "1330755c2",
        "1330755c3",
    ]
    assert set(branches(store, iid).values()) == {("done", "completed")}
    with store.engine.connect() as conn:
        keys = {(r.name, r.value) for r in conn.execute(sa.select(process_keys.c.name, process_keys.c.value))}
    assert ("msisdn", "1330755c3") in keys  # the last item's reply, written back into data.components


def test_a_failed_item_undoes_its_own_steps_and_on_partial_complete_ends_partial(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """One item's failure undoes that item only; the others go on and the order ends partial."""
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]  # the first item to activate
    steps = [RESERVE, {"name": "activate", "call": {"endpoint": "oss.enable"}}]
    definition = process(
        [
            {"name": "start", "set_state": "inProgress"},
            foreach(steps, on_partial="complete"),
            {"name": "finish", "set_state": "completed"},
        ],
        compensations=UNDOS,
    )
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("partial", "partial")
    assert fakes.calls("rim.release") == [f"{iid}:components[c1].reserve:compensate"]
    assert [status for status, _ in branches(store, iid).values()].count("failed") == 1


def test_a_partial_join_that_fails_undoes_every_done_step(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """on_partial fail: the failed item is undone, then the instance fails and undoes the other items too."""
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]
    steps = [RESERVE, {"name": "activate", "call": {"endpoint": "oss.enable"}}]
    iid = runner.start(process([foreach(steps)], compensations=UNDOS), Message(body=THREE))
    runner.run_due()
    assert instance(store, iid).status == "failed"
    assert sorted(fakes.calls("rim.release")) == sorted(
        f"{iid}:components[c{n}].reserve:compensate" for n in (1, 2, 3)
    )


def test_replies_reach_the_branch_named_by_correlate_item(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An await in a foreach takes only the reply whose correlate.item is its item's key."""
    wait_result = {
        "name": "result",
        "await": {
            "from": "oss.results",
            "correlate": {"key": "order_id", "match": "body.orderId", "item": "body.componentId"},
            "deadline": "30m",
            "into": "activation",
        },
    }
    iid = runner.start(process([foreach([wait_result])]), Message(body=THREE))
    runner.run_due()
    for n in (3, 1):
        reply = Message(body={"orderId": "o-1", "componentId": f"c{n}", "n": n}, id=f"r-{n}")
        assert deliver_reply(store, "p", "o-1", "oss.results", reply, now=clock()) == "waiting"
    runner.run_due()
    assert branches(store, iid)["components[c3]"][0] == "done"
    assert branches(store, iid)["components[c2]"][0] == "running"
    assert instance(store, iid).data["components"][0]["activation"]["n"] == 1
    feed(
        store,
        [instance_definition(store, iid)],
        "oss.results",
        Message(body={"orderId": "o-1", "componentId": "c2"}),
        now=clock(),
    )
    runner.run_due()
    assert instance(store, iid).status == "completed"


def instance_definition(store: ProcessStore, instance_id: str) -> Process:
    """The definition the instance pinned."""
    with store.engine.connect() as conn:
        return store.definition(conn, instance(store, instance_id).definition_hash)


def test_parallel_join_any_cancels_and_undoes_the_other_branches(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """join any: the first branch to end well wins; the others are cancelled and their done steps undone."""
    slow = [RESERVE, {"name": "pause", "wait": {"for": "1h"}}]
    fast = [{"name": "quick", "call": {"endpoint": "x.quick"}}]
    step = {
        "name": "race",
        "parallel": {
            "join": "any",
            "branches": [{"name": "slow", "steps": slow}, {"name": "fast", "steps": fast}],
        },
    }
    iid = runner.start(process([step], compensations=UNDOS), order())
    runner.run_due()
    assert instance(store, iid).status == "completed"
    assert branches(store, iid) == {"race.slow": ("cancelled", None), "race.fast": ("done", None)}
    assert fakes.calls("rim.release") == [f"{iid}:race.slow.reserve:compensate"]


def test_join_count_fails_once_it_can_no_longer_be_met(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """join {count: 3} of three with one failed cannot be met: the instance fails (on_partial fail)."""
    fakes.endpoint("rim.reserve").failures = [RemoteError("no numbers")]
    iid = runner.start(
        process([foreach([RESERVE], join={"count": 3})], compensations=UNDOS), Message(body=THREE)
    )
    runner.run_due()
    row = instance(store, iid)
    assert row.status == "failed"
    assert "ended well; the join needs 3" in row.error


def test_join_count_succeeds_once_met_and_cancels_the_rest(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """join {count: 2}: once two items ended well the third is cancelled, its done steps undone."""
    steps = [RESERVE, {"name": "pause", "wait": {"for": "1h"}}]
    fakes.endpoint("rim.reserve").reply = lambda m: {"n": m.body["item"]["id"]}
    definition = process(
        [
            foreach(
                [{"name": "gate", "goto": {"step": "end", "when": "item.id != 'c3'"}}, *steps],
                join={"count": 2},
            )
        ],
        compensations=UNDOS,
    )
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    assert instance(store, iid).status == "completed"
    assert branches(store, iid)["components[c3]"] == ("cancelled", None)
    assert fakes.calls("rim.release") == [f"{iid}:components[c3].reserve:compensate"]


def test_an_empty_foreach_succeeds(store: ProcessStore, runner: Runner) -> None:
    """A foreach over no items is done at once."""
    iid = runner.start(
        process([foreach([RESERVE])], compensations=UNDOS), Message(body={"id": "o", "components": []})
    )
    runner.run_due()
    assert instance(store, iid).status == "completed"


def test_items_that_are_not_a_list_fail_with_why(store: ProcessStore, runner: Runner) -> None:
    """foreach.items giving something other than a list fails the instance and says what came."""
    iid = runner.start(
        process([foreach([RESERVE])], compensations=UNDOS), Message(body={"id": "o", "components": "x"})
    )
    runner.run_due()
    assert "expected a list" in instance(store, iid).error


def test_cancel_during_branches_undoes_every_branch(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A cancel while items wait undoes each item's done steps and ends cancelled, its branches cancelled."""
    steps = [RESERVE, {"name": "pause", "wait": {"for": "1h"}}]
    definition = process(
        [{"name": "start", "set_state": "inProgress"}, foreach(steps)],
        compensations=UNDOS,
        on_cancel={"point_of_no_return": "components"},
    )
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    assert request_cancel(store, "p", "order_id", "o-1", Message(body={}), now=clock()).accepted
    runner.run_due()
    assert instance(store, iid).status == "cancelled"
    assert len(fakes.calls("rim.release")) == 3
    assert {status for status, _ in branches(store, iid).values()} == {"cancelled"}


class ProjectTransforms(FakeResources):
    """In-memory endpoints, and the transforms of this repository's project (the process mappings)."""

    def __init__(self) -> None:
        super().__init__()
        self.project = Project.load(ROOT, environ={})
        self.one_way.update(
            {"iom.order_status", "oss.activate_service", "crm.order_status", "channel.rest_cancels"}
        )
        numbers = itertools.count(1)
        self.endpoint("rim.reserve_resources").reply = lambda _m: {
            "reservationId": f"RSV-{next(numbers)}",
            "state": "PRE_RESERVED",
            "expiresAt": "2026-12-06T10:00:00+08:00",
            "msisdn": "13357100000",
        }

    def transform(self, name: str) -> Any:
        """The project's transform ``name``."""
        return self.project.transforms.get(name)


def example(name: str) -> Process:
    """The shipped process ``name`` of processes/."""
    return Process.model_validate(load_yaml(EXAMPLES / f"{name}.yaml").data)


def bundle(order_id: str = "PO-20260105-000123") -> Message:
    """The canonical 好E家 bundle order of the model's examples (three components)."""
    body = json.loads(
        (ROOT / "canonical_model/examples/product_order.v1/valid/home_bundle_new.json").read_text()
    )
    return Message(body={**body, "id": order_id}, schema="product_order.v1")


def test_the_order_to_activation_example_runs_with_the_project_mappings(
    store: ProcessStore, clock: Clock
) -> None:
    """order_to_activation.yaml with the project's transforms: reserve, activate, results, bill, CRM; the
    IPTV component, which holds nothing in RIM and is no Billing subscriber, skips those steps."""
    systems = ProjectTransforms()
    runner = Runner(store, systems, clock=clock)
    definition = example("order_to_activation")
    iid = runner.start(definition, bundle())
    runner.run_due()
    data = instance(store, iid).data
    reserved = [c.get("reservation", {}).get("reservationId") for c in data["components"]]
    assert reserved == ["RSV-1", "RSV-2", None]  # the IPTV component holds nothing in RIM: skipped
    for component in data["components"]:
        result = {
            "ticketId": "T",
            "action": "activate",
            "orderId": data["id"],
            "componentId": component["id"],
        }
        assert feed(
            store,
            [definition],
            "oss.activation_results",
            Message(body={**result, "result": "COMPLETED"}),
            now=clock(),
        ) == {"order_to_activation": "waiting"}
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "completed")
    assert [b["reservationId"] for name, _, b in systems.log if name == "rim.confirm_reservation"] == [
        "RSV-1",
        "RSV-2",
    ]
    activated = [name for name, _, _ in systems.log if name == "oss.activate_service"]
    subscribers = [name for name, _, _ in systems.log if name == "billing.create_subscriber"]
    assert (len(activated), len(subscribers)) == (3, 2)  # IPTV is activated, not billed as a subscriber
    ((_, key, update),) = [entry for entry in systems.log if entry[0] == "crm.order_status"]
    assert key == f"{iid}:tell_crm"
    assert b"SiebelMessage" in update


def canonical_cancel(systems: ProjectTransforms, *steps: str, body: Any) -> Message:
    """A cancel request made canonical by the project's route transforms ``steps`` (as a route would)."""
    message = Message(body=body)
    for name in steps:
        message = systems.transform(name).apply(message)
    return message


def test_the_order_cancellation_example_cancels_an_order_in_flight(store: ProcessStore, clock: Clock) -> None:
    """order_cancellation.yaml on the CRM's cancel request undoes the waiting order and answers the CRM."""
    systems = ProjectTransforms()
    runner = Runner(store, systems, clock=clock)
    order_id = runner.start(example("order_to_activation"), bundle("SO20261125000123"))
    runner.run_due()
    request = (ROOT / "transforms/crm/samples/order_cancel.xml").read_bytes()
    cancel = canonical_cancel(systems, "crm/siebel_cancel_to_canonical", body=request)
    cancel_id = runner.start(example("order_cancellation"), cancel)
    runner.run_due()
    cancel_row = instance(store, cancel_id)
    assert (cancel_row.status, cancel_row.state) == ("completed", "done")
    assert cancel_row.data["outcome"] == {"accepted": True, "reason": None}
    placed = instance(store, order_id)
    assert (placed.status, placed.state) == ("cancelled", "cancelled")
    released = [body for name, _, body in systems.log if name == "rim.release_reservation"]
    assert released == [{"reservationId": f"RSV-{n}"} for n in (2, 1)]  # IPTV reserved nothing
    assert len(systems.calls("oss.deactivate_service")) == 3
    told = {key: body for name, key, body in systems.log if name == "crm.order_status"}
    assert set(told) == {f"{cancel_id}:answer_crm", f"{order_id}:after_undo.tell_crm_undone"}
    assert b"Cancelled" in told[f"{cancel_id}:answer_crm"]  # the cancel's answer
    assert b"Cancelled" in told[f"{order_id}:after_undo.tell_crm_undone"]  # the order's own, once undone
    assert systems.calls("channel.rest_cancels") == []  # the CRM's cancel is answered to the CRM only


def test_a_tmf622_cancel_is_answered_on_its_resource(store: ProcessStore, clock: Clock) -> None:
    """A TMF622 cancel's resource moves inProgress then done; the CRM hears only its order's own status."""
    systems = ProjectTransforms()
    runner = Runner(store, systems, clock=clock)
    order_id = runner.start(example("order_to_activation"), bundle("QD20260000000042"))
    runner.run_due()
    request = (ROOT / "transforms/channel/samples/tmf_cancel.json").read_bytes()
    cancel = canonical_cancel(systems, "channel/tmf_cancel_in", "channel/cancel_via_api", body=request)
    cancel_id = runner.start(example("order_cancellation"), cancel)
    runner.run_due()
    assert (instance(store, order_id).status, instance(store, cancel_id).state) == ("cancelled", "done")
    changes = [body for name, _, body in systems.log if name == "channel.rest_cancels"]
    assert changes == [
        {"id": "CXL-QD20260000000042", "@type": "CancelProductOrder", "state": "inProgress"},
        {"id": "CXL-QD20260000000042", "@type": "CancelProductOrder", "state": "done"},
    ]
    assert systems.calls("crm.order_status") == [f"{order_id}:after_undo.tell_crm_undone"]


def test_a_refused_tmf622_cancel_ends_terminated_with_the_reason(store: ProcessStore, clock: Clock) -> None:
    """A cancel the order's instance refuses (here: no such order) ends terminatedWithError with why."""
    systems = ProjectTransforms()
    runner = Runner(store, systems, clock=clock)
    request = (ROOT / "transforms/channel/samples/tmf_cancel.json").read_bytes()
    cancel = canonical_cancel(systems, "channel/tmf_cancel_in", "channel/cancel_via_api", body=request)
    cancel_id = runner.start(example("order_cancellation"), cancel)
    runner.run_due()
    row = instance(store, cancel_id)
    assert (row.status, row.state) == ("completed", "terminatedWithError")
    last = [body for name, _, body in systems.log if name == "channel.rest_cancels"][-1]
    assert last["state"] == "terminatedWithError"
    assert last["stateChangeReason"] == row.data["outcome"]["reason"]
    assert "QD20260000000042" in last["stateChangeReason"]


def test_an_undo_in_a_branch_reads_its_item_and_its_own_key(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """A branch's undo request is built from the view with that branch's item and the :compensate key."""
    fakes.endpoint("rim.reserve").reply = lambda m: {"reservationId": f"R-{m.body['item']['id']}"}
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]
    fakes.transforms["t/release"] = Mapping(lambda view: {"id": view["item"]["reservation"]["reservationId"]})
    undos = [{"name": "release", "call": {"endpoint": "rim.release", "request": "t/release"}}]
    steps = [RESERVE, {"name": "activate", "call": {"endpoint": "oss.enable"}}]
    definition = process([foreach(steps, on_partial="complete")], compensations=undos)
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    released = [(key, body) for name, key, body in fakes.log if name == "rim.release"]
    assert released == [(f"{iid}:components[c1].reserve:compensate", {"id": "R-c1"})]


def test_a_failed_item_that_is_fatal_fails_the_join_whatever_on_partial_says(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """foreach.fatal: a failed all-or-nothing member fails the order (every item undone) although
    on_partial is complete; a failed member that is not fatal leaves the order partial."""
    steps = [RESERVE, {"name": "activate", "call": {"endpoint": "oss.enable"}}]
    definition = process(
        [
            {"name": "start", "set_state": "inProgress"},
            foreach(steps, on_partial="complete", fatal="item.policy == 'all_or_nothing'"),
            {"name": "finish", "set_state": "completed"},
        ],
        compensations=UNDOS,
    )
    strict = {"id": "o-1", "components": [{"id": "c1", "policy": "all_or_nothing"}, {"id": "c2"}]}
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]  # c1's activation
    iid = runner.start(definition, Message(body=strict))
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("failed", "failed")
    assert sorted(fakes.calls("rim.release")) == [
        f"{iid}:components[c1].reserve:compensate",
        f"{iid}:components[c2].reserve:compensate",
    ]
    loose = {"id": "o-2", "components": [{"id": "c1", "policy": "partial_allowed"}, {"id": "c2"}]}
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]
    other = runner.start(definition, Message(body=loose))
    runner.run_due()
    assert (instance(store, other).status, instance(store, other).state) == ("partial", "partial")


def test_after_undo_sends_run_once_every_undo_is_done_with_the_end_state(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A failed order is undone, then told (after_undo) with state failed: a failed send is retried with
    the same key, then the instance ends failed; a completed order sends nothing."""
    fakes.one_way.add("crm.status")
    fakes.endpoint("oss.enable").failures = [RemoteError("no port")]
    fakes.endpoint("crm.status").failures = [RemoteError("queue away")]
    tell = {"name": "tell_crm", "send": {"endpoint": "crm.status", "retry": {"max": 2, "initial": "1s"}}}
    start = {"name": "start", "set_state": "inProgress"}
    definition = process(
        [start, RESERVE, {"name": "activate", "call": {"endpoint": "oss.enable"}}],
        compensations=UNDOS,
        after_undo=[tell],
    )
    iid = runner.start(definition, order("o-1"))
    runner.run_due()
    assert instance(store, iid).status == "compensating"  # undone; the send failed once and waits
    clock.advance(5)
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("failed", "failed")
    assert fakes.calls("crm.status") == [f"{iid}:after_undo.tell_crm"] * 2
    order_of = [name for name, _, _ in fakes.log if name in ("rim.release", "crm.status")]
    assert order_of == ["rim.release", "crm.status", "crm.status"]
    sent = [body for name, _, body in fakes.log if name == "crm.status"][-1]
    assert sent["state"] == "failed"
    assert sent["data"]["id"] == "o-1"
    fine = runner.start(process([RESERVE], compensations=UNDOS, after_undo=[tell]), order("o-2"))
    runner.run_due()
    assert instance(store, fine).status == "completed"
    assert fakes.calls("crm.status") == [f"{iid}:after_undo.tell_crm"] * 2


def test_a_business_key_giving_a_list_records_every_value(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """msisdn over every component: each component's number finds the order (a bundle's second mobile
    line too); the request view's keys carry the first."""
    fakes.endpoint("rim.reserve").reply = lambda m: {"msisdn": f"1330755{m.body['item']['id']}"}
    definition = process(
        [foreach([RESERVE]), {"name": "tell", "call": {"endpoint": "iom.tell"}}],
        compensations=UNDOS,
        business_keys={"order_id": "data.id", "msisdn": "data.components[].reservation.msisdn"},
    )
    iid = runner.start(definition, Message(body=THREE))
    runner.run_due()
    assert instance(store, iid).status == "completed"
    k = process_keys.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(k.value).where(k.name == "msisdn", k.instance_id == iid)).all()
    assert sorted(r.value for r in rows) == ["1330755c1", "1330755c2", "1330755c3"]
    [(_, _, told)] = [entry for entry in fakes.log if entry[0] == "iom.tell"]
    assert told["keys"] == {"order_id": "o-1", "msisdn": "1330755c1"}
