"""The pipeline's shortcuts give the slow path's results: a validation that changes nothing copies
nothing, and business keys are looked for only while one is missing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from esb.exceptions import SchemaValidationError
from esb.expressions import Expression
from esb.message import Message
from esb.processors.basic import SchemaValidator
from esb.runtime.pipeline import BusinessKeys, Pipeline


class _Validator:
    """Accepts a dict with an ``id``; counts the bodies it saw."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def validate(self, body: Any) -> None:
        self.seen.append(body)
        if "id" not in body:
            raise SchemaValidationError("order.v1", [("$.id", "id is required")])


def _slow(message: Message, schema: str) -> Message:
    """What the step returned before the shortcut: always a copy, parsed and marked."""
    body = message.body if isinstance(message.body, dict) else orjson.loads(message.body)
    return message.replace(body=body, schema=schema)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(Message(body={"id": 1}, schema="order.v1", id="m"), id="marked-dict-kept"),
        pytest.param(Message(body={"id": 1}, schema="other.v1", id="m"), id="other-schema"),
        pytest.param(Message(body={"id": 1}, id="m"), id="no-schema"),
        pytest.param(Message(body=b'{"id": 1}', schema="order.v1", id="m"), id="json-bytes"),
    ],
)
def test_validation_gives_what_the_copy_gave(message: Message) -> None:
    """Each case gives a message equal to the slow path's copy; only an unchanged one is the same object."""
    step = SchemaValidator("order.v1", _Validator())
    (out,) = step(message)
    assert out == _slow(message, "order.v1")
    unchanged = isinstance(message.body, dict) and message.schema == "order.v1"
    assert (out is message) is unchanged


def test_an_invalid_body_is_refused_either_way() -> None:
    """A marked body that fails validation still raises (the shortcut comes after the check)."""
    with pytest.raises(SchemaValidationError):
        SchemaValidator("order.v1", _Validator())(Message(body={"x": 1}, schema="order.v1"))


class _Counted(Expression):
    """An expression that counts its evaluations."""

    calls = 0

    def evaluate(self, message: Message) -> Any:
        type(self).calls += 1
        return super().evaluate(message)


def test_business_keys_are_looked_for_only_while_one_is_missing() -> None:
    """After the step that yields every key, later steps evaluate nothing; a missing key is tried again."""
    keys = BusinessKeys({"order_id": _Counted("body.id", "t"), "account": _Counted("body.acc", "t")})

    def first(message: Message) -> list[Message]:
        return [message.replace(body={"id": "SO1"})]

    def second(message: Message) -> list[Message]:
        return [message.replace(body={**message.body, "acc": "A1"})]

    def third(message: Message) -> list[Message]:
        return [message.replace(body={**message.body, "acc": "changed"})]

    _Counted.calls = 0
    (out,) = Pipeline([first, second, third, third], keys)(Message(body=b"raw"))
    assert out.business_keys == {"order_id": "SO1", "account": "A1"}
    assert _Counted.calls == 3  # both after the first step, the missing one after the second, then none
