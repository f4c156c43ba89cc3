"""A consumer in its own process, for the contract suite's crash and sharing tests.

``python queue_worker.py SETTINGS_JSON QUEUE MODE``: ``hold`` reads one message, prints its id and waits
(to be SIGKILLed before acking); ``drain`` reads and acks, printing each id, until it is idle and
nothing is ready on the queue or leased to another consumer.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext

#: Seconds without a delivery after which ``drain`` takes the queue to be empty.
IDLE = 2.0


def main() -> None:
    """Run the worker."""
    settings = Settings.model_validate_json(sys.argv[1])
    context = AdapterContext(settings=settings, project_dir=Path("."), endpoint="test.worker")
    endpoint = QueueEndpoint(queue=sys.argv[2])
    with QueueAdapter().source(endpoint, context) as source:
        print("ready", flush=True)
        if sys.argv[3] == "hold":
            delivery = None
            while delivery is None:
                delivery = source.read(1.0)
            print(delivery.message.id, flush=True)
            time.sleep(60)
            return
        # drained means: nothing arrived for IDLE seconds AND the broker has nothing ready on the queue,
        # nor (SQLite transport) anything leased to the other worker, which it may give back as it stops
        # (a broker pausing under load, or messages given back by the other worker, are not "empty")
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            delivery = source.read(IDLE)
            if delivery is None:
                stats = QueueAdapter().queue_stats(endpoint, context)
                if stats["ready"] == 0 and stats.get("in_flight", 0) == 0:
                    break
                continue
            delivery.ack()
            print(delivery.message.id, flush=True)


if __name__ == "__main__":
    main()
