"""The queue adapter alone on RabbitMQ: CPU per message of receive, publish + confirms and ack.

    .venv/bin/python bench/queue_transport_profile.py [--messages 4000] [--rounds 3] [--profile]

Starts a throwaway RabbitMQ node on loopback and, per round, fills a quorum queue with ``--messages``
persistent messages of the CRM orders' mean size (~2,250 bytes, esb's headers), then moves them to a
second queue the way the route worker's batched path does: up to 200 deliveries read from a
:class:`QueueSource` (prefetch 300), published with one ``QueueSink.write_many`` (confirms once per
batch), then each delivery acked. Prints the thread CPU (``time.thread_time``) per message of the three
stages and their sum, median of ``--rounds``, with the load average; ``--profile`` prints a cProfile of
one more round instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import shutil
import tempfile

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from tests.integration.rabbit_server import RabbitServer

BATCH = 200


def context(url: str) -> AdapterContext:
    """The production broker settings (prefetch 300) for ``url``."""
    settings = Settings.model_validate({"broker": {"url": url, "prefetch": 300}})
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="bench.queue")


def fill(adapter: QueueAdapter, ctx: AdapterContext, endpoint: QueueEndpoint, count: int) -> None:
    """Publish ``count`` order-sized messages to ``endpoint``."""
    body = os.urandom(1125).hex().encode()
    with adapter.sink(endpoint, ctx) as sink:
        for start in range(0, count, BATCH):
            sink.write_many(
                [
                    Message(
                        body=body, type="crm.order", source="crm.orders", business_keys={"order_id": f"SO{n}"}
                    )
                    for n in range(start, min(start + BATCH, count))
                ]
            )


def move(
    adapter: QueueAdapter, ctx: AdapterContext, source_ep: QueueEndpoint, target: QueueEndpoint, count: int
) -> dict[str, float]:
    """Move ``count`` messages in batches; thread CPU seconds per stage."""
    spent = {"receive": 0.0, "publish + confirms": 0.0, "ack": 0.0}
    moved = 0
    with adapter.source(source_ep, ctx) as source, adapter.sink(target, ctx) as sink:
        while moved < count:
            t0 = time.thread_time()
            first = source.read(5)
            assert first is not None, "the queue ran dry"
            batch = [first]
            while len(batch) < BATCH and (more := source.read(0)) is not None:
                batch.append(more)
            t1 = time.thread_time()
            sink.write_many([d.message for d in batch])
            t2 = time.thread_time()
            for delivery in batch:
                delivery.ack()
            t3 = time.thread_time()
            spent["receive"] += t1 - t0
            spent["publish + confirms"] += t2 - t1
            spent["ack"] += t3 - t2
            moved += len(batch)
        source.read(0)  # what the worker does next (a source may settle late)
    return spent


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rabbit = RabbitServer(Path(tempfile.mkdtemp(prefix="esb-rabbit-")))
    adapter = QueueAdapter()
    results: list[dict[str, float]] = []
    try:
        rabbit.start()
        rabbit.setup_user()
        url = rabbit.create_vhost("transport")
        ctx = context(url)
        for round_no in range(args.rounds + (1 if args.profile else 0)):
            source_ep, target = QueueEndpoint(queue=f"in-{round_no}"), QueueEndpoint(queue=f"out-{round_no}")
            fill(adapter, ctx, source_ep, args.messages)
            if args.profile and round_no == args.rounds:
                profiler = cProfile.Profile(time.thread_time)  # CPU, not waits
                profiler.enable()
                move(adapter, ctx, source_ep, target, args.messages)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            else:
                results.append(move(adapter, ctx, source_ep, target, args.messages))
    finally:
        rabbit.cleanup()
        shutil.rmtree(rabbit.base, ignore_errors=True)
    load = os.getloadavg()[0]
    for stage in (*results[0], "sum") if results else ():
        values = [1e6 * (sum(r.values()) if stage == "sum" else r[stage]) / args.messages for r in results]
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"{stage:<20} CPU µs/msg median {statistics.median(values):6.1f}  ({each})")
    print(f"load average {load:.1f}")


if __name__ == "__main__":
    main()
