"""Feeding the inbox from an endpoint: which process and business key an arriving reply is for.

A route worker or an endpoint reader that receives ``message`` on ``endpoint`` calls :func:`feed`
with the definitions the hub runs: every ``await`` whose ``from`` is that endpoint and whose ``type``
and ``when`` take the message gives, through its ``correlate.match``, the key value the reply is
delivered under (:func:`~esb.process.engine.inbox.deliver_reply`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from esb.expressions import Expression
from esb.message import Message
from esb.process.definition import Process, walk
from esb.process.engine.inbox import accepts, deliver_reply
from esb.process.engine.store import ProcessStore
from esb.process.steps import AwaitStep


def correlations(processes: Iterable[Process], endpoint: str, message: Message) -> list[tuple[str, str]]:
    """Return the distinct ``(process, key value)`` pairs ``message`` on ``endpoint`` is a reply for."""
    found: list[tuple[str, str]] = []
    for process in processes:
        for _, step in walk(process.steps):
            if not isinstance(step, AwaitStep) or step.await_.from_ != endpoint or not accepts(step, message):
                continue
            value = Expression(step.await_.correlate.match, f"{step.name}.correlate.match").evaluate(message)
            if value is not None and (process.process, str(value)) not in found:
                found.append((process.process, str(value)))
    return found


def feed(
    store: ProcessStore,
    processes: Iterable[Process],
    endpoint: str,
    message: Message,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Deliver ``message`` (received on ``endpoint``) to every process awaiting it; process -> outcome.

    The outcome is :func:`deliver_reply`'s (``waiting``, ``dead``, ``duplicate``); a message no await
    takes gives an empty mapping, for the caller to dead-letter.
    """
    return {
        process: deliver_reply(store, process, key, endpoint, message, now=now)
        for process, key in correlations(processes, endpoint, message)
    }
