"""``esb receive ENDPOINT``: take (or only look at) what waits on a queue or in a batch outbox.

Endpoints are served through their adapter's capabilities, never by the adapter's name: an
:class:`~esb.typing.OutboxReader` that collects the endpoint (a batch ``outbound`` folder) hands over its
complete files; a :class:`~esb.typing.QueueInspector` peeks without consuming, and the adapter's
:class:`~esb.typing.Source` reads and acks when consuming. Bodies are decoded with their charset: the one
the headers name, else an XML declaration's, else the endpoint's ``encoding``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from esb.exceptions import ConfigError
from esb.message import Message
from esb.project import Project
from esb.typing import OutboxReader, QueueInspector, capability

_LEGACY_CHINESE = re.compile(r"(?i)gbk|gb2312|cp936")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*\sencoding=["']([A-Za-z0-9._\-]+)["']""")
_HEADER_CHARSET = re.compile(r"""(?i)charset=["']?([A-Za-z0-9._\-]+)""")


@dataclass
class Received:
    """One message as ``esb receive`` shows it."""

    id: str
    endpoint: str
    headers: dict[str, Any]
    charset: str | None
    bytes: int
    body: str
    type: str | None = None
    correlation_id: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return it for ``--json``."""
        return dataclasses.asdict(self)


def charset_of(message: Message, default: str) -> str:
    """The charset of ``message``'s body: named by a header, an XML declaration, else ``default``."""
    named: str | None = None
    for name, value in message.headers.items():
        if name.lower() in ("content-type", "content_type", "charset") and isinstance(value, str):
            found = _HEADER_CHARSET.search(value) if "charset=" in value.lower() else None
            named = found.group(1) if found else (value if name.lower() == "charset" else None)
            if named:
                break
    if named is None and isinstance(message.body, bytes | bytearray):
        declared = _XML_ENCODING.match(bytes(message.body[:200]))
        named = declared.group(1).decode("ascii") if declared else None
    charset = named or default
    return "gb18030" if _LEGACY_CHINESE.fullmatch(charset) else charset


def show(message: Message, endpoint: str, default_charset: str) -> Received:
    """Return ``message`` for people: the body decoded with its charset (hex when it does not decode)."""
    body = message.body
    charset: str | None = None
    note = None
    if isinstance(body, bytes | bytearray):
        raw = bytes(body)
        charset = charset_of(message, default_charset)
        try:
            text = raw.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            text, note = raw.hex(" "), f"body is not {charset} ({exc}); shown as hex"
    elif isinstance(body, str):
        raw, text = body.encode("utf-8"), body
    else:
        raw = message.body_bytes()
        text = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    return Received(
        id=message.id,
        endpoint=endpoint,
        headers=dict(message.headers),
        charset=charset,
        bytes=len(raw),
        body=text,
        type=message.type,
        correlation_id=message.correlation_id or None,
        note=note,
    )


def receive(
    project: Project,
    endpoint: str,
    count: int,
    on_message: Callable[[Received], None],
    *,
    peek: bool,
    wait: float,
) -> int:
    """Take up to ``count`` messages from ``endpoint`` or, with ``peek``, look at them; return how many.

    ``on_message`` is called with each (it prints it) before a queue message is acked, so a message is
    never taken away unseen. ``wait`` is how long to wait for a message on a queue before deciding there
    is nothing more. Raises ConfigError for an endpoint that is neither a queue nor an outbox.
    """
    config = project.endpoint(endpoint)
    adapter = project.adapter_for(endpoint)
    context = project.context(endpoint)
    outbox = capability(adapter, OutboxReader)
    if outbox is not None and outbox.collects(config):
        return outbox.collect(
            config, context, count, lambda m: on_message(show(m, endpoint, config.encoding)), consume=not peek
        )
    inspector = capability(adapter, QueueInspector)
    if inspector is None:
        kind = "an inbound endpoint" if outbox is not None else f"a {config.adapter} endpoint"
        raise ConfigError(
            f"esb receive reads queues and batch outboxes; {endpoint} is {kind}, neither a queue nor an "
            "outbox (esb trace and esb dlq show what went through it)"
        )
    if peek:
        looked = inspector.peek(config, context, count)
        for message in looked:
            on_message(show(message, endpoint, config.encoding))
        return len(looked)
    return _consume(project, endpoint, count, on_message, wait)


def _consume(
    project: Project, endpoint: str, count: int, on_message: Callable[[Received], None], wait: float
) -> int:
    """Read, show and ack up to ``count`` messages; the source leases no more than that at once."""
    config = project.endpoint(endpoint)
    settings = project.settings
    narrow = settings.model_copy(update={"broker": settings.broker.model_copy(update={"prefetch": count})})
    context = dataclasses.replace(project.context(endpoint), settings=narrow)
    source = project.adapter_for(endpoint).source(config, context)
    taken = 0
    source.connect()
    try:
        while taken < count:
            delivery = source.read(wait)
            if delivery is None:
                break
            on_message(show(delivery.message, endpoint, config.encoding))
            delivery.ack()
            taken += 1
    finally:
        source.close()  # anything read but not acked (the display failed) goes back to the queue
    return taken
