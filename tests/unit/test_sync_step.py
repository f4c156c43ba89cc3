"""The ``sync`` step: its processor on a real SQLite store, and whole routes through the worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from esb.config.steps.sync import SyncStep
from esb.exceptions import DecodeError, TransportError
from esb.expressions import Expression
from esb.journal import Journal
from esb.message import Message
from esb.processors.drops import recording
from esb.processors.sync import ACTION_HEADER, Syncer, SyncRule
from esb.runtime.worker import RouteWorker
from esb.sync.content import SyncDataError
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project


def customer(version: str, name: str = "张三", **extra: Any) -> dict[str, Any]:
    """Return a canonical customer C1 changed at ``version``."""
    return {"id": "C1", "name": name, "status": "active", "lastUpdate": version, "note": "x", **extra}


@pytest.fixture
def sync_url(tmp_path: Path) -> str:
    """A fresh SQLite database file (tests/integration/test_sync_postgres.py gives a PostgreSQL one)."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def syncer(sync_url: str) -> Iterator[Syncer]:
    """A syncer of customers by id on fields name and status, versioned by lastUpdate."""
    rule = SyncRule(
        "customer-billing",
        Expression("body.id"),
        ("name", "status"),
        Expression("body.lastUpdate"),
        Expression("body.status == 'terminated'"),
        Expression("body.unlisted == `true`"),
    )
    made = Syncer(rule, sync_url, "r")
    yield made
    made.close()


def run(syncer: Syncer, body: dict[str, Any], message_id: str, **headers: str) -> tuple[str, dict[str, Any]]:
    """Run one message through the syncer: (action or skip reason, the note journaled if dropped)."""
    with recording() as notes:
        out = syncer(Message(body=body, id=message_id, headers=dict(headers)))
    if out:
        return str(out[0].headers[ACTION_HEADER]), {}
    return str(notes[0]["skipped"]), notes[0]


def test_first_change_is_sent_as_upsert_with_the_sync_headers(syncer: Syncer) -> None:
    """A key never synced goes on with sync-action upsert, sync-name, sync-key and sync-held false."""
    out = syncer(Message(body=customer("2026-12-06T10:00:00Z"), id="m1"))
    assert [m.headers for m in out] == [
        {"sync-action": "upsert", "sync-name": "customer-billing", "sync-key": "C1", "sync-held": "false"}
    ]


def test_sync_held_says_whether_the_target_held_the_key_before_the_change(syncer: Syncer) -> None:
    """A change of a key the target holds says sync-held true; after a delete, a new upsert says false."""
    syncer(Message(body=customer("2026-12-06T10:00:00Z"), id="m1"))
    [changed] = syncer(Message(body=customer("2026-12-06T11:00:00Z", name="李四"), id="m2"))
    assert changed.headers["sync-held"] == "true"
    [gone] = syncer(Message(body=customer("2026-12-06T12:00:00Z", status="terminated"), id="m3"))
    assert (gone.headers["sync-action"], gone.headers["sync-held"]) == ("delete", "true")
    [back] = syncer(Message(body=customer("2026-12-06T13:00:00Z"), id="m4"))
    assert (back.headers["sync-action"], back.headers["sync-held"]) == ("upsert", "false")


def test_a_change_to_no_field_that_matters_is_skipped_and_says_why(syncer: Syncer) -> None:
    """Only `note` changed (not a synced field): dropped, noted as unchanged with the sync and key."""
    assert run(syncer, customer("2026-12-06T10:00:00Z"), "m1")[0] == "upsert"
    action, note = run(syncer, customer("2026-12-06T11:00:00Z", note="other"), "m2")
    assert action == "unchanged"
    assert note == {
        "sync": "customer-billing",
        "key": "C1",
        "skipped": "unchanged",
        "why": "the target holds this content",
    }


def test_a_late_older_update_is_dropped_as_stale_and_never_applied(syncer: Syncer) -> None:
    """After 11:00 was sent, a 10:30 change with other content is stale and the state keeps 11:00's."""
    assert run(syncer, customer("2026-12-06T11:00:00Z", name="新"), "m2")[0] == "upsert"
    assert run(syncer, customer("2026-12-06T10:30:00Z", name="旧"), "m1")[0] == "stale"
    state = syncer.store().get("customer-billing", "C1", bodies=True)
    assert state is not None
    assert state.body == {"name": "新", "status": "active"}


def test_a_skipped_newer_version_still_makes_a_later_older_one_stale(syncer: Syncer) -> None:
    """10:00 sent, 12:00 unchanged (skipped), then 11:00 with other content: stale, not sent."""
    run(syncer, customer("2026-12-06T10:00:00Z"), "m1")
    assert run(syncer, customer("2026-12-06T12:00:00Z"), "m3")[0] == "unchanged"
    assert run(syncer, customer("2026-12-06T11:00:00Z", name="其他"), "m2")[0] == "stale"


def test_the_same_message_again_is_sent_again(syncer: Syncer) -> None:
    """A redelivery (same id) after a crash or a failed delivery passes, not skipped as unchanged."""
    body = customer("2026-12-06T10:00:00Z")
    assert run(syncer, body, "m1")[0] == "upsert"
    assert run(syncer, body, "m1")[0] == "upsert"
    assert run(syncer, body, "m-other")[0] == "unchanged"


def test_a_replay_of_unchanged_content_is_sent(syncer: Syncer) -> None:
    """With the esb-replay header, content the target already holds is sent again."""
    run(syncer, customer("2026-12-06T10:00:00Z"), "m1")
    assert run(syncer, customer("2026-12-06T10:00:00Z"), "m2", **{"esb-replay": "1"})[0] == "upsert"


def test_delete_then_exclude_then_back(syncer: Syncer) -> None:
    """terminated sends a delete; a second delete is skipped; a new active change is an upsert again."""
    run(syncer, customer("2026-12-06T10:00:00Z"), "m1")
    assert run(syncer, customer("2026-12-06T11:00:00Z", status="terminated"), "m2")[0] == "delete"
    assert run(syncer, customer("2026-12-06T11:30:00Z", status="terminated"), "m3")[0] == "unchanged"
    assert run(syncer, customer("2026-12-06T12:00:00Z"), "m4")[0] == "upsert"


def test_an_excluded_record_the_target_holds_is_deleted_and_nothing_of_it_is_kept(syncer: Syncer) -> None:
    """Unlisted after being sent: a delete goes, the stored body is dropped; again: excluded, not sent."""
    run(syncer, customer("2026-12-06T10:00:00Z"), "m1")
    assert run(syncer, customer("2026-12-06T11:00:00Z", unlisted=True), "m2")[0] == "delete"
    state = syncer.store().get("customer-billing", "C1", bodies=True)
    assert state is not None
    assert state.deleted
    assert state.body is None
    assert run(syncer, customer("2026-12-06T12:00:00Z", unlisted=True), "m3")[0] == "excluded"


def test_an_excluded_record_never_sent_is_never_sent_even_by_a_late_older_update(syncer: Syncer) -> None:
    """Unlisted from the start: not sent; a late older listed update is stale, so it never leaks."""
    assert run(syncer, customer("2026-12-06T11:00:00Z", unlisted=True), "m2")[0] == "excluded"
    assert run(syncer, customer("2026-12-06T10:00:00Z"), "m1")[0] == "stale"
    assert run(syncer, customer("2026-12-06T11:00:00Z", unlisted=True), "m2")[0] == "excluded"


def test_a_message_without_key_or_version_is_a_permanent_error(syncer: Syncer) -> None:
    """No key, no version or a naive date-time: SyncDataError (the message is dead-lettered)."""
    for body in (
        {"name": "x", "lastUpdate": "2026-12-06T10:00:00Z"},
        {"id": "C1"},
        customer("2026-12-06T10:00:00"),
    ):
        with pytest.raises(SyncDataError):
            syncer(Message(body=body, id="m"))
    with pytest.raises(SyncDataError, match="JSON object"):
        syncer(Message(body=b"[1, 2]", id="m"))
    with pytest.raises(DecodeError, match="sync customer-billing"):
        syncer(Message(body=b"<xml/>", id="m"))


def test_a_json_body_in_bytes_is_read_and_passed_on_parsed(syncer: Syncer) -> None:
    """JSON bytes straight from a queue are parsed: the change is judged and goes on as a dict."""
    [out] = syncer(Message(body=orjson.dumps(customer("2026-12-06T10:00:00Z")), id="m1"))
    assert out.body["id"] == "C1"


def test_a_key_that_keeps_moving_is_a_retryable_error(
    syncer: Syncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every compare-and-set is lost, the step gives up with a retryable TransportError."""
    monkeypatch.setattr(syncer.store(), "claim", lambda write, revision: False)
    with pytest.raises(TransportError, match="concurrent") as caught:
        syncer(Message(body=customer("2026-12-06T10:00:00Z"), id="m1"))
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        pytest.param({"name": "Bad Name", "key": "body.id", "fields": ["a"]}, "pattern", id="name"),
        pytest.param({"name": "c", "key": "body.id", "fields": []}, "at least 1", id="no-fields"),
        pytest.param({"name": "c", "key": "body.id", "fields": ["a", "a"]}, "twice", id="repeated-field"),
        pytest.param({"name": "c", "key": "body.id", "fields": ["a b"]}, "dotted path", id="bad-field"),
        pytest.param({"name": "c", "key": "body.id", "fields": ["a"], "versio": "x"}, "Extra", id="typo"),
    ],
)
def test_the_step_model_refuses_mistakes(spec: dict[str, Any], problem: str) -> None:
    """Names, fields and unknown keys are checked when routes.yaml is loaded."""
    with pytest.raises(ValidationError, match=problem):
        SyncStep.model_validate({"sync": spec})


# -- whole routes through the worker -------------------------------------------------------------------
ENDPOINTS = ["crm.customers", "billing.upserts", "billing.deletes", "dlq.r"]
RETRY = {"redeliver": {"max": 1, "initial": "1ms", "max_delay": "2ms"}, "dead_letter": "dlq.r"}
ROUTE: dict[str, Any] = {
    "id": "r",
    "from": "crm.customers",
    "ordered_by": "body.id",
    "steps": [
        {"transform": "t/json"},
        {
            "sync": {
                "name": "customer-billing",
                "key": "body.id",
                "version": "body.lastUpdate",
                "fields": ["name", "status"],
                "delete": "body.status == 'terminated'",
            }
        },
    ],
    "to": {
        "recipients": "[headers.\"sync-action\" == 'delete' && 'billing.deletes' || 'billing.upserts']",
        "allowed": ["billing.upserts", "billing.deletes"],
    },
    "on_error": RETRY,
}


def settle(project: Any, count: int) -> Journal:
    """Run the route's worker until ``count`` deliveries were settled; return the open journal."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.start()
    deadline = time.monotonic() + 10
    while len(BROKER.box("crm.customers").acked) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(5)
    return journal


def feed(*items: tuple[str, dict[str, Any]]) -> None:
    """Put customer changes (id, body) on the CRM's queue."""
    BROKER.feed("crm.customers", *(Message(body=orjson.dumps(body), id=mid) for mid, body in items))


def project_for(tmp_path: Path) -> Any:
    """The route above on memory endpoints."""
    return make_project(tmp_path, [ROUTE], ENDPOINTS, {"t/json": orjson.loads})


def test_route_sends_skips_the_unchanged_drops_the_late_and_journals_why(tmp_path: Path) -> None:
    """Four changes: sent, unchanged and late (filtered, why journaled), a delete to its own endpoint."""
    project = project_for(tmp_path)
    feed(
        ("m1", customer("2026-12-06T10:00:00Z")),
        ("m2", customer("2026-12-06T11:00:00Z", note="only this")),
        ("m3", customer("2026-12-06T09:00:00Z", name="旧")),
        ("m4", customer("2026-12-06T12:00:00Z", status="terminated")),
    )
    journal = settle(project, 4)
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1"]
    assert [m.id for m in BROKER.written("billing.deletes")] == ["m4"]
    assert [journal.outcome("r", m) for m in ("m1", "m2", "m3", "m4")] == [
        "delivered",
        "filtered",
        "filtered",
        "delivered",
    ]
    skipped = {
        e.message_id: e.detail for e in journal.trace("m2") + journal.trace("m3") if e.state == "filtered"
    }
    assert skipped["m2"]["skipped"] == "unchanged"
    assert skipped["m3"]["skipped"] == "stale"
    assert skipped["m3"]["key"] == "C1"
    assert skipped["m3"]["sync"] == "customer-billing"


def test_a_failed_delivery_is_sent_again_by_its_redelivery_and_by_a_later_unchanged_change(
    tmp_path: Path,
) -> None:
    """Billing down for m1 (dead-lettered): a later unchanged change m2 is sent, not skipped as unchanged."""
    project = project_for(tmp_path)
    BROKER.fail_next("billing.upserts", TransportError("down"), TransportError("down"))
    feed(("m1", customer("2026-12-06T10:00:00Z")), ("m2", customer("2026-12-06T10:00:00Z")))
    journal = settle(project, 2)
    assert journal.outcome("r", "m1") == "dead_lettered"
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m2"]


def test_a_delivery_that_fails_once_is_retried_and_sent(tmp_path: Path) -> None:
    """One transient failure: the retry of the same message passes the sync step and is delivered."""
    project = project_for(tmp_path)
    BROKER.fail_next("billing.upserts", TransportError("down"))
    feed(("m1", customer("2026-12-06T10:00:00Z")))
    journal = settle(project, 1)
    assert journal.outcome("r", "m1") == "delivered"
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1"]


def test_a_redelivered_message_after_a_crash_is_sent(tmp_path: Path) -> None:
    """The state was claimed (crash before delivery): the broker's redelivery of m1 is sent."""
    project = project_for(tmp_path)
    syncer = Syncer(
        SyncRule(
            "customer-billing", Expression("body.id"), ("name", "status"), Expression("body.lastUpdate")
        ),
        project.settings.journal.url,
        "r",
    )
    syncer(Message(body=customer("2026-12-06T10:00:00Z"), id="m1"))  # the step ran, then the hub died
    syncer.close()
    BROKER.feed(
        "crm.customers",
        Message(body=orjson.dumps(customer("2026-12-06T10:00:00Z")), id="m1"),
        delivery_count=2,
    )
    journal = settle(project, 1)
    assert journal.outcome("r", "m1") == "delivered"
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1"]


def test_the_batched_path_journals_why_a_change_was_skipped(tmp_path: Path) -> None:
    """A backlog read in one batch: the unchanged change ends filtered with the sync's reason too."""
    route = {**ROUTE, "to": "billing.upserts"}
    project = make_project(tmp_path, [route], ENDPOINTS, {"t/json": orjson.loads})
    project.settings.runtime.batch_size = 10
    feed(*[(f"m{i}", customer(f"2026-12-06T1{i}:00:00Z")) for i in range(5)])
    journal = settle(project, 5)
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m0"]
    [event] = [e for e in journal.history("m3") if e.state == "filtered"]
    assert event.detail == {
        "sync": "customer-billing",
        "key": "C1",
        "skipped": "unchanged",
        "why": "the target holds this content",
    }
