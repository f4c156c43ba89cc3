"""bench/page_cache.py: which files a cold read evicts from the page cache."""

from __future__ import annotations

from pathlib import Path

from bench.page_cache import evict, journal_files


def test_evict_walks_folders_and_skips_missing_files(tmp_path: Path) -> None:
    """Files given, and every file under a folder given, are evicted once each; a missing path is skipped."""
    data = tmp_path / "data"
    (data / "base" / "16384").mkdir(parents=True)
    (data / "base" / "16384" / "2619").write_bytes(b"x" * 8192)
    (data / "PG_VERSION").write_bytes(b"15\n")
    db = tmp_path / "journal.db"
    db.write_bytes(b"y" * 4096)
    assert evict([data, db, tmp_path / "journal.db-wal"]) == (3, 8192 + 3 + 4096)


def test_journal_files_of_a_sqlite_url_and_of_a_server() -> None:
    """A SQLite journal's files are the database, its WAL and its shared memory; a server's URL has none."""
    assert journal_files("sqlite:////tmp/x/journal.db") == [
        Path("/tmp/x/journal.db"),
        Path("/tmp/x/journal.db-wal"),
        Path("/tmp/x/journal.db-shm"),
    ]
    assert journal_files("postgresql+psycopg://esb@127.0.0.1:5432/journal") == []
