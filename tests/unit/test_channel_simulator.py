"""The simulated sales channel: a deterministic TMF622 mix whose planned outcomes the route really gives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import MessageError
from esb.message import Message
from esb.model.registry import ModelRegistry
from esb.transforms import TransformRegistry
from simulators.channel import ID_MARK, channel_order_scenario
from simulators.iom import IOMSimulator

ROOT = Path(__file__).resolve().parents[2]
TRANSFORMS = TransformRegistry(ROOT)
MODEL = ModelRegistry(ROOT / "canonical_model")


def _route(message: Message) -> tuple[str, Message | None]:
    """The channel route's steps, offline: (outcome, IOM request)."""
    try:
        canonical = TRANSFORMS.get("channel/tmf_product_order_in").apply(message)
        MODEL.validator("product_order.v1").validate(canonical.body)
        return "delivered", TRANSFORMS.get("iom/canonical_to_order_request").apply(canonical)
    except MessageError:
        return "dead_lettered", None


def test_plan_is_deterministic_with_the_announced_mix() -> None:
    """The same seed gives the same bodies; 100 messages are 80 to deliver and 20 to dead-letter."""
    first, second = channel_order_scenario(100, run="r"), channel_order_scenario(100, run="r")
    assert [p.message.body for p in first] == [p.message.body for p in second]
    assert Counter(p.expected for p in first) == {"delivered": 80, "dead_lettered": 20}
    kinds = {p.kind for p in first}
    assert {"sloppy-state", "missing-type", "sloppy-item-state", "unknown-state",
            "party-without-referred-type", "invalid-json", "schema-violation"} <= kinds  # fmt: skip
    assert all(p.message.id.startswith(f"r{ID_MARK}") for p in first)


def test_every_planned_message_ends_as_planned_through_the_route_steps() -> None:
    """Offline, each message ends as planned: sloppy ones delivered with warnings, bad ones refused."""
    for planned in channel_order_scenario(40, run="r"):
        outcome, request = _route(planned.message)
        assert outcome == planned.expected, (planned.kind, planned.message.id)
        if planned.kind.startswith(("sloppy", "missing")):
            assert request is not None
            assert request.headers["esb-warnings"], planned.kind


class _Project:
    """Two scenarios' view of one project (only identity matters for sharing)."""


@pytest.mark.parametrize("prefix", ["r-crm-", "r-channel-"])
def test_shared_iom_counts_each_scenarios_own_messages(prefix: str) -> None:
    """IOMSimulator.shared gives both routes one consumer; count(prefix) separates their messages."""
    project: Any = _Project()
    iom = IOMSimulator.shared(project)
    assert IOMSimulator.shared(project) is iom
    for mid in ("r-crm-000001", "r-crm-000002", "r-channel-000001"):
        iom.accept(Message(body=b'{"header": {}, "orderLines": []}', id=mid))
    iom.accept(Message(body=b'{"header": {}, "orderLines": []}', id="r-crm-000001"))  # redelivery
    assert iom.count() == 3
    assert iom.count(prefix=prefix) == (2 if "crm" in prefix else 1)
    assert iom.duplicates == 1
    iom.stop()
    assert IOMSimulator.shared(project) is not iom  # a stopped simulator is not handed out again
