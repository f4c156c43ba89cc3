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
moment would lead alone, and the requests right behind it (still in waitress's I/O loop, or being
parsed and checked on other server threads) would each lead alone in turn, one journal commit each
(measured: batches of 1.8 on average against the hand-over's 3.6, 15-20% more hub CPU per request).
So the leader of a route that batches first lets the threads ready to run go before it
(:meth:`Arrivals.gather`): it yields the interpreter :data:`MIN_YIELDS` times, and more while requests
it knows of are still being checked (at most :data:`MAX_YIELDS`), as PostgreSQL's ``commit_delay``
waits for ``commit_siblings``. A yield costs a system call when no other thread wants the interpreter
(a request alone), and never a timer.
"""

from __future__ import annotations

import threading
import time

from adapters.http.exchange import LEAD, SETTLED, Exchange, Inbox
from esb.typing import InlineRoute

#: How many times a leader yields to the threads ready to run before it runs its batch, at least...
MIN_YIELDS = 4
#: ... and at most, while requests are still being checked (bench/README.md, "listen.inline").
MAX_YIELDS = 32


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
        """Yield the interpreter :data:`MIN_YIELDS` times, then while requests are still being checked
        (:data:`MAX_YIELDS` times in all at most): the threads bringing them run and join the inbox."""
        for done in range(MAX_YIELDS):
            if done >= MIN_YIELDS and self.count <= 0:
                return
            time.sleep(0)  # releases the GIL: the I/O loop and the server threads checking requests run


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
            if arrivals is not None and route.batches:
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
