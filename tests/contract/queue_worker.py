"""A consumer in its own process, for the contract suite's crash and sharing tests.

``python queue_worker.py SETTINGS_JSON QUEUE MODE``: ``hold`` reads one message, prints its id and waits
(to be SIGKILLed before acking); ``drain`` reads and acks until idle for IDLE seconds, printing each id.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.context import AdapterContext
from esb.settings import Settings

#: Seconds without a delivery after which ``drain`` takes the queue to be empty.
IDLE = 4.0


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
        # idle for IDLE seconds means drained: generous, so a broker pausing under load (a busy CI
        # machine) is not mistaken for an empty queue
        while (delivery := source.read(IDLE)) is not None:
            delivery.ack()
            print(delivery.message.id, flush=True)


if __name__ == "__main__":
    main()
