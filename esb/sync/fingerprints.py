"""Fingerprints of extract records: a full resync skips, without parsing or mapping, what did not change.

After a resync judged a record, it stores per (sync, key) the record's fingerprint (128-bit BLAKE2b of
the rules' digest and the record's raw bytes) and the key's state revision at that moment
(``sync_lines``). In the next resync, a record whose fingerprint is stored for a key whose state is still
at that revision (read once at the start: :meth:`Fingerprints.snapshot`, esb/resync/skip.py) is
unchanged: the same bytes read by the same rules give the same change, judged against the same state.
Anything else (new bytes, a state that live traffic or a repair moved since, other rules) takes the
full path: parse, map, judge.

The rules' digest covers the sync step's declaration and the resync's transform files, so editing
either makes every record take the full path once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from esb.sync.rawrows import raw_pages
from esb.sync.runtables import sync_lines
from esb.sync.store import IN_CHUNK, SyncStore
from esb.sync.tables import sync_state

_L = sync_lines.c
_S = sync_state.c


def rules_digest(*parts: str | bytes) -> bytes:
    """A digest of the rules that read a record (the step's declaration, the transform's files)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.digest()


def transform_files(path: Path) -> bytes:
    """The bytes of a transform's file and of the Python modules beside it (a python transform's code)."""
    files = [path, *sorted(p for p in path.parent.glob("*.py"))]
    return b"\0".join(p.read_bytes() for p in files if p.is_file())


class Fingerprints:
    """The ``sync_lines`` rows of one sync."""

    def __init__(self, store: SyncStore, name: str, digest: bytes) -> None:
        self.store = store
        self.name = name
        self.digest = digest

    def of(self, raw: bytes) -> str:
        """The fingerprint of one raw record."""
        return hashlib.blake2b(self.digest + raw, digest_size=16).hexdigest()

    def snapshot(self, *, page: int = 10_000) -> Iterator[list[tuple[str, str | None]]]:
        """Every key of the sync with its stored fingerprint when its state has not moved since that
        fingerprint was judged, else None: pages of ``(key, fingerprint | None)``, one streaming pass
        over the driver's cursor (:func:`~esb.sync.rawrows.raw_pages`: no SQLAlchemy row per key)."""
        on = sa.and_(_L.name == _S.name, _L.key == _S.key, _L.revision == _S.revision)
        query = (
            sa.select(_S.key, _L.line)
            .select_from(sa.outerjoin(sync_state, sync_lines, on))
            .where(_S.name == self.name)
        )
        with self.store.errors("sync lines"), self.store.read_engine().connect() as conn:
            yield from raw_pages(conn, query, page, name="esb_sync_snapshot")

    def current(self, keys: Sequence[str]) -> list[str]:
        """The stored fingerprints of ``keys`` whose state has not moved since (one query per 500 keys)."""
        on = sa.and_(_L.name == _S.name, _L.key == _S.key, _L.revision == _S.revision)
        found: list[str] = []
        with self.store.errors("sync lines"), self.store.read_engine().connect() as conn:
            for start in range(0, len(keys), IN_CHUNK):
                query = (
                    sa.select(_L.line)
                    .select_from(sa.join(sync_lines, sync_state, on))
                    .where(_L.name == self.name, _L.key.in_(keys[start : start + IN_CHUNK]))
                )
                found.extend(line for (line,) in conn.execute(query))
        return found

    def states(self, *, chunk: int = 5000) -> Iterator[list[tuple[str, bool, str | None, str | None]]]:
        """Yield the sync's ``(key, deleted, message_id, fingerprint | None)`` in key order, ``chunk`` at a
        time (keyset pages); the fingerprint when the key's state has not moved since it was stored."""
        on = sa.and_(_L.name == _S.name, _L.key == _S.key, _L.revision == _S.revision)
        last: str | None = None
        while True:
            query = (
                sa.select(_S.key, _S.deleted, _S.message_id, _L.line)
                .select_from(sa.outerjoin(sync_state, sync_lines, on))
                .where(_S.name == self.name)
                .order_by(_S.key)
                .limit(chunk)
            )
            if last is not None:
                query = query.where(_S.key > last)
            with self.store.errors("sync lines"), self.store.read_engine().connect() as conn:
                rows = [
                    (key, bool(deleted), sender, line) for key, deleted, sender, line in conn.execute(query)
                ]
            if not rows:
                return
            yield rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    def remember(self, lines: dict[str, tuple[str, int]]) -> None:
        """Store ``{key: (fingerprint, the state revision it was judged against)}`` in one transaction."""
        if not lines:
            return
        rows = [
            {"name": self.name, "key": key, "line": line, "revision": revision}
            for key, (line, revision) in lines.items()
        ]
        dialect = self.store.write_engine().dialect.name
        insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(sync_lines)
        statement = insert.on_conflict_do_update(
            index_elements=["name", "key"],
            set_={"line": insert.excluded.line, "revision": insert.excluded.revision},
        )
        with self.store.errors("sync lines"), self.store.write_engine().begin() as conn:
            conn.execute(statement, rows)

    def forget(self) -> None:
        """Drop the sync's fingerprints (the next resync judges every record)."""
        with self.store.errors("sync lines"), self.store.write_engine().begin() as conn:
            conn.execute(sa.delete(sync_lines).where(_L.name == self.name))
