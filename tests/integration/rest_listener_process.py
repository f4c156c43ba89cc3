"""A REST listener in a process of its own, for the tests that need two of them on one store or kill one:

    python -m tests.integration.rest_listener_process DATA_DIR [ack|hang]

serves channel.rest_orders on a free loopback port with the store under DATA_DIR, a route thread acking
every order at once and printing ``ROUTED <order id> <delivery count>`` (``hang``: taking each order and
never settling it, as a hub killed mid-route), prints ``LISTENING <the resources' base URL>`` and serves
until its stdin closes. The environment's ``TEST_REST_STORE`` (JSON) gives the endpoint's ``store``
options (retention and its prune job).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from adapters.rest.config import RESTEndpoint
from adapters.rest.source import RESTSource
from esb.config.settings import Settings
from esb.context import AdapterContext

REPO = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "TEST_REST_PASSWORD"
READY = "LISTENING"
STORE_ENV = "TEST_REST_STORE"


def main() -> None:
    """Serve until stdin closes."""
    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "listen": {"port": 0, "reply_timeout": "5s",
         "store": json.loads(os.environ.get(STORE_ENV) or "{}"),
         "auth": {"users": [{"username": "channel", "password_env": PASSWORD_ENV}]}}}
    )  # fmt: skip
    context = AdapterContext(Settings(data_dir=Path(sys.argv[1])), REPO, "channel.rest_orders")
    source = RESTSource(endpoint, context)
    source.connect()

    hang = sys.argv[2:3] == ["hang"]

    def route() -> None:
        while source.server is not None:
            delivery = source.read(0.05)
            if delivery is not None and not hang:
                delivery.ended("delivered")
                delivery.ack()
                print(f"ROUTED {delivery.message.id} {delivery.delivery_count}", flush=True)

    print(f"{READY} {source.url}", flush=True)  # before any ROUTED line
    threading.Thread(target=route, daemon=True).start()
    sys.stdin.read()
    source.close()


if __name__ == "__main__":
    main()
