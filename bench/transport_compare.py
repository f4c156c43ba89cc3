"""Compare kombu's embedded transports with the hub's SQLite transport, in one run.

Pass-through: publish N persistent messages on one connection, then consume and ack them on another
(what a route does). Then fill the queue with ``--fill`` messages and measure again on top of them (the
folder-fill / table-fill effect). Ratios are against ``memory://`` (no durability at all) measured in the
same run.

    .venv/bin/python bench/transport_compare.py            # N=5000, fill=50000
    .venv/bin/python bench/transport_compare.py -n 2000 --fill 10000 --only sqlite,filesystem
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

import adapters.queue.sqlite_transport  # noqa: F401  (registers sqlite://)

BODY = b'{"order_id":"SO-000123","msisdn":"8613800000000","items":[{"sku":"SIM-5G","qty":1}]}' * 4


def transports(root: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (URL, transport options) of every transport compared."""
    fs = root / "fs"
    fs.mkdir()
    return {
        "memory": ("memory://", {}),
        "filesystem": ("filesystem://", {"data_folder_in": str(fs), "data_folder_out": str(fs)}),
        "sqla+sqlite": (f"sqla+sqlite:///{root}/sqla.db", {}),
        "sqlite (NORMAL)": (f"sqlite:///{root}/esb-normal.db", {"synchronous": "NORMAL"}),
        "sqlite (FULL)": (f"sqlite:///{root}/esb-full.db", {"synchronous": "FULL"}),
    }


def _conn(url: str, options: dict[str, Any]) -> Connection:
    conn = Connection(url, transport_options=dict(options))
    conn.transport.polling_interval = 0.01  # sqla hands transport_options to create_engine: set it here
    return conn


def publish(url: str, options: dict[str, Any], queue: Queue, n: int) -> float:
    """Publish ``n`` persistent messages; return seconds taken."""
    with _conn(url, options) as conn:
        producer = Producer(conn.channel(), exchange=queue.exchange)
        queue(producer.channel).declare()
        start = time.perf_counter()
        for _ in range(n):
            producer.publish(BODY, routing_key=queue.routing_key, delivery_mode=2,
                             content_type="application/json", content_encoding="binary")
        return time.perf_counter() - start


def consume(url: str, options: dict[str, Any], queue: Queue, n: int) -> float:
    """Consume and ack ``n`` messages (prefetch 100); return seconds taken."""
    got = 0

    def on_message(message: Any) -> None:
        nonlocal got
        message.ack()
        got += 1

    with _conn(url, options) as conn:
        consumer = Consumer(conn.channel(), queues=[queue], on_message=on_message)
        consumer.qos(prefetch_count=100)
        start = time.perf_counter()
        with consumer:
            while got < n:
                conn.drain_events(timeout=10)
        return time.perf_counter() - start


def measure(
    name: str, url: str, options: dict[str, Any], n: int, fill: int, out: Callable[[str], None]
) -> dict[str, float]:
    """Return msg/s for publish, consume+ack, pass-through; empty queue and on top of ``fill``."""
    queue = Queue("bench", Exchange("bench", type="direct"), routing_key="bench", durable=True)
    res: dict[str, float] = {}
    pub, con = publish(url, options, queue, n), consume(url, options, queue, n)
    res.update(pub=n / pub, con=n / con, thru=n / (pub + con))
    if fill:
        fill_s = publish(url, options, queue, fill)
        m = min(n, 2000)
        pub, con = publish(url, options, queue, m), consume(url, options, queue, m)
        res.update(fill_pub=fill / fill_s, filled_thru=m / (pub + con), filled_con=m / con)
    out(f"  {name}: done")
    return res


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5000, help="messages per pass-through run (default 5000)")
    parser.add_argument("--fill", type=int, default=50_000, help="messages queued for the fill run (0: skip)")
    parser.add_argument("--only", default="", help="comma-separated transport names (prefix match)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="esb-bench-"))
    try:
        results = {}
        for name, (url, options) in transports(root).items():
            if args.only and not any(name.startswith(p) for p in args.only.split(",")):
                continue
            results[name] = measure(name, url, options, args.n, args.fill, print)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = results.get("memory", next(iter(results.values())))["thru"]
    print(f"\nN={args.n}, fill={args.fill}, body={len(BODY)} bytes, msg/s (ratio = pass-through / memory://)")
    head = f"{'transport':<17}{'publish':>9}{'cons+ack':>10}{'pass-thru':>11}{'ratio':>7}"
    if args.fill:
        head += f"{'fill pub':>10}{'cons@fill':>11}{'thru@fill':>11}{'fill/empty':>11}"
    print(head)
    for name, r in results.items():
        line = f"{name:<17}{r['pub']:>9.0f}{r['con']:>10.0f}{r['thru']:>11.0f}{r['thru'] / base:>7.2f}"
        if args.fill:
            line += (f"{r['fill_pub']:>10.0f}{r['filled_con']:>11.0f}{r['filled_thru']:>11.0f}"
                     f"{r['filled_thru'] / r['thru']:>11.2f}")
        print(line)


if __name__ == "__main__":
    main()
