"""The route worker: delivery, filtering, retries, dead letters, idempotence, aggregation, settling."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import MappingError, RemoteError, TransportError
from esb.journal import Journal
from esb.message import Message
from esb.runtime.worker import RouteWorker
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project

ENDPOINTS = ["a.in", "b.out", "c.out", "dlq.r"]
FAST_RETRY = {"redeliver": {"max": 2, "initial": "1ms", "max_delay": "5ms"}, "dead_letter": "dlq.r"}


def route(**extra: Any) -> dict[str, Any]:
    """Return a route from a.in to b.out with fast retries, updated with ``extra``."""
    base: dict[str, Any] = {"id": "r", "from": "a.in", "to": "b.out", "on_error": FAST_RETRY}
    base.update(extra)
    return base


def run_until_settled(project: Any, count: int, timeout: float = 10.0) -> Journal:
    """Run the route's worker until ``count`` deliveries of a.in were settled; return the open journal."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.start()
    box = BROKER.box("a.in")
    deadline = time.monotonic() + timeout
    while len(box.acked) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(5)
    return journal


def test_message_is_transformed_delivered_and_acked(tmp_path: Path) -> None:
    """A message goes through its transform to the sink, is acked, and the journal says delivered."""
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/up"}])],
        ENDPOINTS,
        {"t/up": lambda b: {"v": b.decode().upper()}},
    )
    BROKER.feed("a.in", Message(body=b"hello", id="m1"))
    journal = run_until_settled(project, 1)
    assert [m.body for m in BROKER.written("b.out")] == [{"v": "HELLO"}]
    assert BROKER.box("a.in").acked == ["m1"]
    assert journal.outcome("r", "m1") == "delivered"


def test_filter_drops_and_journals_filtered(tmp_path: Path) -> None:
    """A message failing the filter reaches no sink, is acked, and ends filtered."""
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/j"}, {"filter": "body.keep"}])],
        ENDPOINTS,
        {"t/j": lambda b: {"keep": b == b"yes"}},
    )
    BROKER.feed("a.in", Message(body=b"no", id="m1"), Message(body=b"yes", id="m2"))
    journal = run_until_settled(project, 2)
    assert [m.id for m in BROKER.written("b.out")] == ["m2"]
    assert journal.outcome("r", "m1") == "filtered"


def test_permanent_error_goes_to_dead_letter_at_once(tmp_path: Path) -> None:
    """A MappingError is not retried: the original bytes reach the dead-letter endpoint with the error."""

    def broken(body: Any) -> Any:
        raise MappingError("t/bad", "id", "/x/@id", "missing")

    project = make_project(tmp_path, [route(steps=[{"transform": "t/bad"}])], ENDPOINTS, {"t/bad": broken})
    BROKER.feed("a.in", Message(body=b"<x/>", id="m1"))
    journal = run_until_settled(project, 1)
    [dead] = BROKER.written("dlq.r")
    assert dead.body == b"<x/>"
    assert dead.headers["esb-error-reason"] == "mapping-error"
    assert "/x/@id" in dead.headers["esb-error"]
    assert journal.outcome("r", "m1") == "dead_lettered"
    assert [e.state for e in journal.history("m1")].count("redelivered") == 0


def test_transient_error_is_retried_then_delivered(tmp_path: Path) -> None:
    """A sink that fails twice with a TransportError gets the message on the third attempt."""
    project = make_project(
        tmp_path, [route(on_error={**FAST_RETRY, "redeliver": {"max": 3, "initial": "1ms"}})], ENDPOINTS
    )
    BROKER.fail_next("b.out", TransportError("down"), TransportError("still down"))
    BROKER.feed("a.in", Message(body=b"x", id="m1"))
    journal = run_until_settled(project, 1)
    assert [m.id for m in BROKER.written("b.out")] == ["m1"]
    assert [e.state for e in journal.history("m1")].count("redelivered") == 2
    assert journal.outcome("r", "m1") == "delivered"


def test_retries_exhausted_dead_letters(tmp_path: Path) -> None:
    """After max redeliveries a transient failure is dead-lettered, and the worker goes on."""
    project = make_project(tmp_path, [route()], ENDPOINTS)
    BROKER.fail_next("b.out", *[TransportError("down")] * 3)
    BROKER.feed("a.in", Message(body=b"x", id="m1"), Message(body=b"y", id="m2"))
    journal = run_until_settled(project, 2)
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]
    assert [m.id for m in BROKER.written("b.out")] == ["m2"]
    assert journal.outcome("r", "m1") == "dead_lettered"


def test_non_retryable_remote_error_dead_letters_at_once(tmp_path: Path) -> None:
    """A RemoteError marked not retryable (e.g. invalid account) is dead-lettered without retry."""
    project = make_project(tmp_path, [route()], ENDPOINTS)
    BROKER.fail_next("b.out", RemoteError("invalid account", code="E42", retryable=False))
    BROKER.feed("a.in", Message(body=b"x", id="m1"))
    run_until_settled(project, 1)
    [dead] = BROKER.written("dlq.r")
    assert dead.headers["esb-error-class"] == "RemoteError"
    assert BROKER.written("b.out") == []


def test_redelivered_message_is_not_delivered_twice(tmp_path: Path) -> None:
    """The same message id arriving again after delivery is acked without a second write."""
    project = make_project(tmp_path, [route()], ENDPOINTS)
    BROKER.feed("a.in", Message(body=b"x", id="m1"), Message(body=b"x", id="m1"))
    run_until_settled(project, 2)
    assert [m.id for m in BROKER.written("b.out")] == ["m1"]
    assert BROKER.box("a.in").acked == ["m1", "m1"]


def test_fan_out_retry_skips_endpoint_already_delivered(tmp_path: Path) -> None:
    """With two sinks, a retry after the second failed does not write to the first again."""
    project = make_project(tmp_path, [route(to=["b.out", "c.out"])], ENDPOINTS)
    BROKER.fail_next("c.out", TransportError("down"))
    BROKER.feed("a.in", Message(body=b"x", id="m1"))
    run_until_settled(project, 1)
    assert [m.id for m in BROKER.written("b.out")] == ["m1"]
    assert [m.id for m in BROKER.written("c.out")] == ["m1"]


def test_poison_message_is_dead_lettered_without_processing(tmp_path: Path) -> None:
    """A message handed out more often than limits.max_deliveries is dead-lettered as poison."""
    calls: list[Any] = []
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/spy"}])],
        ENDPOINTS,
        {"t/spy": lambda b: calls.append(b) or b},
    )
    BROKER.feed("a.in", Message(body=b"x", id="m1"), delivery_count=11)
    run_until_settled(project, 1)
    assert calls == []
    assert BROKER.written("dlq.r")[0].headers["esb-error-reason"] == "poison-message"


def test_oversized_body_is_dead_lettered(tmp_path: Path) -> None:
    """A body over limits.max_body_bytes is dead-lettered as body-too-large, never processed."""
    project = make_project(tmp_path, [route()], ENDPOINTS)
    project.settings.limits.max_body_bytes = 10
    BROKER.feed("a.in", Message(body=b"x" * 11, id="m1"))
    run_until_settled(project, 1)
    assert BROKER.written("dlq.r")[0].headers["esb-error-reason"] == "body-too-large"
    assert BROKER.written("b.out") == []


def test_split_parts_get_deterministic_ids(tmp_path: Path) -> None:
    """Split parts are delivered with ids <parent>:<index>, so a redelivered parent repeats them."""
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/j"}, {"split": "body.items"}])],
        ENDPOINTS,
        {"t/j": lambda b: {"items": [1, 2, 3]}},
    )
    BROKER.feed("a.in", Message(body=b"x", id="p"))
    run_until_settled(project, 1)
    assert [(m.id, m.body) for m in BROKER.written("b.out")] == [("p:0", 1), ("p:1", 2), ("p:2", 3)]


def test_choice_runs_first_matching_branch(tmp_path: Path) -> None:
    """choice runs the first branch whose when is truthy, else otherwise."""
    steps = [
        {"transform": "t/j"},
        {
            "choice": [
                {"when": "body.c == 'online'", "steps": [{"set_header": {"priority": "high"}}]},
                {"otherwise": [{"set_header": {"priority": "normal"}}]},
            ]
        },
    ]
    project = make_project(tmp_path, [route(steps=steps)], ENDPOINTS, {"t/j": lambda b: {"c": b.decode()}})
    BROKER.feed("a.in", Message(body=b"online", id="m1"), Message(body=b"shop", id="m2"))
    run_until_settled(project, 2)
    assert [m.headers["priority"] for m in BROKER.written("b.out")] == ["high", "normal"]


def test_aggregate_releases_by_size_and_acks_parts_after_delivery(tmp_path: Path) -> None:
    """Three messages with one key become one aggregate; the parts are acked only after it is delivered."""
    steps = [{"transform": "t/j"}, {"aggregate": {"key": "body.k", "size": 3, "timeout": "1h"}}]
    project = make_project(
        tmp_path, [route(steps=steps)], ENDPOINTS, {"t/j": lambda b: {"k": "A", "v": b.decode()}}
    )
    BROKER.feed("a.in", *[Message(body=str(i).encode(), id=f"m{i}") for i in range(3)])
    journal = run_until_settled(project, 3)
    [aggregate] = BROKER.written("b.out")
    assert aggregate.body["count"] == 3
    assert [item["v"] for item in aggregate.body["items"]] == ["0", "1", "2"]
    assert journal.outcome("r", "m0") == "delivered"


def test_recipient_list_refuses_endpoint_not_allowed(tmp_path: Path) -> None:
    """A recipient list naming an endpoint outside `allowed` dead-letters the message."""
    to = {"recipients": "headers.to", "allowed": ["b.out"]}
    project = make_project(tmp_path, [route(to=to)], ENDPOINTS)
    BROKER.feed(
        "a.in",
        Message(body=b"x", id="m1", headers={"to": ["c.out"]}),
        Message(body=b"y", id="m2", headers={"to": "b.out"}),
    )
    run_until_settled(project, 2)
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]
    assert [m.id for m in BROKER.written("b.out")] == ["m2"]


@pytest.mark.parametrize("bad", [pytest.param(ValueError("bug"), id="unexpected-exception")])
def test_unexpected_exception_is_retried_then_dead_lettered(tmp_path: Path, bad: Exception) -> None:
    """A bug in a transform does not crash the worker: retried, then dead-lettered, next message goes on."""

    def buggy(body: Any) -> Any:
        if body == b"bad":
            raise bad
        return body

    project = make_project(tmp_path, [route(steps=[{"transform": "t/b"}])], ENDPOINTS, {"t/b": buggy})
    BROKER.feed("a.in", Message(body=b"bad", id="m1"), Message(body=b"good", id="m2"))
    run_until_settled(project, 2)
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]
    assert [m.id for m in BROKER.written("b.out")] == ["m2"]


def test_transform_warnings_are_journaled_and_kept_off_the_wire(tmp_path: Path) -> None:
    """Warnings a transform puts in esb-warnings are journaled with the message and not sent on."""

    class Sloppy:
        def apply(self, message: Message) -> Message:
            return message.replace(
                headers={**message.headers, "esb-warnings": ["state 'InProgress' read as 'inProgress'"]}
            )

    project = make_project(
        tmp_path, [route(steps=[{"transform": "t/sloppy"}])], ENDPOINTS, {"t/sloppy": lambda b: b}
    )
    project.transforms.transforms["t/sloppy"] = Sloppy()
    BROKER.feed("a.in", Message(body=b"x", id="m1"))
    journal = run_until_settled(project, 1)
    [sent] = BROKER.written("b.out")
    assert "esb-warnings" not in sent.headers
    [warned] = [e for e in journal.history("m1") if e.state == "transformed"]
    assert warned.detail == {"warnings": ["state 'InProgress' read as 'inProgress'"]}


def test_backlog_is_settled_in_batches_with_one_journal_commit_each(tmp_path: Path) -> None:
    """Twenty waiting messages go through the batched path: all delivered, journal commits batched."""
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/j"}, {"filter": "body.keep"}])],
        ENDPOINTS,
        {"t/j": lambda b: {"keep": b != b"drop"}},
    )
    project.settings.runtime.batch_size = 10
    BROKER.feed("a.in", *[Message(body=b"drop" if i == 3 else b"x", id=f"m{i}") for i in range(20)])
    calls: list[str] = []
    original = Journal.settle_many

    def spy(self: Journal, route_id: str, outcomes: list[Any], details: Any = None) -> None:
        calls.append(f"settle:{len(outcomes)}")
        original(self, route_id, outcomes, details)

    Journal.settle_many = spy  # type: ignore[method-assign]
    try:
        journal = run_until_settled(project, 20)
    finally:
        Journal.settle_many = original  # type: ignore[method-assign]
    assert [m.id for m in BROKER.written("b.out")] == [f"m{i}" for i in range(20) if i != 3]
    assert journal.outcome("r", "m3") == "filtered"
    assert all(journal.outcome("r", f"m{i}") == "delivered" for i in range(20) if i != 3)
    assert calls, "the batched path was not taken"
    assert all(int(c.split(":")[1]) > 1 for c in calls), calls


def test_batch_member_that_fails_takes_the_one_message_path(tmp_path: Path) -> None:
    """In a batch, a mapping error dead-letters only its message and a sink failure is retried for
    the message that met it; the others are delivered once."""

    def mapping(body: Any) -> Any:
        if body == b"bad":
            raise MappingError("t/m", "id", "/x", "missing")
        return {"v": body.decode()}

    project = make_project(tmp_path, [route(steps=[{"transform": "t/m"}])], ENDPOINTS, {"t/m": mapping})
    BROKER.fail_next("b.out", TransportError("blip"))
    BROKER.feed("a.in", *[Message(body=b"bad" if i == 2 else b"ok", id=f"m{i}") for i in range(6)])
    journal = run_until_settled(project, 6)
    assert [m.id for m in BROKER.written("dlq.r")] == ["m2"]
    assert sorted(m.id for m in BROKER.written("b.out")) == ["m0", "m1", "m3", "m4", "m5"]
    assert [e.state for e in journal.history("m0")].count("redelivered") == 1


def test_batch_members_sent_before_a_failure_are_not_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a batch fails at its fourth write, the three messages already confirmed take the one-message
    path without being written again (their deliveries are checked), and the rest are sent once."""
    from esb.testing import MemorySink

    project = make_project(tmp_path, [route()], ENDPOINTS, {})
    project.settings.runtime.batch_size = 10
    original = MemorySink.write
    writes: list[str] = []

    def fourth_fails(self: MemorySink, message: Message) -> None:
        writes.append(message.id)
        if len(writes) == 4:
            raise TransportError("blip")
        original(self, message)

    monkeypatch.setattr(MemorySink, "write", fourth_fails)
    BROKER.feed("a.in", *[Message(body=b"x", id=f"m{i}") for i in range(8)])
    journal = run_until_settled(project, 8)
    assert sorted(m.id for m in BROKER.written("b.out")) == [f"m{i}" for i in range(8)]
    assert all(journal.outcome("r", f"m{i}") == "delivered" for i in range(8))


def test_batch_keeps_queue_order_when_a_member_must_go_alone(tmp_path: Path) -> None:
    """A member whose step fails once makes it and those after it go one by one: order is kept."""
    failed: list[bytes] = []

    def flaky(body: Any) -> Any:
        if body == b"m1" and not failed:
            failed.append(body)
            raise TransportError("lookup timed out")
        return body

    project = make_project(tmp_path, [route(steps=[{"transform": "t/f"}])], ENDPOINTS, {"t/f": flaky})
    BROKER.feed("a.in", *[Message(body=f"m{i}".encode(), id=f"m{i}") for i in range(5)])
    journal = run_until_settled(project, 5)
    assert [m.id for m in BROKER.written("b.out")] == ["m0", "m1", "m2", "m3", "m4"]
    assert [e.state for e in journal.history("m1")].count("redelivered") == 1
