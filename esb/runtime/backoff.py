"""Redelivery delays: fixed or exponential, capped, with optional jitter."""

from __future__ import annotations

import random

from esb.config.routes import Redelivery

FINAL_STATES = frozenset({"delivered", "filtered", "dead_lettered"})


def redelivery_delay(policy: Redelivery, attempt: int, rng: random.Random | None = None) -> float:
    """Return the wait before retry number ``attempt`` (1 = the first retry), in seconds."""
    growth = 1 if policy.backoff == "fixed" else 2 ** max(attempt - 1, 0)
    delay = policy.initial * growth
    delay = min(delay, policy.max_delay)
    if policy.jitter and delay > 0:
        delay *= 0.5 + (rng or random).random() * 0.5
    return delay


def is_retryable(exc: BaseException) -> bool:
    """True when redelivering may help: TransportErrors, retryable RemoteErrors, unexpected failures."""
    retryable = getattr(exc, "retryable", None)
    if retryable is None:
        return True  # an unexpected exception (a bug in a Python transform): retry, then dead-letter
    return bool(retryable)
