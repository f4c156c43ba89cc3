"""Serving one WSDL operation to peripheral systems: requests become Deliveries for the route.

Requests arrive on the listener's server threads. With ``listen.inline`` (the default) the server threads
run the route themselves, in turns (``adapters/http/inline.py``, ``esb/runtime/inline.py``); otherwise
they hand each request over to the route's workers through a thread-safe queue. Either way the server
thread answers once the route settles the delivery:

- one-way operation: HTTP 202 once the route has finished with the message (delivered, filtered or
  dead-lettered: in every case journaled, never lost); a Fault if the hub gave it back or did not take it
  within ``reply_timeout``;
- request-reply operation: the route's reply (``delivery.respond``, routes with no ``to``) as the
  operation's output, or a Fault when it is dead-lettered or late.
"""

from __future__ import annotations

import threading

from adapters.http.exchange import Inbox
from adapters.soap.config import SOAPEndpoint
from adapters.soap.nonces import LedgerNonceStore
from adapters.soap.server import LISTENERS, Listener
from adapters.soap.service import Binding
from adapters.soap.sink import endpoint_contract
from esb.context import AdapterContext
from esb.exceptions import ConfigError, TransportError
from esb.typing import Delivery, InlineRoute


class SOAPSource:
    """Reads the requests callers send to one operation of a WSDL served by the hub."""

    def __init__(self, endpoint: SOAPEndpoint, context: AdapterContext) -> None:
        if endpoint.listen is None:
            raise ConfigError(f"{context.endpoint}: a SOAP source needs 'listen:' (host, port, path, auth)")
        self.endpoint = endpoint
        self.context = context
        self.listener: Listener | None = None
        self.binding: Binding | None = None
        self.inline = False
        """True once the route runs on the server threads (:meth:`run_inline`): ``read`` hands out nothing."""
        self._closing = threading.Event()

    @property
    def url(self) -> str:
        """The URL callers post to (after ``connect``)."""
        assert self.listener is not None
        assert self.endpoint.listen is not None
        return f"http://{self.endpoint.listen.host}:{self.listener.port}{self.endpoint.listen.path}"

    def connect(self) -> None:
        """Load the WSDL and start (or join) the listener of this host and port."""
        ep = self.endpoint
        assert ep.listen is not None
        root = self.context.project_dir
        contract = endpoint_contract(ep, self.context)
        info = contract.operation(ep.service, ep.port, ep.operation)
        users = {u.username: u.password(root) for u in ep.listen.auth.users}
        services = self.context.services

        def nonces() -> LedgerNonceStore:
            return LedgerNonceStore(services.one_time_keys())

        binding = Binding(self.context.endpoint, ep, info, users, Inbox(), nonces, services.metrics)
        self.listener, self.binding = LISTENERS.attach(binding, contract)

    def read(self, timeout: float) -> Delivery | None:
        """Return the next request as a Delivery, or None after ``timeout`` seconds (always None while
        the route runs inline: the server threads run it, see :meth:`run_inline`)."""
        assert self.binding is not None, "connect() first"
        if self.inline:
            self._closing.wait(timeout)
            return None
        return self.binding.inbox.get(timeout)

    def run_inline(self, route: InlineRoute | None) -> bool:
        """Run ``route`` on the listener's server threads (``listen.inline``), instead of handing each
        request to the route's worker; False when the endpoint hands over (or ``route`` is None), and
        a route run inline before (a reload) stops."""
        assert self.binding is not None, "connect() first"
        assert self.endpoint.listen is not None
        if route is None or not self.endpoint.listen.inline:
            self.binding.stop_inline()
            return False
        self.binding.adopt_inline(route)
        self.inline = True
        return True

    def close(self) -> None:
        """Stop serving (when this was the last reader); queued requests are answered with a Fault."""
        self._closing.set()
        if self.listener is None or self.binding is None:
            return
        orphans, unused = LISTENERS.detach(self.listener, self.binding)
        for orphan in orphans:  # answered while the listener still serves: the callers get their Fault
            delivery = orphan.take()
            if delivery is not None:
                delivery.ack(TransportError("the hub is stopping"))
        if unused:
            self.listener.stop()
        self.listener = None
        self.binding = None
        self.inline = False

    def __enter__(self) -> SOAPSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
