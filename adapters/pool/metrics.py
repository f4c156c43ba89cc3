"""The pools' metrics, registered once per registry (the engine's shared one: every hub's ``/metrics``).

``esb_pool_calls_total{pool, member, outcome}`` (ok, failed, refused: the peer answered with a
refusal, timeout: a trial over its hard limit), ``esb_pool_ejections_total{pool, member}``,
``esb_pool_breaker_state{pool, member}`` (0 closed, 1 half-open, 2 open: ejected),
``esb_pool_moves_total{pool}`` (a message went on to the next member after a failure) and
``esb_pool_panics_total{pool}`` (every member was ejected: all were tried anyway).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from adapters.pool.breaker import CLOSED, HALF_OPEN, OPEN

STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass(frozen=True)
class PoolMetrics:
    """The pools' metric families in one registry."""

    calls: Counter
    ejections: Counter
    state: Gauge
    moves: Counter
    panics: Counter


_FAMILIES: weakref.WeakKeyDictionary[Any, PoolMetrics] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def pool_metrics(registry: Any) -> PoolMetrics:
    """Return the pools' metric families in ``registry``, registering them there the first time."""
    with _LOCK:
        found = _FAMILIES.get(registry)
        if found is None:
            found = _FAMILIES[registry] = PoolMetrics(
                calls=Counter(
                    "esb_pool_calls",
                    "Calls a pool made to its members, per pool, member and outcome",
                    ["pool", "member", "outcome"],
                    registry=registry,
                ),
                ejections=Counter(
                    "esb_pool_ejections",
                    "Times passive health ejected a member (its breaker opened)",
                    ["pool", "member"],
                    registry=registry,
                ),
                state=Gauge(
                    "esb_pool_breaker_state",
                    "Each member's breaker: 0 closed, 1 half-open (trial), 2 open (ejected)",
                    ["pool", "member"],
                    registry=registry,
                ),
                moves=Counter(
                    "esb_pool_moves",
                    "Messages a pool moved on to the next member after a member failure",
                    ["pool"],
                    registry=registry,
                ),
                panics=Counter(
                    "esb_pool_panics",
                    "Messages sent while every member was ejected (panic mode: all are tried)",
                    ["pool"],
                    registry=registry,
                ),
            )
        return found
