"""The remote side of an inbound endpoint: pick up complete files, and move finished ones away.

Each run (on the endpoint's schedule, in the scheduler's thread, with its own connection) first settles
finished files (uploads the reply, moves the file to ``done/`` or ``error/``), then lists the folder,
decides which files are complete and stages them. Remote files are never deleted: they are moved only
after their state says they are safely done.
"""

from __future__ import annotations

import fnmatch
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.batch.config import BatchEndpoint, InboundConfig
from adapters.batch.errors import BadFileError, RemoteTransferError, UnsafeNameError
from adapters.batch.journaling import FileJournal
from adapters.batch.parsers import LineReader, RecordReader
from adapters.batch.remote import Remote, RemoteEntry, check_name, make_remote
from adapters.batch.scan import Scanner
from adapters.batch.staging import Dirs, stage
from adapters.batch.store import StateStore
from esb.exceptions import TransportError


class InboundPoller:
    """Picks up complete files into staging; moves finished ones to done/ or error/."""

    def __init__(
        self,
        endpoint: BatchEndpoint,
        project_dir: Path,
        store: StateStore,
        dirs: Dirs,
        on_staged: Callable[[], None],
        log: Any,
        *,
        reader: RecordReader | None = None,
        journal: FileJournal | None = None,
    ) -> None:
        assert endpoint.inbound is not None
        self.endpoint = endpoint
        self.cfg: InboundConfig = endpoint.inbound
        self.project_dir = project_dir
        self.store = store
        self.dirs = dirs
        self.on_staged = on_staged
        self.log = log
        self._remote: Remote | None = None
        self._lock = threading.Lock()
        self._refused: set[str] = set()
        self.reader = reader
        self.journal = journal

    # -- runs ---------------------------------------------------------------------------------------
    def run_once(self) -> None:
        """One poll: settle finished files, then stage new complete ones. Raises TransportError."""
        with self._lock:
            try:
                remote = self._connected()
                self.finish(remote)
                if self.pick_up(remote):
                    self.finish(remote)  # files refused while staging go to error/ at once
            except TransportError:
                self._drop()
                raise

    def scheduled(self) -> None:
        """The scheduler's job: one poll, errors logged (the next run tries again)."""
        try:
            self.run_once()
        except TransportError as exc:
            self.log.warning("batch poll failed; next run retries", error=str(exc))
        except Exception:
            self.log.exception("batch poll failed")

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._lock:
            self._drop()
            if self.journal is not None:
                self.journal.close()

    def _connected(self) -> Remote:
        if self._remote is None:
            remote = make_remote(self.endpoint.remote, self.project_dir)
            remote.connect()
            self._remote = remote
            for folder in (self.cfg.done_dir, self.cfg.error_dir) + (
                (self.cfg.reply.dir,) if self.cfg.reply.enabled else ()
            ):
                remote.makedirs(folder)
        return self._remote

    def _drop(self) -> None:
        if self._remote is not None:
            self._remote.close()
            self._remote = None

    # -- picking up ---------------------------------------------------------------------------------
    def pick_up(self, remote: Remote) -> int:
        """List the folder and stage every complete, new file matching the pattern; return how many
        were refused by the whole-file check."""
        refused = 0
        entries = remote.list()
        names = {e.name for e in entries}
        done_suffix = self.cfg.complete.done_suffix if self.cfg.complete.mode == "done_file" else None
        for entry in sorted(entries, key=lambda e: (e.mtime, e.name)):
            if entry.name.startswith(".") or (done_suffix and entry.name.endswith(done_suffix)):
                continue
            if not fnmatch.fnmatchcase(entry.name, self.cfg.pattern):
                continue
            try:
                check_name(entry.name)
            except UnsafeNameError as exc:
                self._refuse_name(remote, entry, exc)
                continue
            if self._complete(entry, names) and self._is_new(entry):
                refused += self._stage(remote, entry) == "failed"
        return refused

    def _complete(self, entry: RemoteEntry, names: set[str]) -> bool:
        mode = self.cfg.complete
        if mode.mode == "done_file":
            return entry.name + mode.done_suffix in names
        if mode.mode == "min_age":
            return time.time() - entry.mtime >= mode.min_age
        return self.store.sighting(entry.name, entry.size, entry.mtime) >= mode.stable_checks

    def _is_new(self, entry: RemoteEntry) -> bool:
        known = self.store.known_name(entry.name, entry.size)
        return known is None or known["mtime"] != entry.mtime or known["status"] in ("done", "error")

    def _stage(self, remote: Remote, entry: RemoteEntry) -> str | None:
        """Download ``entry`` (checking it whole as it comes); return its status, None if known already."""
        scanner = self.reader.scanner() if isinstance(self.reader, LineReader) else None
        staged = stage(
            self.dirs.staging,
            entry.name,
            lambda out: remote.download(entry.name, out),
            scanner.feed if scanner is not None else None,
        )
        if staged.size != entry.size:
            staged.path.unlink(missing_ok=True)
            raise RemoteTransferError(
                f"download of {entry.name} is {staged.size} bytes, the listing said "
                f"{entry.size}: incomplete transfer, retried next poll",
                endpoint=self.endpoint.remote.display(),
            )
        key = f"{entry.name}|{entry.size}|{staged.sha256}"
        row = {
            "key": key,
            "name": entry.name,
            "size": entry.size,
            "mtime": entry.mtime,
            "sha256": staged.sha256,
            "staged": str(staged.path),
            "status": "staged",
        }
        if scanner is not None:
            row.update(self._checked(scanner))
        if not self.store.add_file(row):
            known = self.store.file(key)
            if known and known["staged"] != str(staged.path):
                staged.path.unlink(missing_ok=True)
            if known and known["status"] in ("done", "error"):
                self.log.warning(
                    "file already processed (same name, size and SHA-256): not processed again, moved away",
                    file=entry.name,
                    first_status=known["status"],
                )
                self._move(remote, entry.name, self.cfg.done_dir, staged.sha256 + "dup")
            return None
        self.store.forget_sighting(entry.name)
        self.log.info("batch file staged", file=entry.name, size=entry.size, sha256=staged.sha256)
        if row["status"] == "failed":
            self.log.error("batch file refused", file=entry.name, error=row["error"])
        else:
            self.on_staged()
        return str(row["status"])

    @staticmethod
    def _checked(scanner: Scanner) -> dict[str, Any]:
        try:
            summary = scanner.finish()
        except BadFileError as exc:
            return {"status": "failed", "error": str(exc)}
        first = summary.first_offset
        return {"status": "checked", "first_offset": first, "next_offset": first, "records": summary.records}

    def _refuse_name(self, remote: Remote, entry: RemoteEntry, exc: UnsafeNameError) -> None:
        if entry.name in self._refused:
            return
        self._refused.add(entry.name)
        self.log.error("batch file refused", file=repr(entry.name), error=str(exc))
        if entry.name not in ("", ".", ".."):
            note = self._safe(entry.name)
            remote.upload(io.BytesIO(str(exc).encode("utf-8")), f"{self.cfg.error_dir}/{note}.err")
            remote.rename(entry.name, f"{self.cfg.error_dir}/{note}")

    @staticmethod
    def _safe(name: str) -> str:
        cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in name).lstrip(".")
        return cleaned or "unnamed"

    # -- settling -----------------------------------------------------------------------------------
    def finish(self, remote: Remote) -> None:
        """Upload replies and move processed files to done/, refused ones to error/."""
        for row in self.store.files_in("processed", "failed"):
            ok = row["status"] == "processed"
            if self.journal is not None:
                self.journal.record(row)  # first: a journal that is down leaves the file to the next poll
            if ok and self.cfg.reply.enabled:
                self._upload_reply(remote, row)
            if not ok:
                note = (row["error"] or "refused").encode("utf-8")
                remote.upload(io.BytesIO(note), f"{self.cfg.error_dir}/{row['name']}.err")
            folder = self.cfg.done_dir if ok else self.cfg.error_dir
            self._move(remote, row["name"], folder, row["sha256"])
            if self.cfg.complete.mode == "done_file":
                self._move(remote, row["name"] + self.cfg.complete.done_suffix, folder, row["sha256"])
            self.store.set_file(row["key"], status="done" if ok else "error")
            Path(row["staged"]).unlink(missing_ok=True)
            self.log.info("batch file settled", file=row["name"], folder=folder)

    def _upload_reply(self, remote: Remote, row: dict[str, Any]) -> None:
        reply = self.cfg.reply
        local = self.dirs.replies / f"{row['name']}{reply.suffix}"
        uploads = [(local, f"{row['name']}{reply.suffix}")]
        rejects = self.dirs.rejects / f"{row['sha256'][:16]}_{row['name']}.rej"
        if reply.include_rejects and rejects.exists() and rejects.stat().st_size:
            uploads.append((rejects, f"{row['name']}.rej"))
        for path, name in uploads:
            tmp = f"{reply.dir}/.{name}.part"
            with path.open("rb") as data:
                remote.upload(data, tmp)
            self._rename_over(remote, tmp, f"{reply.dir}/{name}", reply.dir)

    def _rename_over(self, remote: Remote, old: str, new: str, folder: str) -> None:
        if new.rsplit("/", 1)[-1] in {e.name for e in remote.list(folder)}:
            remote.remove(new)
        remote.rename(old, new)

    def _move(self, remote: Remote, name: str, folder: str, sha: str) -> None:
        here = {e.name for e in remote.list()}
        if name not in here:
            return  # moved by an earlier run that stopped before recording it
        there = {e.name for e in remote.list(folder)}
        target = f"{folder}/{name}" if name not in there else f"{folder}/{name}.{sha[:12]}"
        remote.rename(name, target)
