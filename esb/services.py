"""The engine's services for adapters (:class:`esb.context.EngineServices`), as the hub provides them.

Stateless but for the settings: every ``journal_notes()``/``one_time_keys()`` call opens a new handle on
the journal's database (closed by its caller), every ``elect`` starts a new election thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from esb.config.settings import Settings
from esb.context import Election, JournalNotes, OneTimeKeys
from esb.message import Message
from esb.pids import pid_alive


class HubServices:
    """The hub's implementation of :class:`esb.context.EngineServices` for one project's settings."""

    def __init__(self, settings: Settings, project_dir: Path) -> None:
        self._settings = settings
        self.project_dir = project_dir

    @property
    def settings(self) -> Settings:
        """The settings with ``data_dir`` absolute and ``{data_dir}`` filled into the URLs."""
        settings = self._settings
        if "{data_dir}" in settings.journal.url or not settings.data_dir.is_absolute():
            settings = settings.resolve_paths(self.project_dir)
        return settings

    def journal_notes(self) -> JournalNotes:
        """Return a handle on the journal for an adapter's own messages (opened at first use)."""
        return _JournalNotes(self.settings.journal.url, self.settings.journal.keep_bodies)

    def one_time_keys(self) -> OneTimeKeys:
        """Return a handle on the journal database's one-time key ledger (opened at first use)."""
        from esb.journal.keys import OneTimeKeyLedger

        return OneTimeKeyLedger(self.settings.journal.url)

    def elect(self, name: str, *, wait: float = 0.0) -> Election:
        """Start a leader election for ``name`` (PostgreSQL advisory lock, or a file lock in data_dir)."""
        from esb.runtime.leader import LeaderElection

        election = LeaderElection(name, self.settings)
        election.start()
        if wait:
            election.elected.wait(wait)
        return election

    @property
    def metrics(self) -> Any:
        """The registry of metrics adapters share (every hub's ``/metrics`` shows it)."""
        from esb.runtime.metrics import SHARED

        return SHARED

    def running_hub(self) -> int | None:
        """Return the pid of the hub serving monitoring on this data folder when it is alive."""
        from esb.runtime.hubclient import info_path

        try:
            pid = int(orjson.loads(info_path(self.settings).read_bytes())["pid"])
        except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        return pid if pid_alive(pid) else None


class _JournalNotes:
    """An adapter's own messages in the hub's journal, each once per route."""

    def __init__(self, url: str, keep_bodies: bool) -> None:
        self.url = url
        self.keep_bodies = keep_bodies
        self._journal: Any = None

    def _open(self) -> Any:
        if self._journal is None:
            from esb.journal import Journal

            journal = Journal(self.url, keep_bodies=self.keep_bodies, pool_size=1)
            journal.connect()
            self._journal = journal
        return self._journal

    def outcome(self, route: str, message_id: str) -> str | None:
        """Return the message's final state on ``route``, or None."""
        return self._open().outcome(route, message_id)  # type: ignore[no-any-return]

    def note(
        self,
        route: str,
        message: Message,
        state: str,
        *,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Journal ``message`` received and then in ``state`` on ``route``, once."""
        journal = self._open()
        if journal.outcome(route, message.id) is not None:
            return False
        journal.received(route, message)
        journal.event(route, message, state, detail=detail, error=error)
        return True

    def close(self) -> None:
        """Close the journal. Safe to call twice."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
