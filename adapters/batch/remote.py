"""The remote folder a batch endpoint reads or writes: one small interface over SFTP, FTP(S) and disk.

Names passed in are plain file names or ``dir/name`` below the endpoint's folder; every name that comes
from a listing is checked by :func:`check_name` before it is used in a path. Listings give every entry
with its kind (``file``, ``folder``, ``link``, ``other``) so that the poller can refuse what is not a
plain file instead of ignoring it. An upload goes to a fresh random temp name beside its target and is
renamed into place: no name the hub writes is predictable before it exists, and a link planted under the
final name is replaced by the rename, never followed (see docs/batch.md for what each protocol allows).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from adapters.batch.config import RemoteConfig
from adapters.batch.errors import UnsafeNameError, translated
from esb import files

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")

Kind = Literal["file", "folder", "link", "other"]


@dataclass(frozen=True)
class RemoteEntry:
    """One entry in a remote listing: a plain file unless ``kind`` says otherwise."""

    name: str
    size: int
    mtime: int
    kind: Kind = "file"


def plain_files(entries: Iterable[RemoteEntry]) -> list[RemoteEntry]:
    """Return the plain files of a listing."""
    return [e for e in entries if e.kind == "file"]


def kind_of(mode: int | None) -> Kind:
    """Return the kind of an entry from its (lstat) mode bits; no mode means a plain file."""
    if mode is None or stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    return "folder" if stat.S_ISDIR(mode) else "other"


def temp_name(name: str) -> str:
    """A fresh, unpredictable temp name beside ``name`` (``dir/.<base>.<random>.part``)."""
    folder, _, base = name.rpartition("/")
    tmp = f".{base}.{uuid.uuid4().hex[:12]}.part"
    return f"{folder}/{tmp}" if folder else tmp


def check_name(name: str) -> str:
    """Return ``name`` when it is a plain file name; UnsafeNameError for ``..``, separators or control
    characters (a name containing ``..`` anywhere is refused, as docs/batch.md says)."""
    if not name or name in (".", "..") or _UNSAFE.search(name) or ".." in name or ":" in name[:2]:
        raise UnsafeNameError(
            f"unsafe remote file name {name!r}: path separators, '..', NUL and control characters are refused"
        )
    return name


class Remote(Protocol):
    """A remote folder: list, transfer, rename. Every method raises RemoteTransferError on failure."""

    def connect(self) -> None:
        """Open the connection."""
        ...

    def close(self) -> None:
        """Close it. Safe to call twice."""
        ...

    def list(self, folder: str = "") -> list[RemoteEntry]:
        """Return every entry of ``folder`` (relative to the endpoint's path), with its kind."""
        ...

    def download(self, name: str, target: BinaryIO) -> None:
        """Stream ``name`` into ``target``."""
        ...

    def upload(self, source: BinaryIO, name: str) -> None:
        """Stream ``source`` to a fresh temp name beside ``name``, then rename it to ``name`` (replacing a
        file there). A dropped connection leaves at most the dotted temp name."""
        ...

    def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new`` (which must not exist)."""
        ...

    def remove(self, name: str) -> None:
        """Delete ``name``."""
        ...

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` if missing; a link in its place is refused."""
        ...


def read_secret(path: Path | None) -> str | None:
    """Return the contents of a secret file (stripped), or None."""
    return path.read_text(encoding="utf-8").strip() if path is not None else None


class LocalRemote:
    """A local (or mounted) folder, for tests and for systems that drop files on a shared disk.

    Every operation works relative to folder descriptors opened without following links (the endpoint's
    folder, then each component of ``dir/name``), so a link planted anywhere below the folder is refused
    or replaced, never followed; uploads are created ``O_EXCL | O_NOFOLLOW`` with the data-file mode.
    """

    def __init__(self, config: RemoteConfig, project_dir: Path) -> None:
        self.config = config
        root = Path(config.path)
        self.root = root if root.is_absolute() else project_dir / root
        self.where = config.display()

    @contextlib.contextmanager
    def _folder(self, folder: str, *, create: bool = False) -> Iterator[int]:
        """The descriptor of ``folder`` below the root, each component opened without following a link
        (and made a data folder first when ``create``)."""
        fd = files.open_folder(self.root)
        try:
            for part in (p for p in folder.split("/") if p):
                open_part = files.make_subfolder if create else files.open_folder
                inner = open_part(part, folder=fd)
                os.close(fd)
                fd = inner
            yield fd
        finally:
            os.close(fd)

    def connect(self) -> None:
        """Create the folder if missing (a local exchange folder is the hub's own)."""
        with translated("open folder", self.where):
            if not os.path.lexists(self.root):
                files.make_folder(self.root)  # an existing exchange folder keeps its modes (a peer's too)
            with self._folder(""):  # a link in place of the folder is refused
                pass

    def close(self) -> None:
        """Nothing to close."""

    def list(self, folder: str = "") -> list[RemoteEntry]:
        """List every entry with its kind (links are reported, never followed)."""
        with translated("list", self.where), self._folder(folder) as fd:
            out = []
            for name in os.listdir(fd):
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since the listing (another writer's temp file renamed into place)
                out.append(RemoteEntry(name, st.st_size, int(st.st_mtime), kind_of(st.st_mode)))
            return out

    def download(self, name: str, target: BinaryIO) -> None:
        """Copy ``name`` into ``target`` (a link is refused)."""
        folder, _, base = name.rpartition("/")
        with (
            translated(f"download {name}", self.where),
            self._folder(folder) as fd,
            files.open_file(base, "read", folder=fd) as src,
        ):
            shutil.copyfileobj(src, target, 1024 * 1024)

    def upload(self, source: BinaryIO, name: str) -> None:
        """Copy ``source`` into a fresh temp file (``O_EXCL | O_NOFOLLOW``, data-file mode), fsync, rename
        it to ``name`` (a link there is replaced, not followed), fsync the folder."""
        folder, _, base = name.rpartition("/")
        with (
            translated(f"upload {name}", self.where),
            self._folder(folder) as fd,
            files.new_file(fd) as pending,
        ):
            shutil.copyfileobj(source, pending.out, 1024 * 1024)
            pending.keep(base)

    def rename(self, old: str, new: str) -> None:
        """Rename, refusing to overwrite anything (a link included) at ``new``."""
        old_dir, _, old_base = old.rpartition("/")
        new_dir, _, new_base = new.rpartition("/")
        with (
            translated(f"rename {old} -> {new}", self.where),
            self._folder(old_dir) as src,
            self._folder(new_dir) as dst,
        ):
            try:
                os.stat(new_base, dir_fd=dst, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                raise FileExistsError(errno.EEXIST, f"{new} already exists")
            os.rename(old_base, new_base, src_dir_fd=src, dst_dir_fd=dst)

    def remove(self, name: str) -> None:
        """Delete ``name`` (a link itself, never its target)."""
        folder, _, base = name.rpartition("/")
        with translated(f"remove {name}", self.where), self._folder(folder) as fd:
            os.unlink(base, dir_fd=fd)

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` (each component a data folder; a link in the way is refused)."""
        with translated(f"mkdir {folder}", self.where), self._folder(folder, create=True):
            pass


def make_remote(config: RemoteConfig, project_dir: Path) -> Remote:
    """Return an unconnected remote for ``config``."""
    if config.protocol == "local":
        return LocalRemote(config, project_dir)
    if config.protocol == "sftp":
        from adapters.batch.sftp import SFTPRemote

        return SFTPRemote(config, project_dir)
    from adapters.batch.ftp import FTPRemote

    return FTPRemote(config, project_dir)
