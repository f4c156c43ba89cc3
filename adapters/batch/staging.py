"""The local staging area of an endpoint: downloads land under a temp name, are fsynced, then renamed.

Layout under ``settings.data_dir/batch/<system.endpoint>/``: ``staging/`` (complete downloads, named
``<sha256 prefix>_<remote name>``), ``rejects/`` (one reject file per input file), ``replies/``
(reconciliation reply files), ``outbox/`` (rendered outgoing files), ``state.db``.

Every folder is a data folder and every file a data file (:mod:`esb.files`: ``0600`` in ``0700`` by
default, never opened through a link); a file is written under a fresh temp name (``O_EXCL``) relative to
its folder's descriptor and renamed into place, so a link planted in these folders is never followed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from esb import files

if TYPE_CHECKING:
    from esb.context import AdapterContext


@dataclass(frozen=True)
class Dirs:
    """The folders of one endpoint."""

    root: Path

    @property
    def staging(self) -> Path:
        """Complete downloads."""
        return self.root / "staging"

    @property
    def rejects(self) -> Path:
        """Reject files (original line and reason)."""
        return self.root / "rejects"

    @property
    def replies(self) -> Path:
        """Reconciliation reply files and error notes."""
        return self.root / "replies"

    @property
    def outbox(self) -> Path:
        """Rendered outgoing files."""
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        """The state database."""
        return self.root / "state.db"

    def create(self) -> Dirs:
        """Create every folder as a data folder (or tighten it); return self."""
        for path in (self.root.parent, self.root, self.staging, self.rejects, self.replies, self.outbox):
            files.make_folder(path)
        return self


def endpoint_dirs(context: AdapterContext) -> Dirs:
    """The local folders of the endpoint ``context.endpoint``."""
    return Dirs(Path(context.settings.data_dir) / "batch" / context.endpoint)


class HashingWriter:
    """A file-like sink that counts and hashes (SHA-256) what goes through it, and shows it to
    ``observe`` (the whole-file check), so the download is the only pass that reads the bytes."""

    def __init__(self, target: BinaryIO, observe: Callable[[bytes], None] | None = None) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0
        self.observe = observe

    def write(self, data: bytes) -> int:
        """Write ``data``, hashing (and observing) it."""
        self.sha.update(data)
        self.size += len(data)
        if self.observe is not None:
            self.observe(bytes(data))
        return self.target.write(data)


@dataclass(frozen=True)
class Staged:
    """A complete, durable local copy."""

    path: Path
    size: int
    sha256: str


def stage(
    folder: Path,
    name: str,
    fetch: Callable[[BinaryIO], None],
    observe: Callable[[bytes], None] | None = None,
) -> Staged:
    """Download with ``fetch`` into ``folder`` under a temp name, fsync, hash, rename into place;
    ``observe`` sees every chunk as it is written (the whole-file check runs there).

    The temp file is removed if the download fails, so a half-downloaded file is never seen as staged.
    """
    with files.new_file(folder) as pending:
        writer = HashingWriter(pending.out, observe)
        fetch(writer)  # type: ignore[arg-type] # a write()-only file is all fetch needs
        sha = writer.sha.hexdigest()
        final = f"{sha[:16]}_{name}"
        pending.keep(final)
    return Staged(folder / final, writer.size, sha)
