"""The console's guards: CSRF tokens, login throttling and the response headers every page gets."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

#: Sent with every answer: scripts and styles from our own origin only, no framing, no sniffing.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """Return the session's CSRF token, making one on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_ok(session: MutableMapping[str, Any], given: str | None) -> bool:
    """True when ``given`` (a form field or header) is the session's CSRF token."""
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginThrottle:
    """Refuses logins for a user name or a client after ``attempts`` failures within ``window`` seconds."""

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked_for(self, *keys: str) -> float:
        """Seconds until a login for these keys (user name, client address) is accepted again; 0: now."""
        now = self.clock()
        with self._lock:
            recent = [self._recent(k, now) for k in keys]
            waits = [f[0] + self.window - now for f in recent if len(f) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count one failed login against each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # a spray of names: forget the ones with nothing recent
                self._failures = {k: v for k, v in self._failures.items() if self._recent(k, now)}

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
