"""Sync state: per (sync name, key), what the hub last sent a target, beside the journal (docs/sync.md).

:class:`SyncStore` is the store (bulk reads and compare-and-set writes), :func:`judge` the rules (unchanged,
stale, delete, excluded), :mod:`esb.sync.content` the projection, content hash and versions. The ``sync``
route step (``esb/config/steps/sync.py``, processor ``esb/processors/sync.py``) puts them together.
"""

from __future__ import annotations

from esb.sync.content import SyncDataError, content_hash, project, version_number
from esb.sync.rules import Action, Change, Verdict, judge
from esb.sync.store import SyncState, SyncStore, SyncWrite

__all__ = [
    "Action",
    "Change",
    "SyncDataError",
    "SyncState",
    "SyncStore",
    "SyncWrite",
    "Verdict",
    "content_hash",
    "judge",
    "project",
    "version_number",
]
