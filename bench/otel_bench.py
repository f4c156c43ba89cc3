"""What OpenTelemetry tracing costs: the CRM-order route with tracing off (the default) against on.

    .venv/bin/python bench/otel_bench.py [--messages N] [--rounds N]

- throughput of the real crm-order-to-iom route (bench/route_bench.py's hub run, embedded transport, one
  worker, journal on) on a backlog of N orders: tracing off (baseline), on with spans made but not
  exported (exporter none), and on with a batching exporter (the SDK's BatchSpanProcessor, as OTLP uses,
  into memory so the network is not measured). Rounds alternate the three and the best of each is kept.
- the per-message cost of the hooks themselves with tracing off (route, 3 steps, delivery, wire headers).
- the import time the SDK adds (fresh interpreters): why only ``esb run`` with telemetry on pays it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from route_bench import ROUTE, bodies, hub_project, publish, wait_done

from esb import telemetry
from esb.logging import configure_logging
from esb.message import Message
from esb.runtime.hub import Hub
from esb.telemetry.otel import OTelTracer

ROOT = Path(__file__).resolve().parents[1]


def throughput(payloads: list[bytes], mode: str) -> tuple[float, int]:
    """Return (msg/s, spans exported) of the route on a backlog, tracing as ``mode`` says."""
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    exporter = InMemorySpanExporter()
    provider: TracerProvider | None = None
    if mode == "on-none":
        project.settings.telemetry.enabled = True
        project.settings.telemetry.exporter = "none"
    elif mode == "on-batch":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        telemetry.install(OTelTracer(provider))
    ids = publish(project, payloads, f"tp-{mode}")
    hub = Hub(project, route_ids=[ROUTE])
    start = time.perf_counter()
    hub.start()
    wait_done(hub, ids)
    rate = len(ids) / (time.perf_counter() - start)
    hub.stop()
    if provider is not None:
        provider.force_flush()
        telemetry.install(telemetry.NOOP)
        provider.shutdown()
    return rate, len(exporter.get_finished_spans())


def hooks_off_ns(rounds: int = 200_000) -> float:
    """Return ns per message of the hooks a message meets with tracing off (route, 3 steps, delivery)."""
    tracer = telemetry.tracer()
    assert tracer is telemetry.NOOP
    message = Message(body=b"x")
    start = time.perf_counter_ns()
    for _ in range(rounds):
        with tracer.route("r", message) as span:
            with tracer.delivery("r", "e", message) as sent:
                telemetry.inject({})
                sent.outcome("delivered")
            span.outcome("delivered")
    return (time.perf_counter_ns() - start) / rounds


def spans_us(ratio: float, rounds: int = 5000) -> float:
    """Return µs per message of the spans alone (route, 4 steps, delivery, wire headers), no hub, for
    new traces sampled at ``ratio`` (an unsampled span is a non-recording one: cheaper)."""
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    tracer = OTelTracer(provider)
    message = Message(body=b"x")
    step = tracer.step("r", "transform", lambda m: [m])
    start = time.perf_counter()
    for _ in range(rounds):
        with tracer.route("r", message) as span:
            for _ in range(4):
                step(message)
            with tracer.delivery("r", "e", message):
                message.wire_headers()
            span.outcome("delivered")
    return (time.perf_counter() - start) / rounds * 1e6


def import_ms() -> tuple[float, float, float]:
    """Return (ms) importing the engine, then what the OTel API/SDK and the OTLP exporter add to it, each
    the best of 5 fresh interpreters (marginal costs, measured after the engine is loaded)."""
    code = (
        "import time; t0 = time.perf_counter(); import esb.runtime.hub; t1 = time.perf_counter();"
        "import esb.telemetry.otel; t2 = time.perf_counter();"
        "import opentelemetry.exporter.otlp.proto.http.trace_exporter; t3 = time.perf_counter();"
        "print(t1 - t0, t2 - t1, t3 - t2)"
    )
    runs = [
        [float(x) * 1000 for x in subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()]
        for _ in range(5)
    ]  # fmt: skip
    return min(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs)


def main() -> None:
    """Run the measurements and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    configure_logging("critical", "console")
    payloads = bodies(args.messages)
    modes = ("off", "on-none", "on-batch")
    best: dict[str, tuple[float, int]] = {m: (0.0, 0) for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            rate, spans = throughput(payloads, mode)
            if rate > best[mode][0]:
                best[mode] = (rate, spans)
    base = best["off"][0]
    print(f"messages: {args.messages}, best of {args.rounds} alternating rounds")
    print(f"{'crm-order-to-iom, 1 worker, journal on':<52} {'msg/s':>8} {'vs off':>7} {'spans':>7}")
    labels = {
        "off": "tracing off (default, baseline)",
        "on-none": "tracing on, spans made, exporter none",
        "on-batch": "tracing on, BatchSpanProcessor to memory",
    }
    for mode in modes:
        rate, spans = best[mode]
        print(f"{labels[mode]:<52} {rate:>8.0f} {rate / base:>7.2f} {spans:>7}")
    print(f"hooks with tracing off: {hooks_off_ns():.0f} ns per message (route + delivery + wire inject)")
    sampled, unsampled = spans_us(1.0), spans_us(0.0)
    print(f"spans alone, 6 per message: {sampled:.0f} µs sampled, {unsampled:.0f} µs not sampled")
    hub, sdk, otlp = import_ms()
    print(f"import esb.runtime.hub {hub:.0f} ms; then the OTel API+SDK +{sdk:.0f} ms", end="")
    print(f"; then the OTLP exporter +{otlp:.0f} ms")


if __name__ == "__main__":
    main()
