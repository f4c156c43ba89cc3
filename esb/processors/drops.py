"""Why a step dropped a message: a note the worker journals with the ``filtered`` outcome.

A step that ends a message on purpose for a reason worth tracing (the sync step: unchanged, stale,
excluded) returns :func:`dropped` instead of ``[]``; the route worker runs its steps inside
:func:`recording` and, when nothing came out, journals ``filtered`` with the notes as its detail, so
``esb trace`` shows why. Outside :func:`recording` (route tests, dry runs) the note is not kept.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from esb.message import Message

_local = threading.local()


def dropped(message: Message, detail: dict[str, Any]) -> list[Message]:
    """Return ``[]`` (the message is filtered) and note ``detail`` as the reason, when recording."""
    notes: list[dict[str, Any]] | None = getattr(_local, "notes", None)
    if notes is not None:
        notes.append(detail)
    return []


class _Recording:
    """The context manager :func:`recording` returns (a class: the worker enters one per message, and a
    generator-based context manager costs several times more to enter and leave)."""

    __slots__ = ("nested",)

    def __enter__(self) -> list[dict[str, Any]]:
        outer: list[dict[str, Any]] | None = getattr(_local, "notes", None)
        self.nested = outer is not None
        if outer is not None:
            return outer
        notes: list[dict[str, Any]] = []
        _local.notes = notes
        return notes

    def __exit__(self, *exc: object) -> None:
        if not self.nested:
            _local.notes = None


def recording() -> AbstractContextManager[list[dict[str, Any]]]:
    """Collect the notes of steps run in the block (this thread); nested blocks share the outer list."""
    return _Recording()


def detail_of(notes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``filtered`` event's detail: the one note, or ``{"dropped": [...]}`` for several, or None."""
    if not notes:
        return None
    return dict(notes[0]) if len(notes) == 1 else {"dropped": list(notes)}
