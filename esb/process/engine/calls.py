"""Calls out of a process: the request built from the instance, the idempotency key header, the reply.

Both ``call`` (request-reply, through the endpoint sink's :class:`~esb.typing.Requester` capability)
and ``send`` (one way, ``write``) carry the header ``idempotency-key`` (``<instance id>:<step path>``,
``...:compensate`` for an undo): the same on every attempt and after a crash.
"""

from __future__ import annotations

from typing import Any

from esb.exceptions import ConfigError, EsbError
from esb.message import Message
from esb.process.engine.resources import Resources
from esb.typing import Requester, capability

IDEMPOTENCY_HEADER = "idempotency-key"


def request_message(
    resources: Resources, view: dict[str, Any], transform: str | None, key: str, instance_id: str
) -> Message:
    """Build the outgoing message: the process view with the call's key through ``transform``.

    The request transform reads ``{data, keys, state, item, idempotency_key}`` (docs/transforms.md,
    "Process mappings"); without one the view itself is sent. The header ``idempotency-key`` is set
    after the transform, so a transform cannot drop it.
    """
    body = {**view, "idempotency_key": key}
    message = Message(
        body=body,
        id=key,
        correlation_id=instance_id,
        headers={IDEMPOTENCY_HEADER: key},
        business_keys=dict(view.get("keys") or {}),
    )
    if transform is not None:
        message = resources.transform(transform).apply(message)
        message.headers[IDEMPOTENCY_HEADER] = key
    return message


def call(resources: Resources, endpoint: str, message: Message, timeout: float) -> Message:
    """Send ``message`` to ``endpoint`` and return its reply (the endpoint must answer)."""
    requester = capability(resources.sink(endpoint), Requester)
    if requester is None:
        raise ConfigError(f"endpoint {endpoint!r} cannot answer (its sink has no request()): use send")
    return requester.request(message, timeout)


def send(resources: Resources, endpoint: str, message: Message) -> None:
    """Send ``message`` one way to ``endpoint``."""
    resources.sink(endpoint).write(message)


def retryable(error: BaseException) -> bool:
    """True for a transient failure (transport error, a fault the endpoint marks retryable)."""
    return isinstance(error, EsbError) and bool(getattr(error, "retryable", False))


def describe(error: BaseException) -> str:
    """``Class: text`` of a failure, for the step row."""
    return f"{type(error).__name__}: {error}"
