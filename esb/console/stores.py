"""The process store the console's pages read, opened once and kept between requests.

Opening a :class:`ProcessStore` makes an engine and checks the schema's migrations: ~30 ms on PostgreSQL
at load 20, more than the search it served (bench/README.md "The console's pages"). The console keeps
one per journal URL (the hub's project may name another after a reload: the old store is closed).
"""

from __future__ import annotations

import threading

from esb.process.engine import ProcessStore
from esb.project import Project


class KeptProcessStore:
    """One connected :class:`ProcessStore` for the project's journal, shared by the request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: ProcessStore | None = None

    def get(self, project: Project) -> ProcessStore:
        """The store of ``project``'s journal, connected (raises :class:`EsbError` when it cannot be:
        the next call tries again)."""
        url = project.settings.journal.url
        with self._lock:
            if self._store is not None and self._store.url == url:
                return self._store
            old, self._store = self._store, None
            if old is not None:
                old.close()
            store = ProcessStore(url, pool_size=2)
            store.connect()
            self._store = store
            return store

    def close(self) -> None:
        """Dispose of the store's connections; harmless twice."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
