"""Data files: created private (0600 in 0700 folders, or the group modes), never through a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from esb import files
from esb.files import FileModes, UnsafePathError
from esb.journal import Journal


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """Run with the common 022 umask, so that only the code's own modes can make files private."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    """The permission bits of ``path`` (not following a link)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_folders_and_files_are_private(tmp_path: Path) -> None:
    """A data folder is 0700 and a data file 0600 although the umask would allow 0755/0644."""
    folder = files.make_folder(tmp_path / "a" / "b")
    with files.open_file(folder / "data.bin") as out:
        out.write(b"x")
    files.write_file(folder / "durable.bin", b"y")
    assert mode(folder) == 0o700
    assert mode(folder.parent) == 0o700  # parents made on the way are data folders too
    assert mode(folder / "data.bin") == 0o600
    assert mode(folder / "durable.bin") == 0o600
    assert (folder / "durable.bin").read_bytes() == b"y"


def test_existing_folder_and_file_are_tightened(tmp_path: Path) -> None:
    """A folder and a file an older version left 0755/0644 become 0700/0600 when the hub opens them."""
    folder = tmp_path / "old"
    folder.mkdir(mode=0o755)
    (folder / "journal.db").write_bytes(b"")
    os.chmod(folder / "journal.db", 0o644)
    files.make_folder(folder)
    with files.open_file(folder / "journal.db", "append"):
        pass
    assert (mode(folder), mode(folder / "journal.db")) == (0o700, 0o600)


def test_tighten_tree_fixes_every_entry_and_skips_links(tmp_path: Path) -> None:
    """tighten_tree gives each folder and file under the root the data modes; a link's target is left."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    os.chmod(outside, 0o644)
    root = tmp_path / "var"
    (root / "batch" / "x").mkdir(parents=True)
    (root / "batch" / "x" / "state.db").write_bytes(b"")
    os.chmod(root / "batch" / "x" / "state.db", 0o644)
    (root / "link").symlink_to(outside)
    assert files.tighten_tree(root) == 3
    assert mode(root / "batch") == 0o700
    assert mode(root / "batch" / "x" / "state.db") == 0o600
    assert mode(outside) == 0o644


def test_tighten_tree_skips_a_file_that_vanishes_during_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tighten_tree skips an entry removed between the walk's listing and its lstat (a SQLite journal)."""
    root = tmp_path / "var"
    root.mkdir()
    (root / "queues.db").write_bytes(b"")
    os.chmod(root / "queues.db", 0o644)
    walk = os.walk

    def listing_with_a_vanished_file(
        top: Path, followlinks: bool
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for dirpath, dirnames, filenames in walk(top, followlinks=followlinks):
            yield dirpath, dirnames, [*filenames, "queues.db-journal"]  # listed, then gone

    monkeypatch.setattr(os, "walk", listing_with_a_vanished_file)
    assert files.tighten_tree(root) == 1
    assert mode(root / "queues.db") == 0o600


def test_group_mode_shares_with_the_group(tmp_path: Path) -> None:
    """files.mode: group gives folders 2770 (set-group-id) and files 0660."""
    modes = files.modes_for("group")
    folder = files.make_folder(tmp_path / "shared", modes)
    with files.open_file(folder / "f", modes=modes):
        pass
    assert mode(folder) == 0o2770
    assert mode(folder / "f") == 0o660
    assert modes.umask == 0o007
    assert files.PRIVATE.umask == 0o077


def test_unknown_group_is_a_config_error() -> None:
    """files.group naming no group on this machine is refused with the option's name."""
    with pytest.raises(Exception, match=r"files\.group"):
        files.modes_for("private", "no-such-group-esb")


def test_a_link_planted_under_a_file_name_is_refused_and_its_target_unchanged(tmp_path: Path) -> None:
    """Writing to a name that is a symbolic link fails; the link's target keeps its content."""
    target = tmp_path / "journal.db"
    target.write_bytes(b"precious")
    folder = files.make_folder(tmp_path / "replies")
    (folder / "x.rec").symlink_to(target)
    for how in ("write", "append", "new"):
        with pytest.raises((UnsafePathError, FileExistsError)):
            files.open_file(folder / "x.rec", how)  # type: ignore[arg-type]
    assert target.read_bytes() == b"precious"


def test_write_file_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    """write_file renames a fresh temp file over the name: a link there is replaced, its target kept."""
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    folder = files.make_folder(tmp_path / "out")
    (folder / "reply.rec").symlink_to(target)
    files.write_file(folder / "reply.rec", b"reply")
    assert not (folder / "reply.rec").is_symlink()
    assert (folder / "reply.rec").read_bytes() == b"reply"
    assert target.read_bytes() == b"precious"


def test_a_folder_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    """A link where a data folder is due is refused, by make_folder and by open_folder."""
    elsewhere = files.make_folder(tmp_path / "elsewhere")
    (tmp_path / "staging").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match=r"symbolic link|not a folder"):
        files.make_folder(tmp_path / "staging")
    with pytest.raises(UnsafePathError):
        files.open_folder(tmp_path / "staging")
    with files.folder_fd(tmp_path) as fd, pytest.raises(UnsafePathError):
        files.make_subfolder("staging", folder=fd)


def test_journal_database_and_its_wal_are_private(tmp_path: Path) -> None:
    """The SQLite journal, its -wal and -shm files are 0600 in a 0700 folder under a 022 umask."""
    files.configure(FileModes())
    journal = Journal(f"sqlite:///{tmp_path}/var/journal.db")
    journal.connect()
    try:
        made = sorted(p.name for p in (tmp_path / "var").iterdir())
        assert "journal.db" in made
        assert {p.name: mode(p) for p in (tmp_path / "var").iterdir()} == dict.fromkeys(made, 0o600)
        assert mode(tmp_path / "var") == 0o700
    finally:
        journal.close()


def test_embedded_queue_database_is_private(tmp_path: Path) -> None:
    """The embedded transport's queues.db (and -wal, -shm) is 0600 under a 022 umask."""
    from adapters.queue.sqlite_transport import open_database

    db = open_database(str(tmp_path / "q" / "queues.db"), busy_timeout=1.0, synchronous="NORMAL")
    try:
        db.execute("INSERT INTO esb_queues VALUES ('a', 0)")
        modes = {p.name: mode(p) for p in (tmp_path / "q").iterdir()}
    finally:
        db.close()
    assert modes["queues.db"] == 0o600
    assert set(modes.values()) == {0o600}
    assert mode(tmp_path / "q") == 0o700


def test_create_private_keeps_other_connections_locks(tmp_path: Path) -> None:
    """Preparing an existing SQLite file again does not open it (closing a descriptor would drop this
    process's POSIX locks on it): a write transaction held by another connection still blocks a writer."""
    import sqlite3

    path = files.create_private(tmp_path / "q.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    os.chmod(path, 0o644)
    files.create_private(path)
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    holder.execute("ROLLBACK")
    holder.close()
    other.close()
    assert mode(path) == 0o600


def test_create_private_refuses_a_link(tmp_path: Path) -> None:
    """A link planted where the journal file is due is refused, its target untouched."""
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    (tmp_path / "journal.db").symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        files.create_private(tmp_path / "journal.db")
    assert target.read_bytes() == b"precious"


def test_a_missing_file_is_reported_as_missing_not_as_unsafe(tmp_path: Path) -> None:
    """Opening a file or folder that does not exist raises FileNotFoundError, not UnsafePathError."""
    with pytest.raises(FileNotFoundError):
        files.open_file(tmp_path / "nope", "read")
    with pytest.raises(FileNotFoundError):
        files.open_folder(tmp_path / "nope")


def test_create_private_leaves_an_existing_folder_as_it_is(tmp_path: Path) -> None:
    """A database file put in a folder that already exists (``sqlite:////tmp/j.db``) does not tighten that
    folder: /tmp keeps 1777, a shared folder keeps 0755; only the file is private."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    files.create_private(shared / "journal.db")
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert mode(shared / "journal.db") == 0o600
