"""The listeners' audit trail and throttle: every refusal logged and counted, repeated failures locked out.

Shared by the SOAP listener and the REST listener (``protocol="rest"``: ``REST request refused``,
``esb_rest_refused_total``); described here for SOAP.

Each refused request is one structlog line ``SOAP request refused`` (level warning) with ``path``,
``client`` (the peer's address), ``user`` (the name it gave, if any), ``reason`` and ``detail`` (the
fault text), and one increment of ``esb_soap_refused_total{path, reason}``. Never a password, digest or
nonce. Reasons: see :data:`REASONS`.

Authentication failures with credentials given (:data:`THROTTLED`) count towards the client address's
lockout: ``max_failures`` within ``window`` seconds lock the address out for ``lockout`` seconds, during
which every request from it is refused with HTTP 429 (``locked_out``), right password or not. The
lockout is logged once (``SOAP client locked out``) and counted in ``esb_soap_lockouts_total{path}``;
the requests refused during it are counted, not logged one by one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from adapters.http.options import ThrottleOptions
from esb.logging import get_logger

#: Every reason a request is refused for, as logged and in the metric's ``reason`` label.
REASONS = (
    "missing_credentials", "bad_credentials", "stale_token", "replayed_nonce", "nonce_store_unavailable",
    "not_allowed", "locked_out", "unsafe_xml", "oversize", "malformed", "unknown_operation",
    "wrong_soap_action", "must_understand", "schema_violation", "bad_payload",
)  # fmt: skip
#: Reasons that count towards a client's lockout: credentials given, and wrong (or a replayed token).
THROTTLED = frozenset({"bad_credentials", "stale_token", "replayed_nonce"})
#: Most client addresses remembered; past it the stalest are forgotten first.
CAPACITY = 10_000

#: registry -> protocol -> counters; weak, so a registry that is gone (a test's) cannot be mistaken for a
#: new one that reuses its id()
_COUNTERS: weakref.WeakKeyDictionary[Any, dict[str, tuple[Counter, Counter]]] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def counters(registry: Any, protocol: str = "soap") -> tuple[Counter, Counter]:
    """The listener's counters (refused, lockouts) in ``registry``, registered there once per protocol
    (``esb_soap_refused_total``; the REST listener's are ``esb_rest_...``)."""
    label = protocol.upper()
    with _COUNTERS_LOCK:
        mine = _COUNTERS.setdefault(registry, {})
        found = mine.get(protocol)
        if found is None:
            refused = Counter(
                f"esb_{protocol}_refused",
                f"Requests the {label} listener refused (credentials, lockout, unsafe or bad requests), "
                "per path and reason",
                ["path", "reason"],
                registry=registry,
            )
            lockouts = Counter(
                f"esb_{protocol}_lockouts",
                "Client addresses locked out after repeated authentication failures, per path",
                ["path"],
                registry=registry,
            )
            found = mine[protocol] = (refused, lockouts)
        return found

_FAULT_REASONS = {
    "TooLarge": "oversize",
    "UnsafeXML": "unsafe_xml",
    "MalformedXML": "malformed",
    "NotSOAP": "malformed",
    "BadRequest": "malformed",
    "UnknownOperation": "unknown_operation",
    "WrongSOAPAction": "wrong_soap_action",
    "MustUnderstand": "must_understand",
    "SchemaViolation": "schema_violation",
    "BadPayload": "bad_payload",
    "LockedOut": "locked_out",
}


def reason_of(code: str) -> str:
    """Return the audit reason of a fault code the listener answers (``malformed`` for unknown ones)."""
    return _FAULT_REASONS.get(code, "malformed")


class Throttle:
    """Authentication failures per client address, and the addresses locked out now (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = CAPACITY) -> None:
        self.clock = clock
        self.capacity = capacity
        self._failures: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, address: str) -> float | None:
        """Return the seconds ``address`` stays locked out, or None when it is not."""
        now = self.clock()
        with self._lock:
            until = self._locked.get(address)
            if until is None:
                return None
            if until <= now:
                del self._locked[address]
                return None
            return until - now

    def failed(self, address: str, options: ThrottleOptions) -> bool:
        """Count one failure from ``address``; True when it starts a lockout."""
        if options.max_failures == 0:
            return False
        now = self.clock()
        with self._lock:
            times = self._failures.setdefault(address, deque(maxlen=options.max_failures))
            times.append(now)
            while times and times[0] <= now - options.window:
                times.popleft()
            if len(times) < options.max_failures:
                self._forget_stale(now, options.window)
                return False
            del self._failures[address]
            self._locked[address] = now + options.lockout
            return True

    def _forget_stale(self, now: float, window: float) -> None:
        if len(self._failures) <= self.capacity:
            return
        for address in [a for a, t in self._failures.items() if not t or t[-1] <= now - window]:
            del self._failures[address]
        while len(self._failures) > self.capacity:
            del self._failures[next(iter(self._failures))]


class Audit:
    """Logs and counts the refusals of one served path, and keeps its throttle."""

    def __init__(
        self, path: str, metrics: Any, clock: Callable[[], float] = time.monotonic, protocol: str = "soap"
    ) -> None:
        self.path = path
        self.label = protocol.upper()
        self.refusals, self.lockouts = counters(metrics, protocol)
        self.throttle = Throttle(clock)
        self.log = get_logger(f"{protocol}-listener")

    def refused(
        self, reason: str, client: str, user: str | None, detail: str, options: ThrottleOptions
    ) -> None:
        """Log and count one refusal; count it towards the client's lockout if it is a failed login."""
        self.refusals.labels(self.path, reason).inc()
        if reason == "locked_out":
            return
        self.log.warning(
            f"{self.label} request refused",
            path=self.path,
            client=client,
            user=user,
            reason=reason,
            detail=detail,
        )
        if reason in THROTTLED and self.throttle.failed(client, options):
            self.lockouts.labels(self.path).inc()
            self.log.warning(
                f"{self.label} client locked out",
                path=self.path,
                client=client,
                user=user,
                failures=options.max_failures,
                window_seconds=options.window,
                lockout_seconds=options.lockout,
            )
