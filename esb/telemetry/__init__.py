"""Tracing seen from the engine: a few hooks that cost one call when tracing is off (the default).

The engine never imports OpenTelemetry itself: it calls :func:`tracer`, which returns the active
:class:`Tracer`. Off (``telemetry.enabled: false``), that is :data:`NOOP`, whose hooks return a shared
do-nothing context manager and never copy a header, so neither the import of the OpenTelemetry SDK
(~150 ms) nor a span is paid. On, :func:`configure` installs :class:`esb.telemetry.otel.OTelTracer`.

Where the hooks are::

    route(route, message)           a route's run of one message (worker, process inlet, batch path);
                                    continues the trace of the ``traceparent`` in message.headers
    step(route, kind, processor)    wraps a route step's processor at build time (steps: transform...)
    delivery(route, endpoint, msg)  one write to one endpoint (outlet)
    process_step(..., traceparent)  one step of a process instance (engine runner), child of the
                                    context its instance was started in (stored with the instance:
                                    ``inject`` into the instance's row at its start)
    batch_file(system, name)        one batch file, from its opening to its end: its records' route
                                    spans are its children (its ``headers`` go on each record), its
                                    rejected records events on it
    inject(carrier)                 W3C ``traceparent``/``tracestate`` of the current span into headers
                                    (queue wire headers, direct channel, SOAP and REST calls out)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from esb.config.settings import TelemetrySettings
    from esb.message import Message

#: The W3C trace context header names (lower case, as the OTel propagator writes them).
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

Processor = Callable[["Message"], list["Message"]]


class Span(Protocol):
    """What a hook's context manager yields: a span to add attributes and an outcome to."""

    def set(self, key: str, value: Any) -> None:
        """Set one attribute."""
        ...

    def outcome(self, outcome: str, error: BaseException | None = None) -> None:
        """Record how the work ended (delivered, filtered, dead_lettered...), and the error if any."""
        ...

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Add a timed event (a batch file's record)."""
        ...


class FileSpan(Protocol):
    """The span of one batch file, open while its records are handed out."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The trace headers to give each record's message (empty when tracing is off)."""
        ...

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Add a timed event (a rejected record)."""
        ...

    def end(self, outcome: str, attributes: dict[str, Any] | None = None) -> None:
        """End the span with its outcome (processed, refused, interrupted); later calls do nothing."""
        ...


class Tracer(Protocol):
    """The hooks the engine calls; see the module docstring for where each is called."""

    enabled: bool

    def route(self, route: str, message: Message) -> AbstractContextManager[Span]:
        """Span of one route run of ``message``, continuing the trace its headers carry."""
        ...

    def step(self, route: str, kind: str, processor: Processor) -> Processor:
        """Return ``processor`` wrapped so each call is a span (unchanged when tracing is off)."""
        ...

    def delivery(self, route: str, endpoint: str, message: Message) -> AbstractContextManager[Span]:
        """Span of one write of ``message`` to ``endpoint``."""
        ...

    def process_step(
        self,
        process: str,
        instance_id: str,
        step: str,
        kind: str,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> AbstractContextManager[Span]:
        """Span of one step of a process instance, child of the W3C context its instance stored when it
        started (``traceparent``/``tracestate``; none or malformed: the step starts a new trace)."""
        ...

    def batch_file(self, system: str, name: str) -> FileSpan:
        """Start the span of one batch file (ended by :meth:`FileSpan.end`)."""
        ...

    def inject(self, carrier: MutableMapping[str, Any]) -> None:
        """Write the current span's ``traceparent``/``tracestate`` into ``carrier`` (nothing when none)."""
        ...

    def shutdown(self) -> None:
        """Export what is buffered and stop."""
        ...


class _NoopSpan:
    """A span that records nothing."""

    __slots__ = ()

    def set(self, key: str, value: Any) -> None:
        """Do nothing."""

    def outcome(self, outcome: str, error: BaseException | None = None) -> None:
        """Do nothing."""

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Do nothing."""


class _NoopScope:
    """A reusable context manager yielding the no-op span (no allocation per message)."""

    __slots__ = ()

    def __enter__(self) -> _NoopSpan:
        return NOOP_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


class _NoopFileSpan:
    """A batch file span that records nothing and gives records no header."""

    __slots__ = ()
    headers: Mapping[str, str] = MappingProxyType({})

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Do nothing."""

    def end(self, outcome: str, attributes: dict[str, Any] | None = None) -> None:
        """Do nothing."""


NOOP_SPAN = _NoopSpan()
NOOP_FILE_SPAN = _NoopFileSpan()
_NOOP_SCOPE = _NoopScope()


class NoopTracer:
    """Tracing off: every hook is a constant-time no-op; no header is read or written."""

    enabled = False

    def route(self, route: str, message: Message) -> _NoopScope:
        """Return the shared no-op scope."""
        return _NOOP_SCOPE

    def step(self, route: str, kind: str, processor: Processor) -> Processor:
        """Return ``processor`` itself."""
        return processor

    def delivery(self, route: str, endpoint: str, message: Message) -> _NoopScope:
        """Return the shared no-op scope."""
        return _NOOP_SCOPE

    def process_step(
        self,
        process: str,
        instance_id: str,
        step: str,
        kind: str,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> _NoopScope:
        """Return the shared no-op scope."""
        return _NOOP_SCOPE

    def batch_file(self, system: str, name: str) -> _NoopFileSpan:
        """Return the shared no-op file span."""
        return NOOP_FILE_SPAN

    def inject(self, carrier: MutableMapping[str, Any]) -> None:
        """Do nothing."""

    def shutdown(self) -> None:
        """Do nothing."""


NOOP: Tracer = NoopTracer()
_active: list[Tracer] = [NOOP]


def tracer() -> Tracer:
    """Return the active tracer (:data:`NOOP` unless :func:`configure` or :func:`install` set one)."""
    return _active[0]


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Write the current trace context into ``carrier`` (outbound headers); nothing when tracing is off."""
    _active[0].inject(carrier)


def current_context() -> dict[str, str]:
    """Return the current span's W3C ``traceparent`` (and ``tracestate``) to store, as header names;
    empty when tracing is off or no span is current (what a process instance keeps at its start)."""
    found: dict[str, str] = {}
    _active[0].inject(found)
    return found


def carried(message: Message) -> Message:
    """Return ``message`` with the current trace context in its headers, for an in-process hand-over
    (a direct channel); ``message`` itself when tracing is off."""
    active = _active[0]
    if not active.enabled:
        return message
    headers = dict(message.headers)
    active.inject(headers)
    return message.replace(headers=headers)


def install(active: Tracer) -> Tracer:
    """Make ``active`` the tracer every hook uses; return the one it replaces (tests restore it)."""
    previous = _active[0]
    _active[0] = active
    return previous


def configure(settings: TelemetrySettings) -> Tracer:
    """Install the tracer ``settings`` ask for: :data:`NOOP` when disabled, else the OpenTelemetry one.

    Only here is the OpenTelemetry SDK imported, so commands that run no route never pay for it.
    """
    if not settings.enabled:
        install(NOOP)
        return NOOP
    from esb.telemetry.otel import build_tracer

    active = build_tracer(settings)
    install(active)
    return active


def shutdown() -> None:
    """Flush and stop the active tracer, and go back to :data:`NOOP`."""
    install(NOOP).shutdown()


def wsgi_trace_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Return the W3C trace headers of a WSGI request (``HTTP_TRACEPARENT``...), by their header names.

    Listeners (SOAP, REST) put these into the message's headers as they are; the route's span extracts
    them with the OTel propagator, where a malformed one is ignored and the run starts a new trace.
    Tracing off, nothing is taken: the message gets no header it would not have had.
    """
    found: dict[str, str] = {}
    if not _active[0].enabled:
        return found
    for name in (TRACEPARENT, TRACESTATE):
        value = environ.get(f"HTTP_{name.upper()}")
        if value:
            found[name] = str(value)
    return found
