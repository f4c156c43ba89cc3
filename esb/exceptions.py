"""The one error tree of the hub.

::

    EsbError                      base of everything the hub raises on purpose
    ├── ConfigError               bad routes.yaml / config / transform / schema (exit 2, points at file:line)
    ├── MessageError              permanent: the message itself is bad; goes straight to dead letter
    │   ├── DecodeError           bytes that are not what they claim (malformed XML, invalid UTF-8, JSON)
    │   ├── UnsafeXMLError        entities, DTDs, external references (XXE, billion laughs)
    │   ├── BodyTooLargeError     a body over the configured size limit
    │   ├── SchemaValidationError fails a canonical JSON Schema; carries every error with its JSON path
    │   ├── MappingError          a transform rule failed; names the rule and the source path
    │   ├── UnknownMessageTypeError  no mapping or route knows this message type
    │   ├── DecisionError         a decision table cannot decide: bad input, no rule, two rules under unique
    │   └── StateTransitionError  a state change the canonical state machine forbids
    ├── TransportError            retryable: the peer could not be reached (endpoint shown masked)
    └── RemoteError               delivered but refused by the peer (e.g. a SOAP Fault); retryable or not

The route's error policy switches on ``retryable``, never on which library is underneath. Each adapter's
``errors.py`` translates its library's exceptions into this tree in one place, with ``raise ... from exc``.
"""

from __future__ import annotations

import re
from typing import Any

_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (``amqp://esb:***@host/``)."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


class EsbError(Exception):
    """Base class of every error the hub raises on purpose."""

    retryable: bool = False
    exit_code: int = 1


class ConfigError(EsbError):
    """A mistake in the integration project (routes, config, transforms, schemas).

    ``findings`` holds one line per problem, each ``file:line: path: what is wrong (what to do)``.
    """

    exit_code = 2

    def __init__(self, message: str, *, findings: list[str] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []

    def __str__(self) -> str:
        head = super().__str__()
        if not self.findings:
            return head
        return head + "\n" + "\n".join(f"  {f}" for f in self.findings)


class MessageError(EsbError):
    """A permanent failure caused by the message itself: redelivering it cannot help."""

    retryable = False
    reason = "message-error"


class DecodeError(MessageError):
    """The body's bytes are not what they claim to be (malformed XML or JSON, invalid encoding)."""

    reason = "decode-error"


class UnsafeXMLError(DecodeError):
    """The XML declares a DTD or entities, or refers to external resources: refused, never expanded."""

    reason = "unsafe-xml"


class BodyTooLargeError(MessageError):
    """The body is larger than the configured limit."""

    reason = "body-too-large"


class SchemaValidationError(MessageError):
    """The message does not conform to a canonical schema; ``errors`` lists ``(json_path, message)``."""

    reason = "schema-violation"

    def __init__(self, schema: str, errors: list[tuple[str, str]]) -> None:
        self.schema = schema
        self.errors = errors
        lines = "; ".join(f"{path}: {msg}" for path, msg in errors[:10])
        more = f" (+{len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{schema}: {len(errors)} error(s): {lines}{more}")


class MappingError(MessageError):
    """A transform rule failed: names the transform, the rule (target field) and the source path."""

    reason = "mapping-error"

    def __init__(self, transform: str, rule: str, source_path: str, detail: str) -> None:
        self.transform = transform
        self.rule = rule
        self.source_path = source_path
        self.detail = detail
        super().__init__(f"{transform}: rule {rule!r} (source {source_path!r}): {detail}")


class UnknownMessageTypeError(MessageError):
    """No route step or mapping knows what to do with this kind of message."""

    reason = "unknown-message-type"


class DecisionError(MessageError):
    """A decision table could not decide for this message: names the table and what was wrong."""

    reason = "decision-error"

    def __init__(self, table: str, detail: str) -> None:
        self.table = table
        self.detail = detail
        super().__init__(f"decision table {table!r}: {detail}")


class StateTransitionError(MessageError):
    """A state change that the canonical state machine does not allow."""

    reason = "state-transition"


class TransportError(EsbError):
    """The peer could not be reached or the connection broke: retryable."""

    retryable = True
    reason = "transport-error"

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = mask_url(endpoint) if endpoint else None
        super().__init__(f"{message} [{self.endpoint}]" if self.endpoint else message)


class RemoteError(EsbError):
    """The peer received the message and refused it (e.g. a SOAP Fault).

    ``retryable`` is set per instance from the endpoint's configuration (a "system busy" code is
    retryable, "invalid account" is not).
    """

    reason = "remote-error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: Any = None,
        retryable: bool = False,
        endpoint: str | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.endpoint = mask_url(endpoint) if endpoint else None
        super().__init__(f"{code}: {message}" if code else message)


def error_reason(exc: BaseException) -> str:
    """Return a short machine-readable reason for ``exc`` (``schema-violation``, ``transport-error``...)."""
    return getattr(exc, "reason", "internal-error")
