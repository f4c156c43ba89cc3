"""FTP and FTPS (explicit TLS) with ftplib; the file-name encoding is per endpoint (``FTP(encoding=...)``).

FTPS verifies the server certificate against ``ca_file`` (or the system store) and its host name, and
protects the data channel too (``PROT P``).

Links: FTP has no ``lstat`` and no exclusive create. An upload goes to a fresh random temp name (STOR;
nobody can plant a link under a name not known in advance) and is renamed into place (RNFR/RNTO; a
server that refuses to rename over an existing name gets DELE first). Listings report what MLSD's
``type`` fact says: ``dir`` is a folder, ``OS.unix=slink``/``symlink`` a link; many servers (pyftpdlib,
vsftpd) report a link as its target, which the hub cannot tell from a plain file. The server's own
account rights are the bound there.
"""

from __future__ import annotations

import contextlib
import ftplib
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from adapters.batch.config import RemoteConfig
from adapters.batch.errors import RemoteTransferError, translated
from adapters.batch.remote import Kind, RemoteEntry, read_secret, temp_name

CHUNK = 256 * 1024


class FTPRemote:
    """A folder on an FTP or FTPS server."""

    def __init__(self, config: RemoteConfig, project_dir: Path) -> None:
        self.config = config
        self.project_dir = project_dir
        self.where = config.display()
        self._ftp: ftplib.FTP | None = None

    def _abs(self, path: Path) -> Path:
        return path if path.is_absolute() else self.project_dir / path

    def connect(self) -> None:
        """Connect, (FTPS: TLS with certificate check), log in, go binary and passive."""
        cfg = self.config
        password = read_secret(self._abs(cfg.password_file)) if cfg.password_file else ""
        ftp: ftplib.FTP
        if cfg.protocol == "ftps":
            context = ssl.create_default_context(cafile=str(self._abs(cfg.ca_file)) if cfg.ca_file else None)
            ftp = ftplib.FTP_TLS(context=context, timeout=cfg.timeout, encoding=cfg.name_encoding)  # noqa: S321 - FTPS with a verified certificate
        else:
            ftp = ftplib.FTP(timeout=cfg.timeout, encoding=cfg.name_encoding)  # noqa: S321 - plain FTP is what the legacy peers speak
        with translated("connect", self.where):
            try:
                ftp.connect(cfg.host, cfg.port or 21, timeout=cfg.timeout)
                if isinstance(ftp, ftplib.FTP_TLS):
                    ftp.auth()
                ftp.login(cfg.username or "anonymous", password or "")
                if isinstance(ftp, ftplib.FTP_TLS):
                    ftp.prot_p()
                ftp.set_pasv(cfg.passive)
                ftp.voidcmd("TYPE I")
            except BaseException:
                ftp.close()
                raise
        self._ftp = ftp

    @property
    def ftp(self) -> ftplib.FTP:
        """The connection (``connect()`` first)."""
        if self._ftp is None:
            raise RemoteTransferError("not connected", endpoint=self.where)
        return self._ftp

    def _p(self, name: str) -> str:
        base = self.config.path.rstrip("/") or "/"
        return f"{base}/{name}" if name else base

    def close(self) -> None:
        """QUIT (or just close a broken connection). Safe to call twice."""
        if self._ftp is not None:
            try:
                self._ftp.quit()
            except Exception:
                self._ftp.close()
            self._ftp = None

    def list(self, folder: str = "") -> list[RemoteEntry]:
        """List every entry with MLSD (kind, size and modification time)."""
        with translated(f"list {folder or '.'}", self.where):
            out = []
            for name, facts in self.ftp.mlsd(self._p(folder), facts=["type", "size", "modify"]):
                kind = _kind(facts.get("type", "file"))
                if kind is None:
                    continue
                modify = facts.get("modify", "19700101000000")[:14]
                mtime = int(datetime.strptime(modify, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp())
                out.append(RemoteEntry(name, int(facts.get("size", 0)), mtime, kind))
            return out

    def download(self, name: str, target: BinaryIO) -> None:
        """RETR ``name`` into ``target``."""
        with translated(f"download {name}", self.where):
            self.ftp.retrbinary(f"RETR {self._p(name)}", target.write, blocksize=CHUNK)

    def upload(self, source: BinaryIO, name: str) -> None:
        """STOR ``source`` under a fresh temp name (confirmed by 226), then rename it to ``name``."""
        tmp = temp_name(name)
        with translated(f"upload {name}", self.where):
            try:
                self.ftp.storbinary(f"STOR {self._p(tmp)}", source, blocksize=CHUNK)
                try:
                    self.ftp.rename(self._p(tmp), self._p(name))
                except ftplib.error_perm:  # a server that will not rename over a file: DELE it first
                    self.ftp.delete(self._p(name))
                    self.ftp.rename(self._p(tmp), self._p(name))
            except BaseException:
                with contextlib.suppress(Exception):  # a dropped connection cannot clean up: a dotted name
                    self.ftp.delete(self._p(tmp))
                raise

    def rename(self, old: str, new: str) -> None:
        """RNFR/RNTO."""
        with translated(f"rename {old} -> {new}", self.where):
            self.ftp.rename(self._p(old), self._p(new))

    def remove(self, name: str) -> None:
        """DELE ``name``."""
        with translated(f"remove {name}", self.where):
            self.ftp.delete(self._p(name))

    def makedirs(self, folder: str) -> None:
        """MKD ``folder`` unless it exists."""
        with translated(f"mkdir {folder}", self.where):
            try:
                self.ftp.mkd(self._p(folder))
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550"):
                    raise


def _kind(fact: str) -> Kind | None:
    """The kind of an MLSD ``type`` fact; None for the folder itself and its parent."""
    fact = fact.lower()
    if fact in ("cdir", "pdir"):
        return None
    if fact == "file":
        return "file"
    if fact == "dir":
        return "folder"
    return "link" if "link" in fact else "other"
