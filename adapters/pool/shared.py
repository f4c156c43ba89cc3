"""One pool's state in this process, shared by every sink of the pool (every route worker writing to it).

The breakers (passive health), the strategy's rotation, the metrics and the status file for ``esb
health``. Kept per pool name and configuration: a reload that changes the pool starts afresh.
"""

from __future__ import annotations

import threading
import time

from adapters.pool.breaker import Clock, PoolBreakers
from adapters.pool.config import PoolEndpoint
from adapters.pool.metrics import STATE_VALUES, PoolMetrics, pool_metrics
from adapters.pool.status import status_dir, write_status
from adapters.pool.strategies import Strategy, make_strategy
from esb.context import AdapterContext
from esb.logging import get_logger

log = get_logger("pool")


class PoolShared:
    """Breakers, strategy, metrics and status file of one pool in this process."""

    def __init__(
        self, endpoint: PoolEndpoint, context: AdapterContext, clock: Clock = time.monotonic
    ) -> None:
        self.name = context.endpoint
        self.members = [m.endpoint for m in endpoint.members]
        self.metrics: PoolMetrics = pool_metrics(context.services.metrics)
        self.strategy: Strategy = make_strategy(endpoint.strategy, endpoint.members)
        self.breakers = PoolBreakers(self.members, endpoint.health, clock=clock, on_change=self._changed)
        self._folder = status_dir(context)
        self._dirty = threading.Event()
        self._write_lock = threading.Lock()
        for member in self.members:
            self.metrics.state.labels(self.name, member).set(0)

    def _changed(self, member: str, old: str, new: str) -> None:
        """A member's breaker moved (called under the breakers' lock: only note it)."""
        self.metrics.state.labels(self.name, member).set(STATE_VALUES[new])
        if new == "open":
            self.metrics.ejections.labels(self.name, member).inc()
        log.warning("pool member state", pool=self.name, member=member, old=old, new=new)
        self._dirty.set()

    def flush_status(self) -> None:
        """Write the status file when a member's state changed since the last write (never raises)."""
        if not self._dirty.is_set():
            return
        with self._write_lock:
            if not self._dirty.is_set():
                return
            self._dirty.clear()
            try:
                write_status(self._folder, self.breakers.snapshot(), self.breakers.clock())
            except OSError as exc:  # health reporting must never fail a delivery
                log.warning("pool status not written", pool=self.name, error=str(exc))


_SHARED: dict[tuple[str, str, str], PoolShared] = {}
_LOCK = threading.Lock()


def shared_state(endpoint: PoolEndpoint, context: AdapterContext) -> PoolShared:
    """Return the pool's state in this process, made at the first sink of this project, pool and
    configuration."""
    key = (str(context.project_dir), context.endpoint, endpoint.model_dump_json())
    with _LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = PoolShared(endpoint, context)
        return found
