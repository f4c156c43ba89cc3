"""The operators' commands end to end against a running hub (`esb run` subprocess) with CRM messages."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from esb.ops.dlq import read_archive
from simulators.crm import CRMSimulator, PlannedMessage, order_scenario
from tests.e2e.ops_hub import OpsHub, copy_project, wait_until

ROUTE = "crm-order-to-iom"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsHub]:
    """A running hub on a copy of the project, with 25 CRM orders already through it."""
    base = tmp_path_factory.mktemp("ops")
    running = OpsHub(copy_project(base / "project"), base / "var")
    running.start(base / "hub.log", (ROUTE,))
    try:
        yield running
    finally:
        assert running.stop() == 0, (base / "hub.log").read_text()


def send(hub: OpsHub, plan: list[PlannedMessage]) -> None:
    """Publish the planned CRM messages and wait until each has an outcome."""
    with CRMSimulator(hub.project) as crm:
        for planned in plan:
            crm.send(planned.message)
    assert wait_until(lambda: all(hub.journal.outcome(ROUTE, p.message.id) for p in plan))


def iom_copies(hub: OpsHub, message_id: str) -> list[Any]:
    """The messages waiting on IOM's queue with ``message_id``."""
    adapter = hub.project.adapter_for("iom.orders_in")
    found = adapter.peek(hub.project.endpoint("iom.orders_in"), hub.project.context("iom.orders_in"), 1000)
    return [m for m in found if m.id == message_id]


def dlq_depth(hub: OpsHub) -> int:
    """How many dead letters wait for the route."""
    endpoint = "dlq.crm-order-to-iom"
    adapter = hub.project.adapter_for(endpoint)
    return int(adapter.queue_depth(hub.project.endpoint(endpoint), hub.project.context(endpoint)))


def http_get(url: str, token: str | None) -> tuple[int, bytes]:
    """GET with an optional bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_trace_dlq_replay_stats_health_metrics(hub: OpsHub) -> None:
    """CRM orders flow; trace, dlq list/show/retry/purge, replay, dry-run, stats, health, metrics agree."""
    plan = order_scenario(25, run="ops")
    send(hub, plan)
    good = next(p for p in plan if p.expected == "delivered")
    bad = [p for p in plan if p.expected == "dead_lettered"]
    xxe = next(p for p in plan if p.kind == "xxe-attack")

    # trace: by message id, then by the order id (a business key) it carries
    result = hub.esb("trace", good.message.id, "--json")
    assert result.exit_code == 0, result.output
    steps = orjson.loads(result.output)["steps"]
    assert next(s["state"] for s in steps) == "received"
    assert any(s["state"] == "delivered" and s["endpoint"] == "iom.orders_in" for s in steps)
    order_id = hub.journal.find(message_id=good.message.id)[0].business_keys["order_id"]
    by_key = hub.esb("trace", order_id)
    assert by_key.exit_code == 0
    assert good.message.id in by_key.output
    assert "iom.orders_in" in by_key.output
    assert hub.esb("trace", "no-such-key").exit_code == 1

    # dlq list and show: the five bad ones wait, with their error and original bytes
    listed = hub.esb("dlq", "list", ROUTE, "--json")
    assert listed.exit_code == 1  # dead letters wait: an operator must look
    report = orjson.loads(listed.output)[0]
    assert report["waiting"] == len(bad)
    assert report["journal_dead_lettered"] == len(bad)
    assert {m["message_id"] for m in report["messages"]} == {p.message.id for p in bad}
    shown = hub.esb("dlq", "show", ROUTE, xxe.message.id, "--json")
    detail = orjson.loads(shown.output)
    assert detail["error_reason"] == "unsafe-xml"
    assert "<!DOCTYPE" in detail["body"]

    # replay --dry-run: today's mapping gives what was sent then
    dry = hub.esb("replay", good.message.id, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    destinations = orjson.loads(dry.output)[0]["outputs"][0]["destinations"]
    assert destinations == [  # each endpoint's copy, mapped for it (IOM's request, the process's order)
        {"endpoint": "iom.orders_in", "sent_before": True, "changed": False, "diff": ""},
        {"endpoint": "hub.product_orders", "sent_before": True, "changed": False, "diff": ""},
    ]
    assert len(iom_copies(hub, good.message.id)) == 1  # a dry run sends nothing

    # replay: the same id reaches IOM a second time, journaled as a replay
    replayed = hub.esb("replay", good.message.id)
    assert replayed.exit_code == 0, replayed.output
    assert wait_until(lambda: len(iom_copies(hub, good.message.id)) == 2)
    copy = iom_copies(hub, good.message.id)[1]
    assert copy.headers["esb-replay"] == "1"
    states = [e.state for e in hub.journal.history(good.message.id)]
    assert "replayed" in states
    assert states.count("delivered") >= 3
    assert wait_until(lambda: hub.journal.outcome(ROUTE, good.message.id) == "delivered")

    # dlq retry: the XXE order goes through the route again and is dead-lettered again: exit 1, said so
    retried = hub.esb("dlq", "retry", ROUTE, xxe.message.id)
    assert retried.exit_code == 1, retried.output
    assert "1 dead-lettered again" in retried.output
    history = hub.journal.history
    assert [e.state for e in history(xxe.message.id)].count("dead_lettered") == 2
    assert wait_until(lambda: dlq_depth(hub) == len(bad))
    # --wait 0 only re-publishes: exit 0 says "re-published", not "processed"
    unwaited = hub.esb("dlq", "retry", ROUTE, xxe.message.id, "--wait", "0")
    assert unwaited.exit_code == 0, unwaited.output
    assert "not followed" in unwaited.output
    assert wait_until(lambda: [e.state for e in history(xxe.message.id)].count("dead_lettered") == 3)
    assert wait_until(lambda: dlq_depth(hub) == len(bad))

    # dlq purge asks first, then archives what it removes
    refused = hub.esb("dlq", "purge", ROUTE, xxe.message.id, input="n\n")
    assert refused.exit_code == 1
    assert dlq_depth(hub) == len(bad)
    purged = hub.esb("dlq", "purge", ROUTE, xxe.message.id, input="y\n")
    assert purged.exit_code == 0, purged.output
    assert dlq_depth(hub) == len(bad) - 1
    archive = next((hub.data_dir / "dlq-archive").glob(f"{ROUTE}-*.jsonl"))
    archived = read_archive(archive)
    assert len(archived) == 1
    assert archived[0][1] == xxe.message.body
    purge_trace = orjson.loads(hub.esb("trace", xxe.message.id, "--json").output)
    assert [s["detail"]["archive"] for s in purge_trace["steps"] if s["state"] == "purged"] == [str(archive)]

    # stats over the last hour
    stats = orjson.loads(hub.esb("stats", "--route", ROUTE, "--json").output)["routes"][0]
    assert stats["route"] == ROUTE
    assert stats["received"] >= 25
    assert stats["dead_lettered"] >= len(bad)
    assert stats["latency_ms"]["p50"] >= 0

    # health: everything reachable; dead letters waiting make it degraded (exit 1)
    health = hub.esb("health", "--json")
    verdict = orjson.loads(health.output)
    assert health.exit_code == 1
    assert verdict["status"] == "degraded"
    by_name = {c["component"]: c for c in verdict["checks"]}
    assert by_name["broker"]["status"] == "ok"
    assert by_name["journal"]["status"] == "ok"
    assert by_name["hub"]["status"] == "ok"
    assert by_name[f"dead letters {ROUTE}"]["status"] == "degraded"

    # metrics and health over HTTP: a token is needed everywhere
    info = hub.monitoring()
    assert http_get(info["url"] + "/metrics", None)[0] == 401
    assert http_get(info["url"] + "/health/live", "wrong")[0] == 401
    code, body = http_get(info["url"] + "/metrics", info["token"])
    assert code == 200
    assert f'esb_messages_total{{route="{ROUTE}",state="delivered"}}'.encode() in body
    assert b"esb_message_duration_seconds_bucket" in body
    assert http_get(info["url"] + "/health/ready", info["token"])[0] == 200


def test_suspend_resume_and_hot_reload(hub: OpsHub) -> None:
    """A suspended route leaves messages queued until resumed; a bad edit is refused, a good one applied."""
    assert hub.esb("route", "suspend", ROUTE, "--reason", "billing batch").exit_code == 0
    listed = {r["route"]: r for r in orjson.loads(hub.esb("route", "list", "--json").output)}
    assert listed[ROUTE]["state"] == "suspended"
    assert listed[ROUTE]["reason"] == "billing batch"
    info = hub.monitoring()
    assert wait_until(
        lambda: orjson.loads(http_get(info["url"] + "/health/ready", info["token"])[1])["routes"][ROUTE][
            "suspended"
        ]
    )
    plan = [p for p in order_scenario(5, run="suspended") if p.expected == "delivered"]
    with CRMSimulator(hub.project) as crm:
        for planned in plan:
            crm.send(planned.message)
    assert not wait_until(lambda: any(hub.journal.outcome(ROUTE, p.message.id) for p in plan), timeout=1.5)
    crm_queue = hub.project.adapter_for("crm.orders_out")
    endpoint = "crm.orders_out"
    ready = crm_queue.queue_depth(hub.project.endpoint(endpoint), hub.project.context(endpoint))
    assert ready == len(plan)
    health = hub.esb("health")
    assert health.exit_code == 1
    assert "suspended by" in health.output
    assert hub.esb("route", "resume", ROUTE).exit_code == 0
    assert wait_until(lambda: all(hub.journal.outcome(ROUTE, p.message.id) == "delivered" for p in plan))

    routes_file = hub.root / "routes.yaml"
    original = routes_file.read_text()
    routes_file.write_text(original.replace("to: iom.orders_in", "to: iom.orders_inn"))
    hub.hup()

    def reload_state() -> dict[str, Any]:
        ready: dict[str, Any] = orjson.loads(http_get(info["url"] + "/health/ready", info["token"])[1])
        return ready.get("reload") or {}

    assert wait_until(lambda: reload_state().get("applied") is False)
    assert any("iom.orders_inn" in f for f in reload_state()["findings"])
    routes_file.write_text(
        original.replace("set_header: {priority: normal}", "set_header: {priority: normal, release: r2}")
    )
    hub.hup()
    assert wait_until(lambda: reload_state().get("applied") is True)
    after = [p for p in order_scenario(30, run="reloaded") if p.expected == "delivered"]
    send(hub, after)
    headers = [m.headers for p in after for m in iom_copies(hub, p.message.id)]
    assert any(h.get("release") == "r2" for h in headers)
    assert all(h.get("priority") for h in headers)
