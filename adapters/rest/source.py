"""Serving TMF resources to peripheral systems: POSTed resources become Deliveries for the route.

A POST is answered 201 once the order is in the endpoint's resource store, its durable inbox; the route
drains the orders it has not accepted yet (``inbox.py``), at start-up and continuously, like a queue
source: unsettled deliveries go back at close, given-back ones come again. The event hub's postman
(``notify.py``), the inbox's lease keeper and the store's prune job (``retention.py``, run by one
process of those sharing the store) run beside the server while the source is connected.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from adapters.http.audit import Audit
from adapters.rest.app import Served
from adapters.rest.config import RESTEndpoint
from adapters.rest.notify import Notifier
from adapters.rest.resources import validator
from adapters.rest.retention import Pruner
from adapters.rest.server import SERVERS, Server
from adapters.rest.store import ResourceStore, store_path
from esb.context import AdapterContext
from esb.exceptions import ConfigError, TransportError
from esb.typing import Delivery


class RESTSource:
    """Reads the resources callers POST to one endpoint served by the hub."""

    def __init__(self, endpoint: RESTEndpoint, context: AdapterContext) -> None:
        if endpoint.listen is None:
            raise ConfigError(f"{context.endpoint}: a REST source needs 'listen:' (host, port, auth)")
        self.endpoint = endpoint
        self.context = context
        self.server: Server | None = None

    @property
    def url(self) -> str:
        """The base URL of the served resources (after ``connect``)."""
        assert self.server is not None, "connect() first"
        return self.server.served.base_url

    def connect(self) -> None:
        """Open the resource store and start (or join) the endpoint's server and its event postman."""
        listen = self.endpoint.listen
        assert listen is not None
        root = self.context.project_dir
        schemas = listen.schemas if listen.schemas.is_absolute() else root / listen.schemas
        if listen.validate_requests and not schemas.is_dir():
            raise ConfigError(f"{self.context.endpoint}: listen.schemas {schemas} is not a folder")
        users = {u.username: u.password(root) for u in listen.auth.users}
        checkers: dict[str, Any] = {
            kind: validator(kind, schemas) if listen.validate_requests else None for kind in listen.resources
        }
        store = ResourceStore(store_path(self.context)).open()
        audit = Audit(listen.base_path, self.context.services.metrics, protocol="rest")
        served = Served(
            self.context.endpoint, listen, users, store, audit, checkers, self.endpoint.message_type
        )
        try:
            self.server = SERVERS.attach(served, root)
        except BaseException:
            store.close()
            raise
        if self.server.served is not served:
            store.close()  # another worker's server answers: its store is the one in use
            return
        self.server.notifier = Notifier(store, listen.events, self.context)
        self.server.notifier.start()
        self.server.pruner = Pruner(store, listen.store, self.context)
        self.server.pruner.start()
        served.inbox.start()

    def read(self, timeout: float) -> Delivery | None:
        """Return the next stored order no route accepted yet, or None after ``timeout`` seconds; a store
        that cannot be read (locked beyond its busy timeout, a full disk) is a TransportError (the
        worker reconnects)."""
        assert self.server is not None, "connect() first"
        try:
            return self.server.served.inbox.get(timeout)
        except sqlite3.Error as exc:
            raise TransportError(
                f"{self.context.endpoint}: the resource store cannot be read: {exc}"
            ) from exc

    def close(self) -> None:
        """Stop serving (when this was the last reader); unsettled orders go back to the inbox."""
        if self.server is None:
            return
        server, self.server = self.server, None
        if SERVERS.detach(server):  # the last reader left: the server stopped
            server.served.inbox.stop()
            if server.pruner is not None:
                server.pruner.stop()
            if server.notifier is not None:
                server.notifier.stop()
                server.notifier.join(10)
            server.served.store.close()

    def __enter__(self) -> RESTSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
