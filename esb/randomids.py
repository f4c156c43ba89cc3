"""Random ids (message ids, the REST listener's event and order ids) without a system call each.

``uuid.uuid4()`` reads 16 bytes with ``os.urandom``: a ``getrandom`` call that releases the GIL, so in a
process whose threads contend for it every id costs a wait to take the GIL back (measured:
docs/rest.md, *Speed*). :func:`new_id` gives the same thing, a version-4 UUID's 32 hex digits from the
operating system's CSPRNG, taken from a buffer of :data:`CHUNK` bytes read at once: one read per 256
ids. A forked child starts with an empty buffer (never the parent's bytes again).
"""

from __future__ import annotations

import os
import threading

#: Bytes read from the OS's random source at a time (16 per id).
CHUNK = 4096

_lock = threading.Lock()
_pool = b""
_at = 0


def new_id() -> str:
    """A new random id: a version-4 UUID's hex digits, like ``uuid.uuid4().hex``."""
    global _pool, _at
    with _lock:
        if _at >= len(_pool):
            _pool, _at = os.urandom(CHUNK), 0
        raw = bytearray(_pool[_at : _at + 16])
        _at += 16
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def _forget() -> None:
    """In a forked child: drop the parent's unread bytes (they would repeat the parent's next ids)."""
    global _pool, _at, _lock
    _lock = threading.Lock()
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget)
