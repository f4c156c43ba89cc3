"""A request whose route runs inline: the server threads take turns running the route themselves.

When a listener's route runs inline (``listen.inline``, :mod:`esb.runtime.inline`), no route worker reads
the inbox. A server thread queues its request and, if no other thread leads the route, leads it: it runs
the route for every request waiting then (one batch, so one journal commit for their arrivals and one for
their outcomes, as the route worker's batches), which settles them and wakes their threads; then it hands
the lead to the thread of the first request that came meanwhile, or ends it, and answers its own caller.
Requests that arrive while a leader works wait for its batch to end, and the next leader takes them all:
concurrent requests still share their journal commits (a group commit), and a request that comes alone
crosses no thread at all.

Without a hand-over there is no wake-up latency to gather a batch in: the first request of a quiet
moment would lead alone, and the requests right behind it (still being parsed and checked on other
server threads) would each lead alone in turn, one journal commit each. So a leader first lets the
requests already arriving join (:class:`Arrivals`: it yields the interpreter while some are on their
way, a bounded number of times), as PostgreSQL's ``commit_delay`` waits only when ``commit_siblings``
other transactions are active: a request that comes alone never waits.
"""

from __future__ import annotations

import threading
import time

from adapters.http.exchange import LEAD, SETTLED, Exchange, Inbox
from esb.typing import InlineRoute

#: How many times at most a leader yields for requests on their way before it runs its batch.
MAX_YIELDS = 8


class Arrivals:
    """How many requests a server is checking now that will join a route's inbox (a leader's siblings)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        """A request began (counted until :meth:`leave`)."""
        with self._lock:
            self.count += 1

    def leave(self) -> None:
        """A request joined its inbox or was refused."""
        with self._lock:
            self.count -= 1

    def gather(self) -> None:
        """Yield the interpreter while requests are on their way (at most :data:`MAX_YIELDS` times)."""
        for _ in range(MAX_YIELDS):
            if self.count <= 0:
                return
            time.sleep(0)  # releases the GIL: the server threads checking them run, then join


def settle_inline(
    inbox: Inbox, route: InlineRoute, exchange: Exchange, timeout: float, arrivals: Arrivals | None = None
) -> bool | None:
    """Have ``route`` settle ``exchange`` on this thread or on the current leader's; True when settled
    (acked or answered), False after ``timeout`` without an answer (cancelled unless already taken),
    None when the inbox is full (the route is too far behind). ``arrivals`` counted this request: it
    leaves them once queued."""
    deadline = time.monotonic() + timeout
    lead = inbox.join(exchange, timeout=1.0)
    if arrivals is not None:
        arrivals.leave()
    if lead is None:
        return None
    while True:
        if lead:
            if arrivals is not None:
                arrivals.gather()
            try:
                route.lead(inbox.take_now)
            finally:
                inbox.pass_lead()
        if exchange.settled:
            return True
        turn = exchange.wait_turn(deadline - time.monotonic())
        if turn != LEAD:
            return turn == SETTLED
        lead = True
