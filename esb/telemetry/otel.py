"""The OpenTelemetry tracer behind :mod:`esb.telemetry`'s hooks (imported only when tracing is on).

Propagation is the OTel W3C trace-context propagator (``traceparent``/``tracestate``), never parsed by
hand: a malformed ``traceparent`` extracts to an empty context and the run starts a new trace. The
provider is this module's own (not the process-wide global one), so tests install a provider with an
in-memory exporter and the hub's does not leak into them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from esb.telemetry import TRACEPARENT, TRACESTATE, Processor

if TYPE_CHECKING:
    from esb.config.settings import TelemetrySettings
    from esb.message import Message


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads trace headers from a message's headers, whatever type the wire gave their values."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        """Return the header's value as a one-item list, or None when absent."""
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            return [bytes(value).decode("latin-1")]
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        """Return the header names."""
        return list(carrier)


_GETTER = _HeaderGetter()


class _OTelSpan:
    """Adapts an OTel span to :class:`esb.telemetry.Span`."""

    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def set(self, key: str, value: Any) -> None:
        """Set one attribute (values that are not str, bool, int or float as text)."""
        self.span.set_attribute(key, value if isinstance(value, str | bool | int | float) else str(value))

    def outcome(self, outcome: str, error: BaseException | None = None) -> None:
        """Record the outcome; an error sets the status to ERROR with an exception event."""
        self.span.set_attribute("esb.outcome", outcome)
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Add a timed event."""
        self.span.add_event(name, attributes or {})


def message_attributes(message: Message) -> dict[str, Any]:
    """Return the attributes every span about ``message`` carries."""
    attributes: dict[str, Any] = {
        "messaging.message.id": message.id,
        "esb.correlation_id": message.correlation_id,
    }
    if message.type:
        attributes["esb.message.type"] = message.type
    if message.source:
        attributes["esb.source"] = message.source
    return attributes


class TracedStep:
    """A route step's processor whose every call is a span (``close`` passed through)."""

    def __init__(self, owner: OTelTracer, route: str, kind: str, processor: Processor) -> None:
        self.owner = owner
        self.route = route
        self.kind = kind
        self.processor = processor
        self.attributes = {"esb.route": route, "esb.step.kind": kind}

    def __call__(self, message: Message) -> list[Message]:
        """Run the step inside a span named after its kind (the message's attributes are on its parent)."""
        with self.owner.tracer.start_as_current_span(f"step {self.kind}", attributes=self.attributes) as span:
            outputs = self.processor(message)
            span.set_attribute("esb.outputs", len(outputs))
            span.set_attribute("esb.outcome", "passed" if outputs else "filtered")
            return outputs

    def close(self) -> None:
        """Close the wrapped step if it holds connections (enrich)."""
        close = getattr(self.processor, "close", None)
        if callable(close):
            close()


class OTelFileSpan:
    """The span of one batch file, started when the file is opened and ended at its end."""

    def __init__(self, span: trace.Span, headers: dict[str, str]) -> None:
        self.span = span
        self.headers = headers
        self._ended = False
        self._lock = threading.Lock()

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Add a timed event (a rejected record)."""
        self.span.add_event(name, attributes or {})

    def end(self, outcome: str, attributes: dict[str, Any] | None = None) -> None:
        """End the span once, with its outcome and the file's figures."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.span.set_attribute("esb.outcome", outcome)
        self.span.set_attributes(attributes or {})
        if outcome == "refused":
            self.span.set_status(Status(StatusCode.ERROR, str((attributes or {}).get("esb.error", ""))[:500]))
        self.span.end()


class OTelTracer:
    """Tracing on: spans through an OTel ``TracerProvider``, W3C trace context in headers."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("esb")
        self.propagator = TraceContextTextMapPropagator()

    @contextmanager
    def route(self, route: str, message: Message) -> Iterator[_OTelSpan]:
        """Span of one route run; its parent is the ``traceparent`` in the message's headers, if valid."""
        parent = self.propagator.extract(message.headers, getter=_GETTER)
        attributes = {"esb.route": route, **message_attributes(message)}
        with self.tracer.start_as_current_span(
            f"route {route}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield _OTelSpan(span)
            for name, value in message.business_keys.items():
                span.set_attribute(f"esb.key.{name}", value)

    def step(self, route: str, kind: str, processor: Processor) -> Processor:
        """Return ``processor`` wrapped in a span per call."""
        return TracedStep(self, route, kind, processor)

    @contextmanager
    def delivery(self, route: str, endpoint: str, message: Message) -> Iterator[_OTelSpan]:
        """Span of one write to one endpoint (a producer span: what it sends carries its context); the
        outlet records a failure itself (:meth:`_OTelSpan.outcome`), so it is not recorded twice."""
        attributes = {"esb.route": route, "esb.endpoint": endpoint, **message_attributes(message)}
        with self.tracer.start_as_current_span(
            f"deliver {endpoint}",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield _OTelSpan(span)

    @contextmanager
    def process_step(
        self,
        process: str,
        instance_id: str,
        step: str,
        kind: str,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Iterator[_OTelSpan]:
        """Span of one process step, child of the context its instance stored when it started (from any
        hub process, before or after a restart); without one (or a malformed one), a new trace."""
        carrier = {TRACEPARENT: traceparent} if traceparent else {}
        if traceparent and tracestate:
            carrier[TRACESTATE] = tracestate
        parent = self.propagator.extract(carrier)
        attributes = {
            "esb.process": process,
            "esb.process.instance": instance_id,
            "esb.process.step": step,
            "esb.step.kind": kind,
        }
        with self.tracer.start_as_current_span(
            f"process {process} {kind}", context=parent, attributes=attributes
        ) as span:
            yield _OTelSpan(span)

    def batch_file(self, system: str, name: str) -> OTelFileSpan:
        """Start the span of one batch file (a new trace: a file has no trace context of its own)."""
        attributes = {"esb.source": system, "esb.batch.file": name}
        span = self.tracer.start_span(
            f"batch file {system}",
            context=otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        headers: dict[str, str] = {}
        self.propagator.inject(headers, context=trace.set_span_in_context(span))
        return OTelFileSpan(span, headers)

    def inject(self, carrier: MutableMapping[str, Any]) -> None:
        """Write the current span's W3C headers into ``carrier``; nothing outside a span."""
        if trace.get_current_span().get_span_context().is_valid:
            self.propagator.inject(carrier)

    def shutdown(self) -> None:
        """Flush buffered spans to the exporter and stop the provider."""
        self.provider.shutdown()


def _exporter(settings: TelemetrySettings) -> SpanExporter | None:
    """Return the exporter ``settings.exporter`` names (OTLP over HTTP/protobuf, console, or none)."""
    if settings.exporter == "none":
        return None
    if settings.exporter == "console":
        return ConsoleSpanExporter(service_name=settings.service_name)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        from esb.exceptions import ConfigError

        raise ConfigError(
            "telemetry.exporter: otlp needs the OTLP exporter: pip install 'esb[otel]'"
        ) from exc
    return OTLPSpanExporter(
        endpoint=settings.endpoint, headers=dict(settings.headers), timeout=settings.timeout
    )


def build_tracer(settings: TelemetrySettings) -> OTelTracer:
    """Return the tracer ``settings`` describe: a sampled provider with a batching exporter."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return OTelTracer(provider)
