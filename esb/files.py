"""Data files: created private to the hub's account, never through a symbolic link.

Everything the hub writes under ``settings.data_dir`` (journal, embedded queues, batch state, staging,
rejects, replies, outbox, archives) and into an exchange folder it shares with a peer system holds
customers' data. Two rules hold for all of it:

* **Modes.** Files are created ``0600`` in ``0700`` folders (``files.mode: private``, the default), or
  ``0660`` in ``2770`` folders (``files.mode: group``: several accounts of one group run the hub; the
  set-group-id bit makes new entries inherit the folder's group, ``files.group`` names it). The modes are
  given to ``open``/``mkdir`` and then made exact with ``fchmod``/``chmod`` (a umask may only take bits
  away), and an existing data folder is tightened when the hub opens it.
* **No links.** A file is opened with ``O_NOFOLLOW`` (a link planted under the name the hub is about to
  write makes the open fail with ``ELOOP`` instead of overwriting the link's target), temp files with
  ``O_EXCL`` as well, and folders are opened with ``O_DIRECTORY | O_NOFOLLOW`` so that a folder swapped
  for a link is refused too. :func:`open_folder` and the ``folder=`` arguments let a caller work relative
  to a folder descriptor, so no path component can be swapped between the check and the use.

:func:`configure` sets the modes for the process (the hub calls it with ``settings.files``);
:func:`process_umask` gives the matching umask for what libraries create on their own.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, cast

from esb.exceptions import ConfigError, TransportError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass(frozen=True)
class FileModes:
    """The permission bits of data folders and files, and the group that owns them (None: unchanged)."""

    folder: int = 0o700
    file: int = 0o600
    gid: int | None = None

    @property
    def umask(self) -> int:
        """The process umask that creates files no wider than these modes."""
        return 0o777 & ~(self.file | self.folder) & 0o777


PRIVATE = FileModes()
_current = PRIVATE


def modes_for(mode: Literal["private", "group"], group: str | None = None) -> FileModes:
    """Return the modes of ``files.mode`` (``private`` or ``group``) and ``files.group``."""
    gid: int | None = None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"files.group: no group named {group!r} on this machine") from None
    if mode == "group":
        return FileModes(folder=0o2770, file=0o660, gid=gid)
    return FileModes(gid=gid)


def configure(modes: FileModes) -> None:
    """Use ``modes`` for every data file and folder this process creates from now on."""
    global _current
    _current = modes


def current() -> FileModes:
    """The modes in force in this process."""
    return _current


def process_umask(modes: FileModes | None = None) -> int:
    """Set the process umask matching ``modes`` (for files libraries create); return the old one."""
    return os.umask((modes or _current).umask)


class UnsafePathError(TransportError):
    """A data path is a symbolic link or not what the hub expects there (a file where a folder is due).

    Retryable as a transport error: an operator removes the link and the next attempt goes through.
    """


_UNSAFE_ERRNOS = {
    errno.ELOOP: "is a symbolic link: refused (the hub never writes through links)",
    errno.EMLINK: "is a symbolic link: refused (the hub never writes through links)",
    errno.ENOTDIR: "is not a folder (a link or a file where a folder is due): refused",
    errno.EINVAL: "is not a regular file (a link, folder, fifo or device where a file is due): refused",
}


def _refused(path: Path | str, error: OSError) -> UnsafePathError:
    """The UnsafePathError of a link or an entry of the wrong kind at ``path``."""
    return UnsafePathError(f"{path} {_UNSAFE_ERRNOS[error.errno or errno.EINVAL]}", endpoint=str(path))


def _raise_if_unsafe(path: Path | str, error: OSError) -> None:
    """Raise UnsafePathError when ``error`` says a link or an entry of the wrong kind is at ``path``; any
    other error (missing, no permission) is the caller's to re-raise as it is."""
    if error.errno in _UNSAFE_ERRNOS:
        raise _refused(path, error) from error


def _exact(fd: int, mode: int, modes: FileModes) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        return  # not ours to change (a shared folder made by another account of the group)
    if modes.gid is not None and st.st_gid != modes.gid:
        os.fchown(fd, -1, modes.gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)


def open_folder(path: Path | str, *, folder: int | None = None) -> int:
    """Open the folder ``path`` (relative to the folder descriptor ``folder`` if given) without
    following a link at its last component; return its descriptor. UnsafePathError otherwise."""
    try:
        return os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=folder)
    except OSError as error:
        _raise_if_unsafe(path, error)
        raise


@contextlib.contextmanager
def folder_fd(path: Path | str, *, folder: int | None = None) -> Iterator[int]:
    """:func:`open_folder` as a context manager that closes the descriptor."""
    fd = open_folder(path, folder=folder)
    try:
        yield fd
    finally:
        os.close(fd)


def make_folder(path: Path, modes: FileModes | None = None, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and missing parents) as a data folder, or tighten it to the data-folder mode if it
    exists (unless ``tighten_existing`` is false: a folder the hub was only given, such as the one holding
    a configured database file); a link or a file at ``path`` is refused. Parents that existed are left
    as they are."""
    modes = modes or _current
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)][::-1]
    for folder in missing:  # parents made here are data folders too (mkdir's mode is cut by the umask)
        try:
            folder.mkdir(mode=modes.folder & 0o777)
        except FileExistsError:
            pass
        except OSError as error:
            _raise_if_unsafe(folder, error)
            raise
    for folder in missing or [path]:  # what was made here, or the folder that was there
        with folder_fd(folder) as fd:  # refuses a link or a file where the folder is due
            if missing or tighten_existing:
                _exact(fd, modes.folder, modes)
    return path


def make_subfolder(name: str, *, folder: int, modes: FileModes | None = None) -> int:
    """Create (or open) the data folder ``name`` inside the folder descriptor ``folder``; return its
    descriptor (the caller closes it). A link named ``name`` is refused."""
    modes = modes or _current
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, modes.folder & 0o777, dir_fd=folder)
    fd = open_folder(name, folder=folder)
    try:
        _exact(fd, modes.folder, modes)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(
    path: Path | str,
    how: Literal["write", "new", "append", "read"] = "write",
    *,
    folder: int | None = None,
    modes: FileModes | None = None,
) -> BinaryIO:
    """Open a data file without following a link: ``write`` (create or truncate), ``new`` (must not exist:
    temp files), ``append`` (create or keep) or ``read``. The file gets the data-file mode."""
    modes = modes or _current
    flags = {
        "write": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "new": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
        "append": os.O_RDWR | os.O_CREAT,
        "read": os.O_RDONLY,
    }[how]
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC, modes.file & 0o777, dir_fd=folder)
    except OSError as error:
        _raise_if_unsafe(path, error)
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refused(path, OSError(errno.EINVAL, "not a regular file"))
        if how != "read":
            _exact(fd, modes.file, modes)
        mode = {"write": "wb", "new": "wb", "append": "r+b", "read": "rb"}[how]
        handle = cast(BinaryIO, os.fdopen(fd, mode))
    except BaseException:
        os.close(fd)
        raise
    if how == "append":
        handle.seek(0, os.SEEK_END)
    return handle


def create_private(path: Path, modes: FileModes | None = None) -> Path:
    """Make sure ``path`` exists as a data file with the data-file mode (before a library such as SQLite
    opens it: SQLite gives its ``-wal`` and ``-shm`` files the database file's mode).

    An existing file is never opened here, only checked (``lstat``) and ``chmod``-ed: closing a descriptor
    of a SQLite database drops every POSIX lock this process holds on it, other connections' included.
    """
    modes = modes or _current
    make_folder(path.parent, modes, tighten_existing=False)  # /tmp/j.db must not make /tmp 0700
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, modes.file & 0o777)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _refused(path, OSError(errno.ELOOP if stat.S_ISLNK(st.st_mode) else errno.EINVAL,
                                         "not a regular file")) from None
        if st.st_uid == os.geteuid():
            if modes.gid is not None and st.st_gid != modes.gid:
                os.chown(path, -1, modes.gid)
            if stat.S_IMODE(st.st_mode) != modes.file:
                os.chmod(path, modes.file)
        return path
    try:  # new and empty: nobody can hold a lock on it yet
        _exact(fd, modes.file, modes)
    finally:
        os.close(fd)
    return path


class NewFile:
    """A fresh temp file in a folder, open for writing; :meth:`keep` makes it durable under a name."""

    def __init__(self, folder: int, tmp: str, out: BinaryIO) -> None:
        self.folder = folder
        self.tmp = tmp
        self.out = out
        self.kept = False

    def keep(self, name: str) -> None:
        """Flush, fsync, rename the temp file to ``name`` in its folder (replacing, never following a link
        there) and fsync the folder."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        os.replace(self.tmp, name, src_dir_fd=self.folder, dst_dir_fd=self.folder)
        os.fsync(self.folder)
        self.kept = True


@contextlib.contextmanager
def new_file(folder: Path | int, *, modes: FileModes | None = None) -> Iterator[NewFile]:
    """Open a fresh temp file (``O_EXCL | O_NOFOLLOW``, data-file mode) in ``folder`` (a path, opened
    without following a link, or a folder descriptor); removed unless :meth:`NewFile.keep` was called."""
    with contextlib.ExitStack() as stack:
        fd = folder if isinstance(folder, int) else stack.enter_context(folder_fd(folder))
        tmp = f".{uuid.uuid4().hex}.part"
        pending = NewFile(fd, tmp, open_file(tmp, "new", folder=fd, modes=modes))
        try:
            yield pending
        finally:
            if not pending.kept:
                pending.out.close()
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)


def write_file(path: Path, data: bytes, *, modes: FileModes | None = None) -> None:
    """Write ``data`` to the data file ``path`` durably: a fresh temp file (``O_EXCL``), fsync, rename
    over ``path``, fsync the folder. A link at ``path`` is replaced, never followed."""
    with new_file(path.parent, modes=modes) as pending:
        pending.out.write(data)
        pending.keep(path.name)


def tighten_tree(root: Path, modes: FileModes | None = None) -> int:
    """Give every folder and file under ``root`` (links skipped, never followed) the data modes; return
    how many were changed. For a data folder written by an older version with 0755/0644.

    An entry that vanishes while the tree is walked (a SQLite rollback journal of a store another process
    is writing, a spool file moved on) is skipped: it no longer needs a mode."""
    modes = modes or _current
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name, mode in [(d, modes.folder) for d in dirnames] + [(f, modes.file) for f in filenames]:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
                    continue
                if stat.S_IMODE(st.st_mode) != mode:
                    os.chmod(path, mode)  # not a link (lstat above); the data folder is the hub's own
                    changed += 1
            except FileNotFoundError:
                continue
    return changed
