"""The real CRM-order route, in-process on memory endpoints: every kind of bad input is dead-lettered
with a clear error and its original bytes, the journal says why, and the route keeps running."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from esb.journal import Journal
from esb.logging import configure_logging
from esb.message import Message
from esb.project import Project
from esb.runtime.worker import RouteWorker
from esb.testing import BROKER, MemoryEndpoint
from simulators.crm import XXE_ORDER, make_order
from simulators.siebel import siebel_order_xml

ROOT = Path(__file__).resolve().parents[2]
ROUTE = "crm-order-to-iom"
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE SiebelMessage [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><SiebelMessage>&lol3;</SiebelMessage>"""


def good_order(index: int = 1, **changes: object) -> bytes:
    """A valid SiebelMessage order."""
    import random

    order = make_order(index, random.Random(index))
    for key, value in changes.items():
        setattr(order, key, value)
    return siebel_order_xml(order)


def run_route(tmp_path: Path, bodies: list[bytes]) -> tuple[Journal, Project]:
    """Run the real route on memory endpoints over ``bodies``; return the journal and project."""
    project = Project.load(ROOT, environ={"ESB_DATA_DIR": str(tmp_path)})
    for name in ("crm.orders_out", "iom.orders_in", "dlq.crm-order-to-iom"):
        project.endpoints[name] = MemoryEndpoint()
    project.settings.limits.max_body_bytes = 64 * 1024
    BROKER.feed("crm.orders_out", *[Message(body=b, id=f"m{i}") for i, b in enumerate(bodies)])
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.route(ROUTE), journal)
    worker.start()
    deadline = time.monotonic() + 30
    while len(BROKER.box("crm.orders_out").acked) < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(5)
    return journal, project


@pytest.mark.parametrize(
    ("body", "reason", "says"),
    [
        pytest.param(good_order()[:-60], "decode-error", "malformed XML", id="malformed-xml"),
        pytest.param(XXE_ORDER, "unsafe-xml", "DTD", id="xxe"),
        pytest.param(BILLION_LAUGHS, "unsafe-xml", "DTD", id="billion-laughs"),
        pytest.param(
            good_order().replace(b"SO2026", b"SO\xff\xfe26"),
            "decode-error",
            "malformed XML",
            id="invalid-utf8",
        ),
        pytest.param(
            good_order() + b"<!--" + b"x" * 70_000 + b"-->",
            "body-too-large",
            "over the limit",
            id="oversized",
        ),
        pytest.param(
            good_order(int_object="Account (PRM ANI)"),
            "unknown-message-type",
            "IntObjectName",
            id="unknown-message-type",
        ),
        pytest.param(good_order(items=[]), "schema-violation", "$.productOrderItem", id="schema-violation"),
        pytest.param(b'{"not": "xml"}', "decode-error", "malformed XML", id="json-instead-of-xml"),
    ],
)
def test_bad_input_is_dead_lettered_with_a_clear_error(
    tmp_path: Path, body: bytes, reason: str, says: str
) -> None:
    """The bad message goes to the dead-letter endpoint as it came, the good one after it is delivered."""
    journal, _ = run_route(tmp_path, [body, good_order(2)])
    [dead] = BROKER.written("dlq.crm-order-to-iom")
    assert dead.body == body
    assert dead.headers["esb-error-reason"] == reason
    assert says in dead.headers["esb-error"]
    assert journal.outcome(ROUTE, "m0") == "dead_lettered"
    assert journal.outcome(ROUTE, "m1") == "delivered"
    assert [m.id for m in BROKER.written("iom.orders_in")] == ["m1"]
    [event] = [e for e in journal.history("m0") if e.state == "dead_lettered"]
    assert event.error_reason == reason


def test_log_lines_carry_ids_and_never_bodies(tmp_path: Path) -> None:
    """Every JSON log line about a message has message_id and correlation_id, and no body content."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    configure_logging("debug", "json", stream=stream)
    try:
        run_route(tmp_path, [good_order(3, account_name="保密客户名"), XXE_ORDER])
    finally:
        configure_logging("critical", "console")
    output = stream.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    about_messages = [
        line
        for line in lines
        if (line.get("route") == ROUTE and "message_id" in line) or line.get("event") == "dead-lettered"
    ]
    assert about_messages, "the worker logged nothing about the messages"
    assert all("message_id" in line and "correlation_id" in line for line in about_messages)
    assert any(line["event"] == "dead-lettered" for line in about_messages)
    assert "保密客户名" not in output
    assert "/etc/passwd" not in output
