"""Circuit breakers compared: the pool's own (adapters/pool/breaker.py) and the PyPI libraries.

Three measurements per breaker, each where the library is installed (pybreaker, circuitbreaker,
purgatory are not project dependencies: install them in a scratch environment to compare):

1. overhead: the cost a closed breaker adds to one successful call (median of 5 runs of 200,000 calls,
   minus a bare call), in microseconds;
2. concurrency: 4 threads each making 25 calls of 5 ms through one closed breaker; the wall time shows
   whether the breaker holds a lock across the call (serialising the members' calls: 4 x slower);
3. half-open: once the open time is over, 4 threads call at once a member that is still down (it fails
   after 50 ms); how many reach it (a single trial is 1, the others refused).

Usage: ``python bench/breaker_bench.py`` (PYTHONPATH must reach the project and the libraries).
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

CALLS = 200_000


def ok() -> int:
    """The guarded call: does nothing."""
    return 1


def timed(call: Callable[[], Any], n: int = CALLS) -> float:
    """Median microseconds per call over 5 runs."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            call()
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def concurrently(call: Callable[[], Any], threads: int = 4, each: int = 25) -> float:
    """Wall seconds for ``threads`` threads making ``each`` calls."""

    def worker() -> None:
        for _ in range(each):
            call()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - start


def through_half_open(call: Callable[[Callable[[], Any]], Any]) -> int:
    """How many of 4 simultaneous callers reach the member once the open time is over."""
    reached = []
    barrier = threading.Barrier(4)

    def member() -> None:
        reached.append(1)
        time.sleep(0.05)
        raise ConnectionError("still down")

    def worker() -> None:
        barrier.wait()
        with contextlib.suppress(Exception):  # refused by the breaker, or the member's own failure
            call(member)

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(reached)


def slow() -> None:
    """A member call of 5 ms."""
    time.sleep(0.005)


# -- the breakers -------------------------------------------------------------------------------------
def ours() -> dict[str, Any]:
    """The pool's breakers: admit + success around the call (what PoolSink does)."""
    from adapters.pool.breaker import PoolBreakers
    from adapters.pool.config import PassiveHealth

    def guarded(breakers: PoolBreakers, func: Callable[[], Any]) -> Any:
        if breakers.admit("m") is None:
            raise RuntimeError("open")
        try:
            value = func()
        except ConnectionError:
            breakers.failure("m", "down")
            raise
        breakers.success("m")
        return value

    closed = PoolBreakers(["m"], PassiveHealth())
    tripped = PoolBreakers(["m"], PassiveHealth(failures=1, base_ejection=0.01))
    tripped.failure("m", "down")
    time.sleep(0.02)
    return {
        "overhead": timed(lambda: guarded(closed, ok)),
        "concurrency": concurrently(lambda: guarded(closed, slow)),
        "half_open": through_half_open(lambda f: guarded(tripped, f)),
    }


def pybreaker_() -> dict[str, Any]:
    """pybreaker.CircuitBreaker.call."""
    import pybreaker

    closed = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    tripped = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=0.01)
    with contextlib.suppress(Exception):
        tripped.call(lambda: 1 / 0)
    time.sleep(0.02)
    return {
        "overhead": timed(lambda: closed.call(ok)),
        "concurrency": concurrently(lambda: closed.call(slow)),
        "half_open": through_half_open(tripped.call),
    }


def circuitbreaker_() -> dict[str, Any]:
    """circuitbreaker.CircuitBreaker as a decorator (its ``call`` does not check the state)."""
    import circuitbreaker

    closed = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60, name="closed")
    tripped = circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=0.01, name="tripped")
    fail = tripped(lambda: 1 / 0)
    with contextlib.suppress(Exception):
        fail()
    time.sleep(0.02)
    fast, slowed = closed(ok), closed(slow)
    return {
        "overhead": timed(fast),
        "concurrency": concurrently(slowed),
        "half_open": through_half_open(lambda f: tripped(f)()),
    }


def purgatory_() -> dict[str, Any]:
    """purgatory.SyncCircuitBreakerFactory with its in-memory unit of work."""
    import purgatory

    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    tripped_factory = purgatory.SyncCircuitBreakerFactory(default_threshold=1, default_ttl=0.01)

    def guarded(fac: Any, name: str, func: Callable[[], Any]) -> Any:
        with fac.get_breaker(name):
            return func()

    with contextlib.suppress(Exception):
        guarded(tripped_factory, "t", lambda: 1 / 0)
    time.sleep(0.02)
    return {
        "overhead": timed(lambda: guarded(factory, "c", ok), CALLS // 10),
        "concurrency": concurrently(lambda: guarded(factory, "c", slow)),
        "half_open": through_half_open(lambda f: guarded(tripped_factory, "t", f)),
    }


def main() -> None:
    """Print one line per breaker."""
    bare = timed(ok)
    print(f"bare call: {bare:.3f} us")
    for name, run in (("ours", ours), ("pybreaker", pybreaker_), ("circuitbreaker", circuitbreaker_),
                      ("purgatory", purgatory_)):  # fmt: skip
        try:
            result = run()
        except ImportError:
            print(f"{name}: not installed")
            continue
        print(
            f"{name}: +{result['overhead'] - bare:.2f} us per call; 4 threads x 25 calls of 5 ms: "
            f"{result['concurrency']:.2f} s; callers reaching a half-open member: {result['half_open']} of 4"
        )


if __name__ == "__main__":
    main()
