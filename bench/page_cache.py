"""Truly cold reads of one journal without dropping the whole machine's page cache.

``evict(paths)`` asks the kernel to forget the cached pages of the given files and of every file under the
given folders (``posix_fadvise(POSIX_FADV_DONTNEED)``), so the next read of a journal comes from the disk
while other people's files stay cached (``echo 3 > /proc/sys/vm/drop_caches`` would slow every bench on a
shared machine). Dirty pages are not dropped: write them first (SQLite checkpoints on close; PostgreSQL
writes its buffers when it stops, so stop the server, evict its data folder, start it).

``journal_files(url)`` names what to evict for a SQLite journal URL: the database file, its WAL and its
shared-memory index; ``evicter(url, pg_base)`` makes the call that leaves a journal cold, on either backend.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import sqlalchemy as sa


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file among ``paths`` and under those that are folders (missing ones skipped)."""
    for path in paths:
        if path.is_dir():
            yield from (found for found in sorted(path.rglob("*")) if found.is_file())
        elif path.is_file():
            yield path


def evict(paths: Iterable[Path]) -> tuple[int, int]:
    """Drop the page cache of ``paths`` (files, or folders walked recursively); return (files, bytes).

    Each file is advised ``POSIX_FADV_DONTNEED`` over its whole length; the kernel keeps the pages still
    dirty, so callers close or stop the writer first.
    """
    count = size = 0
    for path in _files(paths):
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            continue  # removed since the walk (a WAL after a checkpoint), or a socket's lock file
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            size += os.fstat(fd).st_size
            count += 1
        finally:
            os.close(fd)
    return count, size


def journal_files(url: str) -> list[Path]:
    """The files of a SQLite journal at ``url`` (database, WAL, shared memory); none for a server's URL."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    database = Path(parsed.database)
    return [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]


def evicter(url: str, pg_base: Path | None) -> Callable[[], None]:
    """A call that leaves the journal at ``url`` truly cold: its SQLite files evicted from the page cache,
    or the kept PostgreSQL server in ``pg_base`` stopped, its data folder evicted, started again."""
    files = journal_files(url)

    def evict_files() -> None:
        evict(files)

    if files:
        return evict_files
    if pg_base is None:
        sys.exit("a cold PostgreSQL journal needs --pg-base (the folder of bench/servers.py postgres start)")
    from bench.servers import kept_postgres

    pg = kept_postgres(pg_base.resolve())

    def restart() -> None:
        pg.stop()
        evict([pg.data])
        pg.start(pg.port)

    return restart
