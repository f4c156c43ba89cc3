"""Writing to a pool: each message to one member, chosen by the strategy among those health admits.

For each message the strategy orders the members; the first one the breakers admit is called. A member
failure (a TransportError, a timeout, a broken connection) counts against the member and the message
goes on to the next admitted member with the same ``idempotency-key`` header (``retry_on_next``); when
every member failed the pool raises a TransportError listing why, and the route's retry policy takes
over. A peer's refusal (RemoteError) or a bad message (MessageError) is an answer: it is raised at once
and no other member is tried. When no member is admitted at all (every one ejected, or on trial
elsewhere) the pool is in panic mode and tries every member in order rather than refusing.

A half-open member's trial call runs in a thread of its own and is given up after ``trial_timeout``:
the member is ejected again, its sink is dropped (closed when the call ends), and the message goes on.
A trial that timed out may still reach its member: the same idempotency key then reaches two members,
and the receivers must act once per key.

A pool sink is used by one thread (its route worker), like every sink; the members' sinks are made and
connected at their first use, so a member that is down when the route starts costs only its own calls.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from adapters.pool.breaker import Admission
from adapters.pool.config import PoolEndpoint
from adapters.pool.shared import PoolShared
from esb.codec import json_body
from esb.context import AdapterContext
from esb.exceptions import ConfigError, DecodeError, MessageError, RemoteError, TransportError
from esb.expressions import Expression
from esb.logging import get_logger
from esb.message import Message
from esb.registry import resolve_adapter
from esb.typing import Requester, capability

log = get_logger("pool")

#: The header every call through a pool carries: the message's own, else its id (stable on redelivery).
IDEMPOTENCY_HEADER = "idempotency-key"
#: What counts against a member: it could not be reached, or did not answer in time.
MEMBER_FAILURES: tuple[type[BaseException], ...] = (TransportError, TimeoutError, ConnectionError)

Call = Callable[[Any, Message, float | None], Any]


class TrialTimeoutError(TransportError):
    """A half-open trial call did not end within ``trial_timeout`` (it may still reach the member)."""


class PoolSink:
    """A sink over a pool's members (see the module docstring)."""

    def __init__(self, endpoint: PoolEndpoint, context: AdapterContext, shared: PoolShared) -> None:
        self.endpoint = endpoint
        self.context = context
        self.shared = shared
        self.name = context.endpoint
        self._configs = {m.endpoint: member_config(context, m.endpoint) for m in endpoint.members}
        self._sinks: dict[str, Any] = {}
        self._connected: set[str] = set()
        self._key = (
            Expression(endpoint.sticky_key, f"{self.name}.sticky_key") if endpoint.sticky_key else None
        )

    # -- the members' sinks -----------------------------------------------------------------------------
    def member_sink(self, name: str, *, fresh: bool = False) -> Any:
        """Return the (unconnected until first use) sink of member ``name``, made on first ask; ``fresh``:
        a new one, kept nowhere (a trial's, made in its own thread)."""
        sink = None if fresh else self._sinks.get(name)
        if sink is None:
            config = self._configs[name]
            sink = resolve_adapter(config.adapter).sink(config, replace(self.context, endpoint=name))
            if not fresh:
                self._sinks[name] = sink
        return sink

    def _ready(self, name: str) -> Any:
        sink = self.member_sink(name)
        if name not in self._connected:
            sink.connect()
            self._connected.add(name)
        return sink

    def _drop(self, name: str) -> Any:
        """Forget member ``name``'s sink and return it; the next use makes a new one."""
        self._connected.discard(name)
        return self._sinks.pop(name, None)

    # -- the contract ---------------------------------------------------------------------------------
    def connect(self) -> None:
        """Nothing at once: each member connects at its first call (a member down now is only ejected)."""

    def write(self, message: Message) -> None:
        """Deliver ``message`` through one member (see the module docstring)."""
        self.dispatch(message, lambda sink, msg, limit: sink.write(msg), None)

    def close(self) -> None:
        """Close every member's sink. Safe to call twice."""
        for name in list(self._sinks):
            _close_quietly(self._drop(name), self.name, name)

    def __enter__(self) -> PoolSink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch -------------------------------------------------------------------------------------
    def sticky_key(self, message: Message) -> str | None:
        """Return the message's sticky key (None unless the strategy is sticky); a body still in bytes or
        text (a route without steps) is read as JSON for it."""
        if self._key is None:
            return None
        if isinstance(message.body, bytes | str) and self.endpoint.format == "json":
            with contextlib.suppress(DecodeError):  # not JSON: the expression sees no body (headers only)
                message = message.replace(body=json_body(message.body, self.name))
        value = self._key.evaluate(message)
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise MessageError(
                f"pool {self.name}: sticky_key {self._key.text!r} gave {value!r} for message {message.id}: "
                "expected a non-empty string or number"
            )
        return str(value)

    def dispatch(self, message: Message, call: Call, timeout: float | None) -> Any:
        """Call one member with ``message``, moving on after member failures; return the call's result."""
        if IDEMPOTENCY_HEADER not in message.headers:
            message = message.replace(headers={**message.headers, IDEMPOTENCY_HEADER: message.id})
        order = self.shared.strategy.order(self.sticky_key(message))
        breakers = self.shared.breakers
        failures: list[str] = []
        try:
            for name in order:
                admission = breakers.admit(name)
                if admission is None:
                    continue
                ok, value = self._attempt(name, admission, message, call, timeout, failures)
                if ok:
                    return value
                if not self.endpoint.retry_on_next:
                    break
            if not failures:  # nothing admitted: panic, every member is tried
                self.shared.metrics.panics.labels(self.name).inc()
                log.warning("pool in panic mode: every member ejected", pool=self.name, message_id=message.id)
                for name in order:
                    ok, value = self._attempt(name, "panic", message, call, timeout, failures)
                    if ok:
                        return value
                    if not self.endpoint.retry_on_next:
                        break
        finally:
            self.shared.flush_status()
        why = "; ".join(failures)
        raise TransportError(f"no member of the pool took message {message.id}: {why}", endpoint=self.name)

    def _attempt(
        self,
        name: str,
        admission: Admission,
        message: Message,
        call: Call,
        timeout: float | None,
        failures: list[str],
    ) -> tuple[bool, Any]:
        """Call member ``name``; ``(True, result)``, or ``(False, None)`` after a member failure."""
        breakers, metrics = self.shared.breakers, self.shared.metrics
        if failures:
            metrics.moves.labels(self.name).inc()
        try:
            if admission == "trial":
                value = self._trial(name, message, call, timeout)
            else:
                value = call(self._ready(name), message, timeout)
        except MEMBER_FAILURES as exc:
            outcome = "timeout" if isinstance(exc, TrialTimeoutError) else "failed"
            metrics.calls.labels(self.name, name, outcome).inc()
            breakers.failure(name, f"{type(exc).__name__}: {exc}")
            failures.append(f"{name}: {exc}")
            log.warning(
                "pool member failed", pool=self.name, member=name, error=str(exc), **message.log_context()
            )
            return False, None
        except RemoteError:  # the member answered: it is alive, the refusal is the route's business
            metrics.calls.labels(self.name, name, "refused").inc()
            breakers.success(name)
            raise
        except BaseException:  # a bad message (or a bug): says nothing about the member
            if admission == "trial":
                breakers.release(name)
            raise
        metrics.calls.labels(self.name, name, "ok").inc()
        breakers.success(name)
        return True, value

    def _trial(self, name: str, message: Message, call: Call, timeout: float | None) -> Any:
        """Run the half-open trial call on a fresh sink in a thread; give it up after ``trial_timeout``.

        The fresh sink (a new connection after the outage) replaces the member's old one when the trial
        ends in time; a trial given up closes its own sink when its call ends, and nothing of it is kept.
        """
        limit = self.endpoint.health.trial_timeout
        box: dict[str, Any] = {}
        lock = threading.Lock()
        finished = threading.Event()

        def run() -> None:
            sink = None
            try:
                sink = box["sink"] = self.member_sink(name, fresh=True)
                sink.connect()
                box["value"] = call(sink, message, limit if timeout is None else min(timeout, limit))
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc
            with lock:
                finished.set()
                given_up = box.get("given_up", False)
            if given_up and sink is not None:
                _close_quietly(sink, self.name, name)

        threading.Thread(target=run, name=f"pool-trial-{name}", daemon=True).start()
        finished.wait(limit)
        with lock:
            if not finished.is_set():
                box["given_up"] = True
        if box.get("given_up"):
            raise TrialTimeoutError(
                f"trial call to {name} still running after {limit:g}s (given up; it may still arrive)"
            )
        sink = box.get("sink")
        if "error" in box:
            if sink is not None:
                _close_quietly(sink, self.name, name)
            raise box["error"]
        old = self._drop(name)
        if old is not None:
            _close_quietly(old, self.name, name)
        self._sinks[name] = sink
        self._connected.add(name)
        return box["value"]


def _close_quietly(sink: Any, pool: str, member: str) -> None:
    """Close a member's sink; a failure is logged (closing one must not keep the others open)."""
    try:
        sink.close()
    except Exception as exc:
        log.warning("pool member close failed", pool=pool, member=member, error=str(exc))


class PoolRequester(PoolSink):
    """A pool whose members all answer requests (enrich steps, request-reply routes, process calls)."""

    def request(self, message: Message, timeout: float) -> Message:
        """Send ``message`` to one member and return its reply."""
        reply: Message = self.dispatch(
            message, lambda sink, msg, limit: _requester(sink).request(msg, limit or timeout), timeout
        )
        return reply


def _requester(sink: Any) -> Requester:
    found = capability(sink, Requester)
    if found is None:  # members are checked when the pool's sink is made; a reload could change them
        raise ConfigError(f"pool member sink {type(sink).__name__} does not answer requests")
    return found


def member_config(context: AdapterContext, name: str) -> Any:
    """Return the endpoint of member ``name``; ConfigError when the project has none such, or a pool."""
    if not context.endpoints:
        raise ConfigError(f"pool {context.endpoint}: the project's endpoints were not given to the adapter")
    config = context.endpoints.get(name)
    if config is None:
        from esb.registry import did_you_mean

        raise ConfigError(
            f"pool {context.endpoint}: member {name!r} is not an endpoint of the project"
            f"{did_you_mean(name, list(context.endpoints))}"
        )
    if config.adapter == "pool":
        raise ConfigError(
            f"pool {context.endpoint}: member {name} is itself a pool (name its members instead)"
        )
    return config
