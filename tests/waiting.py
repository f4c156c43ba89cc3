"""Waiting for work that makes progress: give up when the progress stops, not when a wall clock runs out.

A test that waits for N messages, orders or tickets to end may need several times its quiet time on a
loaded machine (CI's two cores, other suites beside it); a fixed deadline then fails a run that was only
slow. :func:`wait_for_count` gives up only when the count it polls has not grown for ``stall`` seconds
(the work stopped), with ``limit`` as the outer guard against a run that trickles for ever. Neither is a
timing assertion: a passing run waits only as long as the work takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds without progress after which a wait gives up (a restart, a lease running out and a deadline
#: firing all fit in it many times over, even at load 25 on two cores).
STALL = 90.0
#: The outer guard of every wait, whatever its progress.
LIMIT = 1800.0


def wait_for_count(
    count: Callable[[], int],
    target: int,
    what: str,
    *,
    stall: float = STALL,
    limit: float = LIMIT,
    tolerate: tuple[type[Exception], ...] = (),
    interval: float = 0.2,
) -> int:
    """Poll ``count()`` until it reaches ``target`` and return it; raise AssertionError naming ``what``
    once it has not grown for ``stall`` seconds (or after ``limit``). An exception of ``tolerate`` (a
    database restarting) counts as no progress."""
    start = time.monotonic()
    best, since = -1, start
    while True:
        try:
            now_count = count()
        except tolerate:
            now_count = best
        if now_count >= target:
            return now_count
        now = time.monotonic()
        if now_count > best:
            best, since = now_count, now
        if now - since > stall or now - start > limit:
            waited = f"no progress for {now - since:.0f} s" if now - since > stall else f"{limit:.0f} s"
            raise AssertionError(f"gave up waiting for {what}: {max(best, 0)} of {target} after {waited}")
        time.sleep(interval)
