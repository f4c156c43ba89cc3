"""The last run's fingerprints held in memory: a full resync skips an unchanged record with one hash and
one set lookup (docs/sync.md, "Full resync").

Loaded once per run in one streaming pass (:meth:`Fingerprints.snapshot`): for every key of the sync
whose state has not moved since its fingerprint was stored, the fingerprint's first 64 bits. A record
whose fingerprint is found is unchanged (the same bytes, read by the same rules, against the same
state) and its entry is taken out; every other record takes the full path (parse, map, judge).

The index also answers which keys the extract held (a ``delete_missing`` run's question) without a set
of every key: the delete pass reads each key with its stored fingerprint (:meth:`Fingerprints.states`),
and a key was seen when a record of it took the full path, or when its fingerprint was loaded and taken
out. A key with no fingerprint at the load and no record judged was not seen. A key created, or moved
by live traffic, after the load counts as seen: the extract predates that change, so it is not deleted.

Memory: about 70 bytes per key (a set slot and a 64-bit int), plus the keys of the store that had no
fingerprint and of the records judged, when tracking. A 64-bit prefix collision between two different
records (probability about n² / 2⁶⁵, 3·10⁻⁸ for a million keys) would skip a changed record as
unchanged.
"""

from __future__ import annotations

import hashlib
from functools import partial
from itertools import compress, repeat
from operator import itemgetter, methodcaller, not_
from typing import Literal

from esb.sync.fingerprints import Fingerprints

_LINE = itemgetter(1)  # the fingerprint of a snapshot row (key, fingerprint)
_PREFIX = itemgetter(slice(0, 16))  # its first 64 bits, in hex
_BLAKE2B = partial(hashlib.blake2b, digest_size=16)  # as Fingerprints.of hashes a record
_DIGEST = methodcaller("digest")
_HEAD = itemgetter(slice(0, 8))  # the first 64 bits of a digest
_BIG: Literal["big"] = "big"


def _short(line: str) -> int:
    """The first 64 bits of a stored (hex) fingerprint."""
    return int(line[:16], 16)


class LineIndex:
    """Fingerprints of the last run's judged records (by 64-bit prefix) not met yet, and the keys judged."""

    def __init__(self, fingerprints: Fingerprints, *, track: bool) -> None:
        self.track = track
        self.digest = fingerprints.digest
        self.fingerprints = fingerprints
        #: 64-bit fingerprints loaded and not met yet in this run
        self.pending: set[int] = set()
        #: keys of the store with no usable fingerprint at the snapshot
        self.unloaded: set[str] = set()
        #: keys of records that took the full path in this run
        self.judged: set[str] = set()

    def load(self) -> LineIndex:
        """Read the snapshot (one streaming pass over the sync's states and fingerprints), a page at a
        time: the fingerprints' 64-bit prefixes added by C-level ``map`` calls, no Python step per key."""
        for rows in self.fingerprints.snapshot():
            lines = list(map(_LINE, rows))
            if None in lines:  # keys with no usable fingerprint (their state moved, or never judged)
                if self.track:
                    self.unloaded.update(key for key, line in rows if line is None)
                lines = [line for line in lines if line is not None]
            self.pending.update(map(int, map(_PREFIX, lines), repeat(16)))
        return self

    def take(self, raw: bytes) -> bool:
        """True, and its entry taken out (its key seen), when ``raw`` is a loaded record not met yet."""
        digest = hashlib.blake2b(self.digest + raw, digest_size=16).digest()
        short = int.from_bytes(digest[:8], "big")
        if short in self.pending:
            self.pending.discard(short)
            return True
        return False

    def take_block(self, raws: list[bytes]) -> list[int]:
        """:meth:`take` of each of ``raws`` in order; returns the positions of those not recognised.

        The hashes and lookups of a whole block in C-level ``map`` calls (no Python step per record);
        a block where one loaded fingerprint is met twice (the same bytes twice) goes record by record,
        so that only the first is taken, as :meth:`take` does."""
        hashes = map(_BLAKE2B, map(self.digest.__add__, raws))
        shorts = list(map(int.from_bytes, map(_HEAD, map(_DIGEST, hashes)), repeat(_BIG)))
        known = list(map(self.pending.__contains__, shorts))
        hits = list(compress(shorts, known))
        if len(set(hits)) != len(hits):
            return [n for n, raw in enumerate(raws) if not self.take(raw)]
        self.pending.difference_update(hits)
        return list(compress(range(len(raws)), map(not_, known)))

    def add(self, key: str) -> None:
        """Mark ``key`` seen (one of its records took the full path); kept only when tracking."""
        if not self.track:
            return
        if key in self.unloaded:  # seen now: its stored fingerprint, if any, is not pending
            self.unloaded.discard(key)
        else:
            self.judged.add(key)

    def settle(self, keys: list[str]) -> None:
        """Take out the loaded fingerprints of ``keys``, whose records took the full path (tracking only):
        when none is left and every key had one, the extract held every key (:attr:`complete`)."""
        if self.track and keys and self.pending:
            for line in self.fingerprints.current(keys):
                self.pending.discard(_short(line))

    @property
    def complete(self) -> bool:
        """True when every key loaded was met (by fingerprint or judged): no key is missing."""
        return not self.pending and not self.unloaded

    def seen(self, key: str, line: str | None) -> bool:
        """True when the extract held ``key`` (or the key was created after the snapshot), given the
        fingerprint stored for it now (None: none, or its state moved since); tracking only."""
        assert self.track
        if key in self.judged:
            return True
        if key in self.unloaded:
            return False
        return line is None or _short(line) not in self.pending
