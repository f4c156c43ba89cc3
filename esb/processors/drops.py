"""Why a step dropped a message: a note the worker journals with the ``filtered`` outcome.

A step that ends a message on purpose for a reason worth tracing (the sync step: unchanged, stale,
excluded) returns :func:`dropped` instead of ``[]``; the route worker runs its steps inside
:func:`recording` and, when nothing came out, journals ``filtered`` with the notes as its detail, so
``esb trace`` shows why. Outside :func:`recording` (route tests, dry runs) the note is not kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from esb.message import Message

_local = threading.local()


def dropped(message: Message, detail: dict[str, Any]) -> list[Message]:
    """Return ``[]`` (the message is filtered) and note ``detail`` as the reason, when recording."""
    notes: list[dict[str, Any]] | None = getattr(_local, "notes", None)
    if notes is not None:
        notes.append(detail)
    return []


@contextlib.contextmanager
def recording() -> Iterator[list[dict[str, Any]]]:
    """Collect the notes of steps run in the block (this thread); nested blocks share the outer list."""
    outer: list[dict[str, Any]] | None = getattr(_local, "notes", None)
    if outer is not None:
        yield outer
        return
    notes: list[dict[str, Any]] = []
    _local.notes = notes
    try:
        yield notes
    finally:
        _local.notes = None


def detail_of(notes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``filtered`` event's detail: the one note, or ``{"dropped": [...]}`` for several, or None."""
    if not notes:
        return None
    return dict(notes[0]) if len(notes) == 1 else {"dropped": list(notes)}
