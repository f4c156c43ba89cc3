"""``sync_rejected``: a record the target rejected puts the change that was sent on the sync route's DLQ,
replayable through the sync route; a stale retry sends nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from esb.journal import Journal
from esb.message import Message
from esb.ops.dlq import original_message
from esb.project import Project
from esb.runtime.worker import REPLAY_HEADER, RouteWorker
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project

ENDPOINTS = ["crm.customers", "billing.upserts", "billing.acks", "dlq.r", "dlq.acks"]
SYNC_ROUTE: dict[str, Any] = {
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
                "fields": ["name"],
            }
        },
    ],
    "to": "billing.upserts",
    "on_error": {"redeliver": {"max": 1, "initial": "1ms", "max_delay": "2ms"}, "dead_letter": "dlq.r"},
}
ACK_ROUTE: dict[str, Any] = {
    "id": "acks",
    "from": "billing.acks",
    "steps": [
        {"transform": "t/json"},
        {
            "sync_rejected": {
                "sync": "customer-billing",
                "route": "r",
                "key": "body.id",
                "code": "body.code",
                "reason": "body.reason",
                "record": "body.line",
            }
        },
    ],
    "to": "dlq.r",
    "on_error": {"redeliver": {"max": 1, "initial": "1ms", "max_delay": "2ms"}, "dead_letter": "dlq.acks"},
}


def customer(version: str, name: str) -> bytes:
    """A canonical customer C1 changed at ``version``, as the CRM's queue holds it."""
    return orjson.dumps({"id": "C1", "name": name, "lastUpdate": version})


def run_route(project: Project, route_id: str, source: str, count: int) -> Journal:
    """Run one route's worker until ``count`` messages of ``source`` were settled; return the journal."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.route(route_id), journal)
    worker.start()
    deadline = time.monotonic() + 10
    while len(BROKER.box(source).acked) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(5)
    return journal


def reject(line: int = 3, key: str = "C1") -> Message:
    """One rejected record of the target's ack file, as the batch adapter hands it out."""
    body = {"id": key, "code": "E02", "reason": "名称过长", "line": line}
    return Message(body=orjson.dumps(body), id=f"ack-{key}-{line}", headers={"batch-file": "ACK_F1.dat"})


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The sync route and its ack route on memory endpoints."""
    return make_project(tmp_path, [SYNC_ROUTE, ACK_ROUTE], ENDPOINTS, {"t/json": orjson.loads})


def retry(project: Project, dead: Message) -> None:
    """What `esb dlq retry r` does: the original message back on the route's source, marked a replay."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    again = original_message(dead)
    journal.event("r", again, "replayed")
    journal.close()
    BROKER.feed("crm.customers", again.replace(headers={**again.headers, REPLAY_HEADER: "1"}))


def test_a_rejected_record_puts_the_sent_change_on_the_sync_routes_dead_letter_queue(
    project: Project,
) -> None:
    """The dead letter is the sent change (id, bytes), with the route, reason, file and listing sent."""
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T10:00:00Z", "张三"), id="m1"))
    run_route(project, "r", "crm.customers", 1).close()
    BROKER.feed("billing.acks", reject())
    journal = run_route(project, "acks", "billing.acks", 1)
    assert journal.outcome("acks", "ack-C1-3") == "delivered"
    [dead] = BROKER.written("dlq.r")
    assert dead.id == "m1"
    assert orjson.loads(dead.body_bytes()) == orjson.loads(customer("2026-12-06T10:00:00Z", "张三"))
    assert dead.headers["esb-route"] == "r"
    assert dead.headers["esb-error-class"] == "TargetRejected"
    assert "C1 (E02 名称过长) in record 3 of ACK_F1.dat" in dead.headers["esb-error"]
    assert (dead.headers["reject-code"], dead.headers["reject-file"]) == ("E02", "ACK_F1.dat")
    assert orjson.loads(dead.headers["listing-sent"]) == {"name": "张三"}


def test_a_retry_sends_the_rejected_change_again_through_the_sync_route(project: Project) -> None:
    """Retried from the DLQ, the unchanged change passes the sync step as a replay and reaches the target."""
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T10:00:00Z", "张三"), id="m1"))
    run_route(project, "r", "crm.customers", 1).close()
    BROKER.feed("billing.acks", reject())
    run_route(project, "acks", "billing.acks", 1).close()
    [dead] = BROKER.written("dlq.r")
    retry(project, dead)
    journal = run_route(project, "r", "crm.customers", 2)
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1", "m1"]
    assert journal.outcome("r", "m1") == "delivered"


def test_a_stale_retry_sends_nothing_once_a_newer_change_was_sent(project: Project) -> None:
    """A newer change of the key came after the reject: retrying the older one is dropped as stale."""
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T10:00:00Z", "张三"), id="m1"))
    run_route(project, "r", "crm.customers", 1).close()
    BROKER.feed("billing.acks", reject())
    run_route(project, "acks", "billing.acks", 1).close()
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T11:00:00Z", "张三丰"), id="m2"))
    run_route(project, "r", "crm.customers", 2).close()
    [dead] = BROKER.written("dlq.r")
    retry(project, dead)
    journal = run_route(project, "r", "crm.customers", 3)
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1", "m2"]
    assert journal.outcome("r", "m1") == "filtered"
    [event] = [e for e in journal.history("m1") if e.route == "r" and e.state == "filtered"]
    assert (event.detail or {})["skipped"] == "stale"


def test_a_reject_of_a_key_never_sent_ends_on_the_ack_routes_own_dead_letter_queue(project: Project) -> None:
    """Nothing to send again: the reject itself is dead-lettered on the ack route, with the reason."""
    BROKER.feed("billing.acks", reject(key="C9"))
    journal = run_route(project, "acks", "billing.acks", 1)
    assert BROKER.written("dlq.r") == []
    [dead] = BROKER.written("dlq.acks")
    assert dead.id == "ack-C9-3"
    assert "C9 was rejected (E02 名称过长, ACK_F1.dat)" in dead.headers["esb-error"]
    assert journal.outcome("acks", "ack-C9-3") == "dead_lettered"


def test_after_a_reject_the_same_content_from_the_source_is_sent_not_skipped(project: Project) -> None:
    """The rejected change is journaled dead-lettered on the sync route: an identical later change is sent."""
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T10:00:00Z", "张三"), id="m1"))
    run_route(project, "r", "crm.customers", 1).close()
    BROKER.feed("billing.acks", reject())
    journal = run_route(project, "acks", "billing.acks", 1)
    assert journal.outcome("r", "m1") == "dead_lettered"
    [event] = [e for e in journal.history("m1") if e.route == "r" and e.state == "dead_lettered"]
    assert event.endpoint == "dlq.r"
    journal.close()
    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T11:00:00Z", "张三"), id="m2"))
    run_route(project, "r", "crm.customers", 2).close()
    assert [m.id for m in BROKER.written("billing.upserts")] == ["m1", "m2"]


def test_esb_dlq_lists_the_rejected_change_and_retry_puts_it_back_on_the_sync_route(project: Project) -> None:
    """`esb dlq list r` shows the rejected change with its error; `esb dlq retry r m1` re-publishes it to the
    sync route's source as a replay, without the error headers but with the reject's."""
    from click.testing import CliRunner

    from esb.cli.main import cli

    BROKER.feed("crm.customers", Message(body=customer("2026-12-06T10:00:00Z", "张三"), id="m1"))
    run_route(project, "r", "crm.customers", 1).close()
    BROKER.feed("billing.acks", reject())
    run_route(project, "acks", "billing.acks", 1).close()
    BROKER.feed("dlq.r", *BROKER.written("dlq.r"))  # what the ack route wrote is on the queue
    listed = CliRunner().invoke(cli, ["--project", str(project.root), "dlq", "list", "r"])
    assert listed.exit_code == 1, listed.output  # exit 1: dead letters wait
    assert "m1" in listed.output
    assert "target-rejected  the target rejected C1 (E02 名称过长) in record 3 of ACK_F1.dat" in listed.output
    retried = CliRunner().invoke(
        cli, ["--project", str(project.root), "dlq", "retry", "r", "m1", "--wait", "0"]
    )
    assert retried.exit_code == 0, retried.output
    [again] = BROKER.written("crm.customers")
    assert again.id == "m1"
    assert again.headers["esb-replay"] == "1"
    assert "esb-error" not in again.headers
    assert again.headers["reject-code"] == "E02"
