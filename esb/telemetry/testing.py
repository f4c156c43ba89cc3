"""Recording the hub's spans in memory, for tests (the SDK's in-memory exporter, exported at span end)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from esb import telemetry
from esb.telemetry.otel import OTelTracer


class RecordedSpans:
    """The spans ended while recording, with look-ups by name."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        """Every ended span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The ended spans called ``name``."""
        return [s for s in self.all() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        """The one ended span called ``name`` (AssertionError when there are none or several)."""
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.all()]}"
        return found[0]


@contextmanager
def recorded_spans() -> Iterator[RecordedSpans]:
    """Turn tracing on with an in-memory exporter for the block; the previous tracer comes back after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = telemetry.install(OTelTracer(provider))
    try:
        yield RecordedSpans(exporter)
    finally:
        telemetry.install(previous)
        provider.shutdown()
