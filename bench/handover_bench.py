"""The listeners' hand-over (adapters/http/exchange.py) against the queue + Event design it replaced.

    .venv/bin/python bench/handover_bench.py [--requests 20000] [--runs 5]

One "server" thread hands requests one at a time to one "route" thread that acks each at once, and waits
for the ack: what a SOAP or REST request pays to cross to its route and back, without HTTP or parsing.
Three ways, alternated in each run, CPU (process time, both threads) and context switches (all threads,
from /proc) per round trip:

- **queue + Event**: ``queue.Queue`` for the inbox, a ``threading.Event`` per request (the design before
  issue 19's second pass, rebuilt here as the baseline);
- **Exchange + Inbox**: the listeners' own (``adapters.http.exchange``);
- **two locks**: the least two Python threads can do, a lock released each way (the floor).
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.http.exchange import Exchange, Inbox
from esb.message import Message

Trip = Callable[[int], None]


def _switches() -> int:
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if "ctxt_switches" in line)
    return total


def queue_and_event(count: int) -> None:
    """The baseline: queue.Queue inbox, one threading.Event per request."""
    inbox: queue.Queue[threading.Event | None] = queue.Queue(maxsize=1000)

    def route() -> None:
        while (done := inbox.get(timeout=1.0)) is not None:
            done.set()

    worker = threading.Thread(target=route)
    worker.start()
    for _ in range(count):
        done = threading.Event()
        inbox.put(done, timeout=1.0)
        done.wait(5.0)
    inbox.put(None)
    worker.join()


def exchange_and_inbox(count: int) -> None:
    """The listeners' hand-over: Exchange and Inbox, the route acking each Delivery."""
    inbox = Inbox()
    message = Message(body=b"x")
    stop = threading.Event()

    def route() -> None:
        while not stop.is_set():
            delivery = inbox.get(0.05)
            if delivery is not None:
                delivery.ack()

    worker = threading.Thread(target=route)
    worker.start()
    for _ in range(count):
        exchange = Exchange(message, one_way=True)
        inbox.put(exchange, timeout=1.0)
        exchange.wait(5.0)
    stop.set()
    worker.join()


def two_locks(count: int) -> None:
    """The floor: one lock released to wake the route, one per request released to wake the server."""
    wake = threading.Lock()
    wake.acquire()
    box: list[threading.Lock | None] = []

    def route() -> None:
        while True:
            wake.acquire()
            done = box.pop()
            if done is None:
                return
            done.release()

    worker = threading.Thread(target=route)
    worker.start()
    for _ in range(count):
        done = threading.Lock()
        done.acquire()
        box.append(done)
        wake.release()
        done.acquire()
    box.append(None)
    wake.release()
    worker.join()


WAYS: dict[str, Trip] = {
    "queue + Event": queue_and_event,
    "Exchange + Inbox": exchange_and_inbox,
    "two locks": two_locks,
}


def main() -> None:
    """Alternate the three ways; print each run, then the medians and the ratios to the baseline."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in WAYS}
    for run in range(args.runs):
        names = list(WAYS) if run % 2 == 0 else list(WAYS)[::-1]
        for name in names:
            cpu, switches = time.process_time(), _switches()
            WAYS[name](args.requests)
            cpu, switches = time.process_time() - cpu, _switches() - switches
            figures[name].append((cpu / args.requests * 1e6, switches / args.requests))
            print(
                f"run {run + 1} {name:17} {figures[name][-1][0]:6.1f} µs CPU"
                f" {figures[name][-1][1]:5.2f} switches per round trip | load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    base = statistics.median(c for c, _ in figures["queue + Event"])
    print(f"\nmedians of {args.runs} runs of {args.requests} round trips:")
    for name, rows in figures.items():
        cpu = statistics.median(c for c, _ in rows)
        switches = statistics.median(s for _, s in rows)
        print(f"{name:17} {cpu:6.1f} µs CPU, {switches:5.2f} switches | {cpu / base:.2f} of queue + Event")


if __name__ == "__main__":
    main()
