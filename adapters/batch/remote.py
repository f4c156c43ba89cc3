"""The remote folder a batch endpoint reads or writes: one small interface over SFTP, FTP(S) and disk.

Names passed in are plain file names or ``dir/name`` below the endpoint's folder; every name that comes
from a listing is checked by :func:`check_name` before it is used in a path.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from adapters.batch.config import RemoteConfig
from adapters.batch.errors import UnsafeNameError, translated

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class RemoteEntry:
    """One file in a remote listing."""

    name: str
    size: int
    mtime: int


def check_name(name: str) -> str:
    """Return ``name`` when it is a plain file name; UnsafeNameError for traversal or control characters."""
    if not name or name in (".", "..") or _UNSAFE.search(name) or name.startswith("..") or ":" in name[:2]:
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
        """Return the plain files of ``folder`` (relative to the endpoint's path)."""
        ...

    def download(self, name: str, target: BinaryIO) -> None:
        """Stream ``name`` into ``target``."""
        ...

    def upload(self, source: BinaryIO, name: str) -> None:
        """Stream ``source`` into ``name`` (overwritten if present)."""
        ...

    def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new`` (which must not exist)."""
        ...

    def remove(self, name: str) -> None:
        """Delete ``name``."""
        ...

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` if missing."""
        ...


def read_secret(path: Path | None) -> str | None:
    """Return the contents of a secret file (stripped), or None."""
    return path.read_text(encoding="utf-8").strip() if path is not None else None


class LocalRemote:
    """A local (or mounted) folder, for tests and for systems that drop files on a shared disk."""

    def __init__(self, config: RemoteConfig, project_dir: Path) -> None:
        self.config = config
        root = Path(config.path)
        self.root = root if root.is_absolute() else project_dir / root
        self.where = config.display()

    def _p(self, name: str) -> Path:
        return self.root / name

    def connect(self) -> None:
        """Create the folder if missing (a local exchange folder is the hub's own)."""
        with translated("open folder", self.where):
            self.root.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Nothing to close."""

    def list(self, folder: str = "") -> list[RemoteEntry]:
        """List plain files."""
        with translated("list", self.where):
            out = []
            for entry in os.scandir(self._p(folder)):
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.append(RemoteEntry(entry.name, st.st_size, int(st.st_mtime)))
            return out

    def download(self, name: str, target: BinaryIO) -> None:
        """Copy ``name`` into ``target``."""
        with translated(f"download {name}", self.where), self._p(name).open("rb") as src:
            shutil.copyfileobj(src, target, 1024 * 1024)

    def upload(self, source: BinaryIO, name: str) -> None:
        """Copy ``source`` into ``name``."""
        with translated(f"upload {name}", self.where), self._p(name).open("wb") as dst:
            shutil.copyfileobj(source, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())

    def rename(self, old: str, new: str) -> None:
        """Rename, refusing to overwrite."""
        with translated(f"rename {old} -> {new}", self.where):
            if self._p(new).exists():
                raise FileExistsError(f"{new} already exists")
            os.rename(self._p(old), self._p(new))

    def remove(self, name: str) -> None:
        """Delete ``name``."""
        with translated(f"remove {name}", self.where):
            self._p(name).unlink()

    def makedirs(self, folder: str) -> None:
        """Create ``folder``."""
        with translated(f"mkdir {folder}", self.where):
            self._p(folder).mkdir(parents=True, exist_ok=True)


def make_remote(config: RemoteConfig, project_dir: Path) -> Remote:
    """Return an unconnected remote for ``config``."""
    if config.protocol == "local":
        return LocalRemote(config, project_dir)
    if config.protocol == "sftp":
        from adapters.batch.sftp import SFTPRemote

        return SFTPRemote(config, project_dir)
    from adapters.batch.ftp import FTPRemote

    return FTPRemote(config, project_dir)
