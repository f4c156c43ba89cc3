"""structlog set-up: JSON lines (orjson) by default, a console renderer for people.

Every line about a message carries ``message_id`` and ``correlation_id`` (bound through contextvars by the
route runner); bodies and secrets are never logged. Context does not reach thread-pool threads by itself:
each route worker binds its own.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_FORBIDDEN_KEYS = frozenset({"body", "password", "secret", "token", "authorization"})


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Remove keys that must never reach a log line (bodies, passwords)."""
    for key in _FORBIDDEN_KEYS.intersection(event):
        event[key] = "***"
    return event


#: Library loggers whose DEBUG lines carry message bodies or credentials: zeep logs every SOAP envelope it
#: sends and receives (WS-Security passwords included), urllib3 every request line. They stay at INFO or
#: above even if an embedding application sets the root logger to DEBUG.
NEVER_DEBUG = ("zeep", "urllib3")


def quiet_libraries() -> None:
    """Keep the loggers in :data:`NEVER_DEBUG` at INFO or above (an explicit level beats the root's)."""
    for name in NEVER_DEBUG:
        library = logging.getLogger(name)
        if library.level == logging.NOTSET or library.level < logging.INFO:
            library.setLevel(logging.INFO)


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Configure structlog for the process: cached loggers, contextvars, JSON or console output."""
    quiet_libraries()
    stream = stream or sys.stderr
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        factory: Any = structlog.BytesLoggerFactory(stream.buffer if hasattr(stream, "buffer") else stream)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory = structlog.PrintLoggerFactory(stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """Return a structlog logger bound with ``component=name``: a lazy proxy, configured at its first log
    call (not now), so that a logger made before ``configure_logging`` or a test's capture follows it."""
    return structlog.get_logger(component=name)
