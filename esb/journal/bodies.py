"""Compressed journal bodies: raw DEFLATE, primed with a dictionary learnt from the first bodies of a kind.

A message body of a route is mostly the same markup every time (a SiebelMessage, an IOM order request),
so a dictionary of a few earlier bodies of the same kind shrinks the next one to a tenth or less (2.2 KB
of Siebel XML -> ~90 bytes; plain zlib only reaches ~670). A *kind* is a route and where the body was
seen: its ingress or one endpoint. The first :data:`SAMPLES` bodies of a kind are stored with plain
DEFLATE; they then become that kind's dictionary, written once to ``journal_dictionaries`` (its own
committed transaction) and used by every later body of that kind in any process that reads it back.

Stored format (a *format marker*, so rows written before compression stay readable as they are)::

    MARK (4 bytes: NUL "ejz") | version (1 byte) | dictionary id (4 bytes, big-endian; 0 = none) | DEFLATE

A stored value that does not start with :data:`MARK` is the original bytes. An original body that itself
starts with :data:`MARK` is always compressed, so the two never mix up. Bodies shorter than
:data:`MIN_SIZE` are stored as they are.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

#: Starts every compressed body. NUL never begins XML, JSON or text, so no real body is taken for one.
MARK = b"\x00ejz"
VERSION = 1
_HEADER = struct.Struct(">4sBI")
#: Bodies of a kind stored with plain DEFLATE before they become its dictionary.
SAMPLES = 8
#: Longest dictionary (DEFLATE looks back 32 KB at most).
MAX_DICTIONARY = 32 * 1024
#: Shorter bodies are stored as they are (the header and DEFLATE's own overhead would not pay).
MIN_SIZE = 64
LEVEL = 6
#: zlib's memLevel: 8 (its default) costs a third less CPU than 9 on these bodies, for the same size.
MEM_LEVEL = 8

#: Saves a new dictionary in its own committed transaction: (kind, data) -> its id.
SaveDictionary = Callable[[str, bytes], int]
#: Reads a saved dictionary: kind -> (id, data) of the newest, or None.
LatestDictionary = Callable[[str], "tuple[int, bytes] | None"]
#: Reads a saved dictionary by id (None when there is none with that id).
DictionaryById = Callable[[int], "bytes | None"]


class BodyFormatError(ValueError):
    """A stored body carries the marker but cannot be decoded (unknown version or dictionary, or damage)."""


def kind_of(route: str, where: str | None) -> str:
    """Return the kind of a body: its route and where it was seen (``in`` for ingress, else endpoint)."""
    return f"{route}|{where or 'in'}"


def primed(dictionary: bytes | None) -> Any:
    """Return a compressor primed with ``dictionary``: :func:`pack` copies it (cheaper than priming anew)."""
    if dictionary:
        return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, MEM_LEVEL)


def pack(
    body: bytes, dictionary_id: int = 0, dictionary: bytes | None = None, compressor: Any = None
) -> bytes:
    """Return ``body`` as stored: compressed with its header, or as it is when short and unmarked.

    ``compressor`` is :func:`primed` with ``dictionary`` (made here when not given).
    """
    if len(body) < MIN_SIZE and not body.startswith(MARK):
        return body
    deflate = (compressor or primed(dictionary)).copy()
    data: bytes = deflate.compress(body) + deflate.flush()
    return _HEADER.pack(MARK, VERSION, dictionary_id if dictionary else 0) + data


def dictionary_id(stored: bytes) -> int | None:
    """Return the dictionary id a stored body needs (0 for none), or None for a body stored as it is."""
    if not stored.startswith(MARK):
        return None
    if len(stored) < _HEADER.size:
        raise BodyFormatError("journal body: truncated header")
    _, version, ident = _HEADER.unpack_from(stored)
    if version != VERSION:
        raise BodyFormatError(f"journal body: unknown format version {version}")
    return int(ident)


def unpack(stored: bytes, dictionary: bytes | None = None) -> bytes:
    """Return the original bytes of a stored body (``dictionary`` is the one its header names)."""
    ident = dictionary_id(stored)
    if ident is None:
        return stored
    if ident and dictionary is None:
        raise BodyFormatError(f"journal body: dictionary {ident} is missing")
    try:
        inflater = zlib.decompressobj(-15, zdict=dictionary or b"") if ident else zlib.decompressobj(-15)
        body = inflater.decompress(stored[_HEADER.size :]) + inflater.flush()
    except zlib.error as error:
        raise BodyFormatError(f"journal body: cannot inflate: {error}") from None
    if not inflater.eof:  # raw DEFLATE has no length: a cut-off body just stops
        raise BodyFormatError("journal body: cannot inflate: the compressed data is cut short")
    return body


class BodyCodec:
    """Compresses bodies per kind with a learnt dictionary, and decodes them; thread-safe, per journal.

    ``save``/``latest``/``by_id`` reach the ``journal_dictionaries`` table; :meth:`encode` must be called
    outside any open write transaction (saving a dictionary commits on its own).
    """

    def __init__(self, save: SaveDictionary, latest: LatestDictionary, by_id: DictionaryById) -> None:
        self._save, self._latest, self._by_id = save, latest, by_id
        self._lock = threading.Lock()
        self._active: dict[str, tuple[int, bytes, Any]] = {}
        self._plain = primed(None)
        self._samples: dict[str, list[bytes]] = {}
        self._known: dict[int, bytes] = {}

    def encode(self, kind: str, body: bytes) -> bytes:
        """Return ``body`` as stored for ``kind`` (learning the kind's dictionary from its first bodies)."""
        if len(body) < MIN_SIZE and not body.startswith(MARK):
            return body
        active = self._dictionary(kind, body)
        if active is None:
            return pack(body, compressor=self._plain)
        return pack(body, active[0], active[1], active[2])

    def _dictionary(self, kind: str, body: bytes) -> tuple[int, bytes, Any] | None:
        with self._lock:
            active = self._active.get(kind)
            first_look = active is None and kind not in self._samples
        if active is not None:
            return active
        if first_look:  # another process (or this one before a restart) may have learnt it already
            found = self._latest(kind)
            if found is not None:
                learnt = (found[0], found[1], primed(found[1]))
                with self._lock:
                    self._active[kind] = learnt
                    self._known[found[0]] = found[1]
                return learnt
        with self._lock:
            samples = self._samples.setdefault(kind, [])
            samples.append(body)
            if len(samples) < SAMPLES:
                return None
            del self._samples[kind]
        data = b"".join(samples)[-MAX_DICTIONARY:]
        ident = self._save(kind, data)
        with self._lock:
            self._active[kind] = (ident, data, primed(data))
            self._known[ident] = data
        return None  # this body was a sample: stored with plain DEFLATE like the ones before it

    def remember(self, known: dict[int, bytes]) -> None:
        """Keep these dictionaries (id -> data) for decoding, e.g. all of them before a long transaction."""
        with self._lock:
            self._known.update(known)

    def decode(self, stored: bytes | None) -> bytes | None:
        """Return the original bytes of a stored body (None stays None)."""
        if stored is None:
            return None
        stored = bytes(stored)
        ident = dictionary_id(stored)
        if not ident:
            return unpack(stored)
        with self._lock:
            data = self._known.get(ident)
        if data is None:
            data = self._by_id(ident)
            if data is not None:
                with self._lock:
                    self._known[ident] = data
        return unpack(stored, data)
