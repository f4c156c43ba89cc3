"""The last run's fingerprints held in memory: a full resync skips an unchanged record with one hash and
one dictionary lookup (docs/sync.md, "Full resync").

Loaded once per run in one streaming pass (:meth:`Fingerprints.snapshot`): for every key of the sync
whose state has not moved since its fingerprint was stored, the fingerprint's first 64 bits → the key.
A record whose fingerprint is found is unchanged (the same bytes, read by the same rules, against the
same state) and its entry is taken out; every other record takes the full path (parse, map, judge).

The index also answers which keys the extract held (a ``delete_missing`` run's question) without a set
of every key: a key was seen when a record of it took the full path, or when it was loaded and its
entry was taken out. A key created after the snapshot (by live traffic during the run) counts as seen:
the extract predates it, so it is not deleted.

Memory: about 130 bytes per key at the start (a dict entry, a 64-bit int, the key's string), released
key by key as records match. A 64-bit prefix collision between two different records (probability
about n² / 2⁶⁵, 3·10⁻⁸ for a million keys) would skip a changed record as unchanged.
"""

from __future__ import annotations

import hashlib

from esb.sync.fingerprints import Fingerprints


def _short(line: str) -> int:
    """The first 64 bits of a stored (hex) fingerprint."""
    return int(line[:16], 16)


class LineIndex:
    """Fingerprints of the last run's judged records (by 64-bit prefix) and the keys this run saw."""

    def __init__(self, fingerprints: Fingerprints, *, track: bool) -> None:
        self.track = track
        self.digest = fingerprints.digest
        self.fingerprints = fingerprints
        #: 64-bit fingerprint → key, for loaded keys not met yet in this run
        self.pending: dict[int, str] = {}
        #: keys of the store with no usable fingerprint at the snapshot
        self.unloaded: set[str] = set()
        #: keys of records that took the full path in this run
        self.judged: set[str] = set()
        self._unmet: set[str] | None = None

    def load(self) -> LineIndex:
        """Read the snapshot (one streaming pass over the sync's states and fingerprints)."""
        for key, line in self.fingerprints.snapshot():
            if line is None:
                if self.track:
                    self.unloaded.add(key)
            else:
                self.pending[_short(line)] = key
        return self

    def take(self, raw: bytes) -> bool:
        """True, and the record's key marked seen, when ``raw`` is a loaded record not met yet."""
        digest = hashlib.blake2b(self.digest + raw, digest_size=16).digest()
        return self.pending.pop(int.from_bytes(digest[:8], "big"), None) is not None

    def add(self, key: str) -> None:
        """Mark ``key`` seen (one of its records took the full path); kept only when tracking."""
        if self.track:
            self.judged.add(key)

    def seen(self, key: str) -> bool:
        """True when the extract held ``key`` (or the key was created after the snapshot); tracking only."""
        assert self.track
        if key in self.judged:
            return True
        if self._unmet is None:
            self._unmet = set(self.pending.values())
        return key not in self.unloaded and key not in self._unmet
