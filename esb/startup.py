"""Rare garbage collection while a command starts: the cyclic collector deferred until the project is loaded.

A cold command allocates some 80,000-150,000 container objects while it imports its modules and builds
the project's models (pydantic classes, validators, routes), nearly all of which live until it exits.
With Python's default threshold (a collection every 700 new objects, a full one every 100 of those) the
collector runs 120-220 times over that start to find almost nothing: about 30 ms of CPU of a cold
``esb dlq list`` and 40-60 ms of ``esb health`` (bench/README.md, "Cold operators' commands").

:func:`defer_collection` (called by the ``esb`` entry point only) raises the first generation's threshold
to :data:`STARTUP_THRESHOLD` objects; :func:`end_startup` (at the end of ``Project.load``) moves what the
start built to the collector's permanent generation (``gc.freeze``: the loaded project and modules are not
scanned again by later full collections) and puts the thresholds back. A command that never loads a
project keeps the raised threshold until it exits: the collector still runs, after 100,000 new objects,
so the garbage it may hold is bounded. Outside the entry point (tests, embedding) both are no-ops.
"""

from __future__ import annotations

import gc

#: New container objects between two collections of the first generation during a command's start.
STARTUP_THRESHOLD = 100_000

_saved: tuple[int, int, int] | None = None


def defer_collection() -> None:
    """Collect the first generation every :data:`STARTUP_THRESHOLD` new objects until :func:`end_startup`."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(STARTUP_THRESHOLD, *_saved[1:])


def end_startup() -> None:
    """Freeze what the start built and restore the collector's thresholds (no-op unless deferred)."""
    global _saved
    if _saved is not None:
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None
