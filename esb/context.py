"""What an adapter is given: settings, the project folder, the endpoint's name, and the engine's services.

Adapters reach the engine only through this module and :mod:`esb.typing` (and the small libraries of
``esb``: exceptions, message, files, xmlsafe, logging, config models). What the engine does for them is
:class:`EngineServices`, handed over as ``context.services``:

- ``journal_notes()``: write a message of the adapter's own into the hub's journal, once (the batch
  adapter journals each finished file on its pseudo-route ``batch:<endpoint>``);
- ``one_time_keys()``: a ledger of keys that may be used once, shared by every hub process and across
  restarts (WS-Security nonces);
- ``elect(name)``: take part in a leader election (one process of a cluster runs a schedule);
- ``metrics``: the registry whose metrics every hub's ``/metrics`` shows;
- ``running_hub()``: the process id of the hub serving this data folder, if one runs.

Each ``journal_notes()``/``one_time_keys()`` call opens a handle the caller closes; ``elect`` starts an
election the caller stops.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from esb.config.settings import Settings
from esb.config.systems import EndpointConfig
from esb.message import Message


class JournalNotes(Protocol):
    """Messages an adapter journals itself, each once per route (opened lazily; ``close()`` when done)."""

    def outcome(self, route: str, message_id: str) -> str | None:
        """Return the message's final state on ``route`` (delivered, filtered, dead_lettered), or None."""
        ...

    def note(
        self,
        route: str,
        message: Message,
        state: str,
        *,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Journal ``message`` as received on ``route`` and then in the final ``state``; False (and nothing
        written) when it already has an outcome there. TransportError when the journal cannot be reached."""
        ...

    def close(self) -> None:
        """Release the connection. Safe to call twice."""
        ...


class OneTimeKeys(Protocol):
    """Keys that may be used once within their time to live, shared by every hub process on the journal's
    database and kept across restarts."""

    def first_use(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False when it was used already. TransportError when the ledger
        cannot say (the caller must then refuse: fail closed)."""
        ...

    def close(self) -> None:
        """Release the connection. Safe to call twice."""
        ...


class Election(Protocol):
    """This process's candidacy to lead one named job; checked every couple of seconds."""

    elected: threading.Event

    @property
    def is_leader(self) -> bool:
        """True while this process leads."""
        ...

    def stop(self) -> None:
        """Stop trying and give the leadership up."""
        ...


class EngineServices(Protocol):
    """What the engine does for adapters (see the module docstring)."""

    def journal_notes(self) -> JournalNotes:
        """Return a handle on the hub's journal for the adapter's own messages."""
        ...

    def one_time_keys(self) -> OneTimeKeys:
        """Return a handle on the shared ledger of one-time keys."""
        ...

    def elect(self, name: str, *, wait: float = 0.0) -> Election:
        """Start this process's candidacy for ``name``; wait up to ``wait`` seconds for the first result."""
        ...

    @property
    def metrics(self) -> Any:
        """The Prometheus ``CollectorRegistry`` shared by adapters (shown by every hub's ``/metrics``)."""
        ...

    def running_hub(self) -> int | None:
        """Return the pid of the hub running on this data folder, or None."""
        ...


@dataclass(frozen=True)
class AdapterContext:
    """The hub-wide facts an adapter may need, and the engine's services; never secrets beyond settings."""

    settings: Settings
    project_dir: Path
    endpoint: str
    """The endpoint's full name, ``system.endpoint`` (e.g. ``crm.orders_out``)."""
    services: EngineServices = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    """The engine's services; the hub's own when not given (tests may pass fakes)."""
    endpoints: Mapping[str, EndpointConfig] = field(default_factory=dict, compare=False, repr=False)
    """Every endpoint of the project by full name, for an adapter whose endpoints name others (a pool's
    members); empty when the context was made without a project."""

    def __post_init__(self) -> None:
        if self.services is None:
            from esb.services import HubServices

            object.__setattr__(self, "services", HubServices(self.settings, self.project_dir))

    @property
    def system(self) -> str:
        """The system part of the endpoint name (``crm``)."""
        return self.endpoint.split(".", 1)[0]
