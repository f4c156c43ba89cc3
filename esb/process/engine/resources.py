"""What a runner reaches outside the database: endpoints' sinks and transforms, resolved through the project.

A sink is made by the endpoint's adapter (never chosen by adapter name), connected on first use and
kept; a ``call`` asks it for the :class:`~esb.typing.Requester` capability, as the route ``enrich``
step does. A sink belongs to one thread (a queue sink's connection, a SQLite connection, a SOAP
client's session are not shared), so each thread that asks gets its own sink of an endpoint.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from esb.message import Message


class Transform(Protocol):
    """A compiled transform: a message in, the mapped message out."""

    def apply(self, message: Message) -> Message:
        """Map ``message``."""
        ...


class Resources(Protocol):
    """The endpoints and transforms a runner uses."""

    def sink(self, endpoint: str) -> Any:
        """Return the connected sink of ``endpoint`` (a Requester when the endpoint answers)."""
        ...

    def transform(self, name: str) -> Transform:
        """Return the transform ``name``."""
        ...


class ProjectResources:
    """Sinks and transforms of a loaded :class:`~esb.project.Project`."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self._sinks: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def sink(self, endpoint: str) -> Any:
        """Return the calling thread's sink of the endpoint, made by its adapter and connected once."""
        key = (threading.get_ident(), endpoint)
        with self._lock:
            found = self._sinks.get(key)
        if found is not None:
            return found
        adapter = self.project.adapter_for(endpoint)
        sink = adapter.sink(self.project.endpoint(endpoint), self.project.context(endpoint))
        sink.connect()
        with self._lock:
            self._sinks[key] = sink
        return sink

    def transform(self, name: str) -> Transform:
        """Return the project's transform ``name``."""
        found: Transform = self.project.transforms.get(name)
        return found

    def close(self) -> None:
        """Close every sink opened."""
        with self._lock:
            sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            sink.close()
