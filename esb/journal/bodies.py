"""Compressed journal bodies: zstd, primed with a dictionary learnt from the first bodies of a kind.

A message body of a route is mostly the same markup every time (a SiebelMessage, an IOM order request),
so a dictionary of a few earlier bodies of the same kind shrinks the next one to a tenth or less (2.2 KB
of Siebel XML -> ~150 bytes; plain zlib only reaches ~670). A *kind* is a route and where the body was
seen: its ingress or one endpoint. The first :data:`SAMPLES` bodies of a kind are stored without a
dictionary; they then become that kind's dictionary, written once to ``journal_dictionaries`` (its own
committed transaction) and used by every later body of that kind in any process that reads it back.

Stored format (a *format marker*, so rows written before compression stay readable as they are)::

    MARK (4 bytes: NUL "ejz") | version (1 byte) | dictionary id (4 bytes, big-endian; 0 = none) | data

The version byte names the codec of ``data``: :data:`ZSTD` (written since 2026-12-07: a magicless zstd
frame with its content size, the dictionary as raw content) or :data:`DEFLATE` (rows written before:
raw DEFLATE, the dictionary as its preset). Both are read; the same dictionaries serve both. zstd
replaced zlib for CPU: a primed zlib compressor had to be copied per body (~200 KB of state: 15-19 µs
a Siebel body), zstd references a precomputed dictionary (~5 µs) for ~25 bytes more (docs/journal.md).

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

import zstandard

#: Starts every compressed body. NUL never begins XML, JSON or text, so no real body is taken for one.
MARK = b"\x00ejz"
#: Codec versions: raw DEFLATE (rows written before zstd; read only) and zstd (written).
DEFLATE = 1
ZSTD = 2
VERSION = ZSTD
_HEADER = struct.Struct(">4sBI")
#: Bodies of a kind stored without a dictionary before they become its dictionary.
SAMPLES = 8
#: Longest dictionary (DEFLATE, which older rows used, looks back 32 KB at most).
MAX_DICTIONARY = 32 * 1024
#: Shorter bodies are stored as they are (the header and the codec's own overhead would not pay).
MIN_SIZE = 64
#: zstd level: 3 (its default) takes ~5 µs a Siebel body for ~147 bytes; 5 ~9 µs for ~128, 9 ~14 for ~119.
LEVEL = 3
#: zlib's settings of the DEFLATE rows (level 6, memLevel 8); kept for :func:`pack_deflate`.
DEFLATE_LEVEL = 6
MEM_LEVEL = 8
#: No magic number (the header's version says zstd), the content size for one-shot decompression.
_FORMAT = zstandard.FORMAT_ZSTD1_MAGICLESS

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


def zstd_dictionary(dictionary: bytes | None) -> zstandard.ZstdCompressionDict | None:
    """Return ``dictionary`` as a zstd raw-content dictionary, precomputed for :data:`LEVEL` (None: none).

    The result is immutable and may be shared by threads; :func:`primed` makes a compressor of it.
    """
    if not dictionary:
        return None
    prepared = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    prepared.precompute_compress(level=LEVEL)
    return prepared


def primed(dictionary: bytes | zstandard.ZstdCompressionDict | None) -> zstandard.ZstdCompressor:
    """Return a zstd compressor primed with ``dictionary``: for one thread at a time (not thread-safe)."""
    if isinstance(dictionary, bytes):
        dictionary = zstd_dictionary(dictionary)
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, format=_FORMAT, write_content_size=True, write_checksum=False, write_dict_id=False
    )
    return zstandard.ZstdCompressor(compression_params=params, dict_data=dictionary)


def pack(
    body: bytes, dictionary_id: int = 0, dictionary: bytes | None = None, compressor: Any = None
) -> bytes:
    """Return ``body`` as stored: compressed with its header, or as it is when short and unmarked.

    ``compressor`` is :func:`primed` with ``dictionary`` (made here when not given).
    """
    if len(body) < MIN_SIZE and not body.startswith(MARK):
        return body
    data: bytes = (compressor or primed(dictionary)).compress(body)
    return _HEADER.pack(MARK, ZSTD, dictionary_id if dictionary else 0) + data


def pack_deflate(body: bytes, dictionary_id: int = 0, dictionary: bytes | None = None) -> bytes:
    """Return ``body`` stored as rows were before zstd (raw DEFLATE): for tests of reading old rows."""
    if len(body) < MIN_SIZE and not body.startswith(MARK):
        return body
    args = (DEFLATE_LEVEL, zlib.DEFLATED, -15, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY)
    deflate = zlib.compressobj(*args, dictionary) if dictionary else zlib.compressobj(*args)
    data = deflate.compress(body) + deflate.flush()
    return _HEADER.pack(MARK, DEFLATE, dictionary_id if dictionary else 0) + data


def _header(stored: bytes) -> tuple[int, int] | None:
    """(version, dictionary id) of a stored body, or None for a body stored as it is."""
    if not stored.startswith(MARK):
        return None
    if len(stored) < _HEADER.size:
        raise BodyFormatError("journal body: truncated header")
    _, version, ident = _HEADER.unpack_from(stored)
    if version not in (DEFLATE, ZSTD):
        raise BodyFormatError(f"journal body: unknown format version {version}")
    return version, int(ident)


def dictionary_id(stored: bytes) -> int | None:
    """Return the dictionary id a stored body needs (0 for none), or None for a body stored as it is."""
    header = _header(stored)
    return None if header is None else header[1]


def unpack(stored: bytes, dictionary: bytes | None = None, decompressor: Any = None) -> bytes:
    """Return the original bytes of a stored body (``dictionary`` is the one its header names).

    ``decompressor``: :func:`make_decompressor` of that dictionary, reused by a caller decoding many.
    """
    header = _header(stored)
    if header is None:
        return stored
    version, ident = header
    if ident and dictionary is None:
        raise BodyFormatError(f"journal body: dictionary {ident} is missing")
    data = stored[_HEADER.size :]
    if version == DEFLATE:
        return _inflate(data, dictionary if ident else None)
    try:
        body: bytes = (decompressor or make_decompressor(dictionary if ident else None)).decompress(data)
    except zstandard.ZstdError as error:
        raise BodyFormatError(f"journal body: cannot decompress: {error}") from None
    return body


def make_decompressor(dictionary: bytes | None) -> zstandard.ZstdDecompressor:
    """A zstd decompressor with ``dictionary`` loaded (~20 µs to make): for one thread at a time."""
    prepared = (
        zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        if dictionary
        else None
    )
    return zstandard.ZstdDecompressor(dict_data=prepared, format=_FORMAT)


def _inflate(data: bytes, dictionary: bytes | None) -> bytes:
    try:
        inflater = zlib.decompressobj(-15, zdict=dictionary) if dictionary else zlib.decompressobj(-15)
        body = inflater.decompress(data) + inflater.flush()
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
        #: kind -> (dictionary id, data, the data precomputed for zstd: immutable, shared by threads)
        self._active: dict[str, tuple[int, bytes, zstandard.ZstdCompressionDict | None]] = {}
        self._local = threading.local()  # its (de)compressors, by dictionary id (0: none): one per thread
        self._samples: dict[str, list[bytes]] = {}
        self._known: dict[int, bytes] = {}

    def encode(self, kind: str, body: bytes) -> bytes:
        """Return ``body`` as stored for ``kind`` (learning the kind's dictionary from its first bodies)."""
        if len(body) < MIN_SIZE and not body.startswith(MARK):
            return body
        active = self._dictionary(kind, body)
        if active is None:
            return pack(body, compressor=self._compressor(0, None))
        return pack(body, active[0], active[1], self._compressor(active[0], active[2]))

    def _compressor(self, ident: int, prepared: zstandard.ZstdCompressionDict | None) -> Any:
        """This thread's compressor for dictionary ``ident`` (a zstd compressor is not thread-safe)."""
        return self._per_thread("compressors", ident, lambda: primed(prepared))

    def _per_thread(self, name: str, ident: int, make: Callable[[], Any]) -> Any:
        """This thread's object ``name`` for dictionary ``ident``, made by ``make`` the first time."""
        made: dict[int, Any] | None = getattr(self._local, name, None)
        if made is None:
            made = {}
            setattr(self._local, name, made)
        found = made.get(ident)
        if found is None:
            found = made[ident] = make()
        return found

    def _dictionary(
        self, kind: str, body: bytes
    ) -> tuple[int, bytes, zstandard.ZstdCompressionDict | None] | None:
        with self._lock:
            active = self._active.get(kind)
            first_look = active is None and kind not in self._samples
        if active is not None:
            return active
        if first_look:  # another process (or this one before a restart) may have learnt it already
            found = self._latest(kind)
            if found is not None:
                learnt = (found[0], found[1], zstd_dictionary(found[1]))
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
            self._active[kind] = (ident, data, zstd_dictionary(data))
            self._known[ident] = data
        return None  # this body was a sample: stored without a dictionary like the ones before it

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
            if data is None:
                return unpack(stored)  # raises: the dictionary it names is missing
            with self._lock:
                self._known[ident] = data
        known = data
        decompressor = self._per_thread("decompressors", ident, lambda: make_decompressor(known))
        return unpack(stored, data, decompressor)
