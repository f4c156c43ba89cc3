"""Route steps as processors: aggregator timing, splitter, content router, enricher, header setter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from esb.config.durations import parse_duration
from esb.config.routes import RoutesFile
from esb.exceptions import ConfigError, MappingError
from esb.expressions import Expression
from esb.message import Message
from esb.processors.aggregate import Aggregator
from esb.processors.basic import HeaderSetter
from esb.processors.routing import Enricher, Splitter
from esb.testing import BROKER, FakeClock, MemorySink


def test_aggregator_releases_on_timeout_with_tokens() -> None:
    """A group below its size is released once its first message is `timeout` old, with every token."""
    clock = FakeClock()
    aggregator = Aggregator(Expression("body.k"), size=10, timeout=5.0, clock=clock)
    assert aggregator.offer(Message(body={"k": "A"}, id="1"), "t1") == []
    clock.advance(4.9)
    assert aggregator.offer(Message(body={"k": "A"}, id="2"), "t2") == []
    assert aggregator.due() == []
    clock.advance(0.2)
    [batch] = aggregator.due()
    assert batch.tokens == ["t1", "t2"]
    assert batch.message.body["count"] == 2
    assert aggregator.held == 0


def test_aggregate_id_depends_only_on_members() -> None:
    """The same members give the same aggregate id, in any order (idempotent receivers)."""
    ids = []
    for order in (["1", "2"], ["2", "1"]):
        aggregator = Aggregator(Expression("body.k"), size=2, timeout=5.0)
        batches = [b for i in order for b in aggregator.offer(Message(body={"k": "A"}, id=i), i)]
        ids.append(batches[0].message.id)
    assert ids[0] == ids[1]


def test_aggregator_keeps_keys_apart_and_drains() -> None:
    """Different keys form different groups; drain returns the tokens of everything held."""
    aggregator = Aggregator(Expression("body.k"), size=2, timeout=5.0)
    aggregator.offer(Message(body={"k": "A"}), "a")
    aggregator.offer(Message(body={"k": "B"}), "b")
    assert sorted(aggregator.drain()) == ["a", "b"]


def test_splitter_refuses_non_list() -> None:
    """Splitting on something that is not a list is a MappingError naming the expression."""
    with pytest.raises(MappingError, match=r"body\.x"):
        Splitter(Expression("body.x"), None)(Message(body={"x": 5}))


def test_splitter_keep_builds_parts_from_item_and_parent() -> None:
    """keep can combine each item with fields of the parent."""
    split = Splitter(Expression("body.items"), Expression("{order: parent.body.id, item: item}"))
    parts = split(Message(body={"id": "O1", "items": ["a", "b"]}, id="p"))
    assert [p.body for p in parts] == [{"order": "O1", "item": "a"}, {"order": "O1", "item": "b"}]
    assert parts[1].headers["split-size"] == 2


def test_header_setter_literal_and_expression() -> None:
    """set_header sets literals and JMESPath results."""
    [out] = HeaderSetter({"priority": "high"}, {"ch": Expression("body.channel")})(
        Message(body={"channel": "web"})
    )
    assert out.headers == {"priority": "high", "ch": "web"}


def test_enricher_merges_reply_into_body() -> None:
    """enrich sends a request and puts the reply at the `into` path."""
    BROKER.box("rim.lookup").replies["*"] = {"status": "G"}
    enrich = Enricher(lambda: MemorySink("rim.lookup"), None, None, "resource.number", 1.0)
    [out] = enrich(Message(body={"msisdn": "13300000000"}))
    assert out.body == {"msisdn": "13300000000", "resource": {"number": {"status": "G"}}}


def test_invalid_expression_is_a_config_error() -> None:
    """A JMESPath syntax error is caught at load time."""
    with pytest.raises(ConfigError, match="invalid JMESPath"):
        Expression("body.[[", "route r: filter")


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1.0), ("500ms", 0.5), ("5m", 300.0), (2, 2.0), ("1.5h", 5400.0)]
)
def test_durations(text: object, seconds: float) -> None:
    """Durations are read from strings with units or plain numbers."""
    assert parse_duration(text) == seconds


def test_otherwise_must_be_last() -> None:
    """A choice with otherwise before a when is refused."""
    with pytest.raises(ValidationError, match="otherwise"):
        RoutesFile.model_validate(
            {
                "routes": [
                    {
                        "id": "r",
                        "from": "a.b",
                        "steps": [{"choice": [{"otherwise": []}, {"when": "body.x", "steps": []}]}],
                    }
                ]
            }
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, True), (0.0, True), ("0", True), ([0], True), (None, False), (False, False), ("", False),
     ([], False), ({}, False), (True, True)],
)  # fmt: skip
def test_route_expression_truthiness_is_jmespaths(value: object, expected: bool) -> None:
    """A route condition is false only for null, false and empty string/list/object: 0 counts as true."""
    assert Expression("body.v").truthy(Message(body={"v": value})) is expected
