"""SFTP with paramiko: host keys checked against known_hosts (RejectPolicy), prefetch and pipelining.

Names go to the server as bytes in the endpoint's ``name_encoding``. A legacy server's GBK names make
``listdir()`` raise UnicodeDecodeError, and in paramiko 5 even ``listdir_attr(bytes_path)`` decodes
the names as UTF-8: the listing here reads them as bytes (``_listdir_raw``).
One SFTPRemote per thread: paramiko's clients are not shared between threads.

Links: listings come from the server's ``lstat`` (OpenSSH's READDIR), so a link is listed as a link.
Each folder below the endpoint's path is checked with ``lstat`` before a file is written into it or
renamed out of it (a link in place of ``done/`` is refused); an upload is created exclusively
(``O_CREAT | O_EXCL``, which never follows a link) under a fresh random temp name and renamed into place
with ``posix-rename@openssh.com`` (``rename(2)``: a link under the final name is replaced, never
followed). SFTP has no folder descriptors: a folder swapped for a link between the check and the use
is not detected; the hub then acts with the rights of its SFTP account only.
"""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path
from typing import Any, BinaryIO

from adapters.batch.config import RemoteConfig
from adapters.batch.errors import HostKeyError, RemoteTransferError, translated
from adapters.batch.remote import RemoteEntry, kind_of, read_secret, temp_name
from esb.files import UnsafePathError

CHUNK = 256 * 1024


def _listdir_raw(sftp: Any, path: bytes) -> list[Any]:
    """``listdir_attr`` keeping names as bytes: paramiko's own decodes them as UTF-8 and raises on GBK."""
    from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR, SFTPError
    from paramiko.sftp_attr import SFTPAttributes

    kind, msg = sftp._request(CMD_OPENDIR, path)
    if kind != CMD_HANDLE:
        raise SFTPError("Expected handle")
    handle = msg.get_binary()
    out = []
    try:
        while True:
            try:
                kind, msg = sftp._request(CMD_READDIR, handle)
            except EOFError:
                break
            if kind != CMD_NAME:
                raise SFTPError("Expected name response")
            for _ in range(msg.get_int()):
                filename, longname = msg.get_binary(), msg.get_binary()
                attr = SFTPAttributes._from_msg(msg, filename, longname)
                if filename not in (b".", b".."):
                    out.append(attr)
    finally:
        sftp._request(CMD_CLOSE, handle)
    return out


def quiet_read_ahead(remote: Any) -> None:
    """Make paramiko's read-ahead thread of the open file ``remote`` end quietly when the connection is lost.

    ``SFTPFile.prefetch`` sends the read requests from a thread of its own, which dies with an unhandled
    ``EOFError`` (a traceback on stderr, a failure under pytest) when the connection drops while it sends
    (paramiko issue #2379). The download's own thread meets the same loss at its next read and reports it
    (``RemoteTransferError``), so nothing is lost by ending the read-ahead without a word.
    """
    from paramiko import SSHException

    send_requests = remote._prefetch_thread  # what prefetch() starts in its thread (paramiko 3-5)

    def read_ahead(chunks: Any, max_concurrent_requests: Any) -> None:
        with contextlib.suppress(EOFError, OSError, SSHException):
            send_requests(chunks, max_concurrent_requests)

    remote._prefetch_thread = read_ahead


class SFTPRemote:
    """A folder on an SFTP server."""

    def __init__(self, config: RemoteConfig, project_dir: Path) -> None:
        self.config = config
        self.project_dir = project_dir
        self.where = config.display()
        self._ssh: Any = None
        self._sftp: Any = None

    def _file(self, path: Path | None) -> str | None:
        if path is None:
            return None
        return str(path if path.is_absolute() else self.project_dir / path)

    def connect(self) -> None:
        """Connect, check the host key against known_hosts (never added), authenticate, open SFTP."""
        import paramiko

        cfg = self.config
        known_hosts = self._file(cfg.known_hosts)
        assert known_hosts is not None
        ssh = paramiko.SSHClient()
        with translated("connect", self.where):
            if not Path(known_hosts).is_file():
                raise HostKeyError(f"known_hosts file {known_hosts} not found", endpoint=self.where)
            ssh.load_host_keys(known_hosts)
            ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                ssh.connect(
                    cfg.host,
                    port=cfg.port or 22,
                    username=cfg.username,
                    password=read_secret(self._resolve(cfg.password_file)),
                    key_filename=self._file(cfg.key_file),
                    timeout=cfg.timeout,
                    banner_timeout=cfg.timeout,
                    auth_timeout=cfg.timeout,
                    channel_timeout=cfg.timeout,
                    allow_agent=False,
                    look_for_keys=False,
                )
            except paramiko.AuthenticationException as exc:
                ssh.close()
                raise RemoteTransferError(
                    f"authentication failed for {cfg.username}", endpoint=self.where
                ) from exc
            except BaseException:
                ssh.close()
                raise
            transport = ssh.get_transport()
            assert transport is not None
            transport.set_keepalive(int(cfg.keepalive))
            self._sftp = ssh.open_sftp()
            self._sftp.get_channel().settimeout(cfg.timeout)
        self._ssh = ssh

    def _resolve(self, path: Path | None) -> Path | None:
        return None if path is None else Path(self._file(path) or "")

    def _p(self, name: str) -> bytes:
        base = self.config.path.rstrip("/") or "/"
        full = f"{base}/{name}" if name else base
        return full.encode(self.config.name_encoding)

    def close(self) -> None:
        """Close SFTP and SSH. Safe to call twice."""
        for thing in (self._sftp, self._ssh):
            if thing is not None:
                with contextlib.suppress(Exception):  # a dropped connection may fail to close
                    thing.close()
        self._sftp = self._ssh = None

    @property
    def sftp(self) -> Any:
        """The SFTP client (``connect()`` first)."""
        if self._sftp is None:
            raise RemoteTransferError("not connected", endpoint=self.where)
        return self._sftp

    def _check_folder(self, folder: str) -> None:
        """``lstat`` each component of ``folder`` below the endpoint's path: a link or a non-folder is
        refused (UnsafePathError), never followed."""
        done = ""
        for part in (p for p in folder.split("/") if p):
            done = f"{done}/{part}" if done else part
            mode = self.sftp.lstat(self._p(done)).st_mode
            if mode is not None and not stat.S_ISDIR(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
                raise UnsafePathError(f"{self.where}/{done} is {what}: refused", endpoint=self.where)

    def list(self, folder: str = "") -> list[RemoteEntry]:
        """List every entry with its kind (from the server's lstat); names are bytes on the wire,
        decoded with name_encoding."""
        with translated(f"list {folder or '.'}", self.where):
            self._check_folder(folder)
            out = []
            for attr in _listdir_raw(self.sftp, self._p(folder)):
                raw = attr.filename
                name = raw.decode(self.config.name_encoding, "replace") if isinstance(raw, bytes) else raw
                out.append(
                    RemoteEntry(name, int(attr.st_size or 0), int(attr.st_mtime or 0), kind_of(attr.st_mode))
                )
            return out

    def download(self, name: str, target: BinaryIO) -> None:
        """Stream ``name`` with read-ahead (prefetch)."""
        with translated(f"download {name}", self.where), self.sftp.open(self._p(name), "rb") as remote:
            quiet_read_ahead(remote)
            remote.prefetch()
            while True:
                chunk = remote.read(CHUNK)
                if not chunk:
                    break
                target.write(chunk)

    def upload(self, source: BinaryIO, name: str) -> None:
        """Stream into a fresh temp name (created exclusively) with pipelined writes, confirmed by the
        close, then rename it to ``name`` (``posix-rename``: replaces a file or link there)."""
        tmp = temp_name(name)
        with translated(f"upload {name}", self.where):
            self._check_folder(name.rpartition("/")[0])
            try:
                with self.sftp.open(self._p(tmp), "wbx") as remote:
                    remote.set_pipelined(True)
                    while True:
                        chunk = source.read(CHUNK)
                        if not chunk:
                            break
                        remote.write(chunk)
                self._replace(tmp, name)
            except BaseException:
                with contextlib.suppress(Exception):  # a dropped connection cannot clean up: a dotted name
                    self.sftp.remove(self._p(tmp))
                raise

    def _replace(self, tmp: str, name: str) -> None:
        try:
            self.sftp.posix_rename(self._p(tmp), self._p(name))
        except OSError as exc:
            if "unsupported" not in str(exc).lower():
                raise
            with contextlib.suppress(FileNotFoundError):  # no posix-rename: remove (a link itself), rename
                self.sftp.remove(self._p(name))
            self.sftp.rename(self._p(tmp), self._p(name))

    def rename(self, old: str, new: str) -> None:
        """Rename (SFTP's rename never overwrites); both folders are checked for links first."""
        with translated(f"rename {old} -> {new}", self.where):
            self._check_folder(old.rpartition("/")[0])
            self._check_folder(new.rpartition("/")[0])
            self.sftp.rename(self._p(old), self._p(new))

    def remove(self, name: str) -> None:
        """Delete ``name``."""
        with translated(f"remove {name}", self.where):
            self.sftp.remove(self._p(name))

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` if missing; a link in its place is refused (lstat)."""
        with translated(f"mkdir {folder}", self.where):
            try:
                self.sftp.lstat(self._p(folder))
            except FileNotFoundError:
                self.sftp.mkdir(self._p(folder))
            self._check_folder(folder)
