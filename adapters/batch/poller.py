"""The remote side of an inbound endpoint: pick up complete files, and move finished ones away.

Each run (on the endpoint's schedule, in the scheduler's thread, with its own connection) first settles
finished files (uploads the reply, moves the file to ``done/`` or ``error/``), then lists the folder,
decides which files are complete and stages them. Remote files are never deleted: they are moved only
after their state says they are safely done.

What the poller refuses, with one log line per entry (per process) and never following it: entries of
the inbox, ``done/``, ``error/`` and ``reply/`` that are not plain files (links, folders other than the
endpoint's own, fifos); unsafe names (moved to ``error/``, replied ``REFUSED``); a done file older than
its data file or without one. A done file never outlives its data file: it moves with it, and an orphan
done file whose data file was processed is moved to where that file went.
"""

from __future__ import annotations

import fnmatch
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.batch import replies
from adapters.batch.config import BatchEndpoint, InboundConfig
from adapters.batch.errors import BadFileError, RemoteTransferError, UnsafeNameError
from adapters.batch.journaling import FileJournal
from adapters.batch.parsers import LineReader, RecordReader
from adapters.batch.remote import Remote, RemoteEntry, check_name, make_remote, plain_files
from adapters.batch.scan import Scanner
from adapters.batch.staging import Dirs, stage
from adapters.batch.store import StateStore
from esb import files
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
        self._noted: set[tuple[str, ...]] = set()  # what was logged once already
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
        were refused by the whole-file check or found to be duplicates (settled in the same poll)."""
        settle = 0
        entries = remote.list()
        self._note_odd("", entries)
        found = {e.name: e for e in plain_files(entries)}
        suffix = self.cfg.complete.done_suffix if self.cfg.complete.mode == "done_file" else None
        for entry in sorted(found.values(), key=lambda e: (e.mtime, e.name)):
            if entry.name.startswith("."):
                continue
            if suffix and entry.name.endswith(suffix):
                self._orphan_done_file(remote, entry.name[: -len(suffix)], found)
                continue
            if not fnmatch.fnmatchcase(entry.name, self.cfg.pattern):
                continue
            try:
                check_name(entry.name)
            except UnsafeNameError as exc:
                self._refuse_name(remote, entry, exc)
                continue
            if self._complete(entry, found) and self._is_new(entry):
                settle += self._stage(remote, entry) in ("failed", "duplicate")
        return settle

    def _note_odd(self, folder: str, entries: list[RemoteEntry]) -> None:
        """Log (once per entry) what is not a plain file in ``folder``: refused, never followed."""
        own = {d.split("/", 1)[0] for d in self._folders()} if not folder else set()
        for entry in entries:
            if entry.kind == "file" or (entry.kind == "folder" and entry.name in own):
                continue
            self._once(
                ("odd", folder, entry.name, entry.kind),
                "unexpected entry in a batch folder: refused, never followed (esb health shows it)",
                folder=folder or ".",
                entry=repr(entry.name),
                kind=entry.kind,
            )

    def _once(self, key: tuple[str, ...], event: str, **fields: Any) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.log.error(event, **fields)

    def _folders(self) -> tuple[str, ...]:
        reply = (self.cfg.reply.dir,) if self.cfg.reply.enabled else ()
        return (self.cfg.done_dir, self.cfg.error_dir, *reply)

    def _complete(self, entry: RemoteEntry, found: dict[str, RemoteEntry]) -> bool:
        mode = self.cfg.complete
        if mode.mode == "done_file":  # a done file older than its data file is stale: not trusted
            done = found.get(entry.name + mode.done_suffix)
            return done is not None and done.mtime >= entry.mtime
        if mode.mode == "min_age":
            return time.time() - entry.mtime >= mode.min_age
        return self.store.sighting(entry.name, entry.size, entry.mtime) >= mode.stable_checks

    def _is_new(self, entry: RemoteEntry) -> bool:
        known = self.store.known_name(entry.name, entry.size)
        return known is None or known["mtime"] != entry.mtime or known["status"] in ("done", "error")

    def _orphan_done_file(self, remote: Remote, name: str, found: dict[str, RemoteEntry]) -> None:
        """A done file without its data file: moved to where its data file went once that was settled,
        else ignored (logged once)."""
        if name in found or not fnmatch.fnmatchcase(name, self.cfg.pattern):
            return
        known = self.store.latest(name)
        if known is None or known["status"] not in ("done", "error"):
            self._once(("orphan", name), "done file without its data file: ignored", file=name)
            return
        folder = self.cfg.done_dir if known["status"] == "done" else self.cfg.error_dir
        self._move(remote, name + self.cfg.complete.done_suffix, folder, known["sha256"])
        self.log.info("done file of a settled file moved away", file=name, folder=folder)

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
        original = self.store.original(staged.sha256, entry.name) if row["status"] != "failed" else None
        if original is not None:
            row["status"] = "duplicate"  # same content, new name: nothing handed out, journaled as such
            row["reconciliation"] = json.dumps(
                {"duplicate_of": original["name"], "correlation_id": f"batch:{staged.sha256[:16]}"},
                ensure_ascii=False,
            )
        if not self.store.add_file(row):
            self._resent(remote, entry, key, staged.path)
            return None
        self.store.forget_sighting(entry.name)
        self.log.info("batch file staged", file=entry.name, size=entry.size, sha256=staged.sha256)
        if row["status"] == "failed":
            self.log.error("batch file refused", file=entry.name, error=row["error"])
        elif original is not None:
            staged.path.unlink(missing_ok=True)
            self.log.warning(
                "duplicate batch file (same SHA-256 as an earlier file): not delivered again",
                file=entry.name,
                duplicate_of=original["name"],
            )
        else:
            self.on_staged()
        return str(row["status"])

    def _resent(self, remote: Remote, entry: RemoteEntry, key: str, staged: Path) -> None:
        """The same name, size and SHA-256 again: moved to done/ with its done file, not processed."""
        known = self.store.file(key)
        if known and known["staged"] != str(staged):
            staged.unlink(missing_ok=True)
        if known and known["status"] in ("done", "error"):
            self.log.warning(
                "file already processed (same name, size and SHA-256): not processed again, moved away",
                file=entry.name,
                first_status=known["status"],
            )
            self._move_with_done_file(remote, entry.name, self.cfg.done_dir, known["sha256"], mark=True)

    @staticmethod
    def _checked(scanner: Scanner) -> dict[str, Any]:
        try:
            summary = scanner.finish()
        except BadFileError as exc:
            return {"status": "failed", "error": str(exc)}
        first = summary.first_offset
        return {"status": "checked", "first_offset": first, "next_offset": first, "records": summary.records}

    def _refuse_name(self, remote: Remote, entry: RemoteEntry, exc: UnsafeNameError) -> None:
        """Never staged: the file (and its done file) moved to error/ under a safe name, a note beside it
        and a REFUSED reply."""
        self._once(("name", entry.name), "batch file refused", file=repr(entry.name), error=str(exc))
        if entry.name in ("", ".", ".."):
            return
        note = self._safe(entry.name)
        remote.upload(io.BytesIO(str(exc).encode("utf-8")), f"{self.cfg.error_dir}/{note}.err")
        self._reply(remote, note, replies.refused(note, str(exc)))
        self._move(remote, entry.name, self.cfg.error_dir, "", target=note)
        if self.cfg.complete.mode == "done_file":
            done = self.cfg.complete.done_suffix
            self._move(remote, entry.name + done, self.cfg.error_dir, "", target=note + done)

    @staticmethod
    def _safe(name: str) -> str:
        cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in name)
        return cleaned.replace("..", "_").lstrip(".") or "unnamed"

    # -- settling -----------------------------------------------------------------------------------
    def finish(self, remote: Remote) -> None:
        """Upload replies and move processed files (and duplicates) to done/, refused ones to error/."""
        rows = self.store.files_in("processed", "failed", "duplicate")
        if rows and self.cfg.reply.enabled:
            self._note_odd(self.cfg.reply.dir, remote.list(self.cfg.reply.dir))
        for row in rows:
            ok = row["status"] != "failed"
            if self.journal is not None:
                self.journal.record(row)  # first: a journal that is down leaves the file to the next poll
            if self.cfg.reply.enabled:
                self._upload_reply(remote, row)
            if not ok:
                note = (row["error"] or "refused").encode("utf-8")
                remote.upload(io.BytesIO(note), f"{self.cfg.error_dir}/{row['name']}.err")
            folder = self.cfg.done_dir if ok else self.cfg.error_dir
            dup = row["status"] == "duplicate"
            self._move_with_done_file(remote, row["name"], folder, row["sha256"], mark=dup)
            self.store.set_file(row["key"], status="done" if ok else "error")
            Path(row["staged"]).unlink(missing_ok=True)
            self.log.info("batch file settled", file=row["name"], folder=folder, status=row["status"])

    def _upload_reply(self, remote: Remote, row: dict[str, Any]) -> None:
        name = row["name"]
        if row["status"] == "duplicate":
            self._reply(remote, name, replies.duplicate(row))
            return
        if row["status"] == "failed":
            self._reply(remote, name, replies.refused(name, row["error"] or "refused", row["sha256"]))
            return
        with files.open_file(self.dirs.replies / f"{name}.rec", "read") as data:
            remote.upload(data, f"{self.cfg.reply.dir}/{name}{self.cfg.reply.suffix}")
        rejects = self.dirs.rejects / f"{row['sha256'][:16]}_{name}.rej"
        if self.cfg.reply.include_rejects and rejects.exists() and rejects.stat().st_size:
            with files.open_file(rejects, "read") as data:
                remote.upload(data, f"{self.cfg.reply.dir}/{name}.rej")

    def _reply(self, remote: Remote, name: str, fields: dict[str, Any]) -> None:
        """Upload a reply built here (duplicate, refused) when replies are enabled."""
        if self.cfg.reply.enabled:
            data = replies.encode(fields, self.endpoint.read_encoding)
            remote.upload(io.BytesIO(data), f"{self.cfg.reply.dir}/{name}{self.cfg.reply.suffix}")

    def _move_with_done_file(self, remote: Remote, name: str, folder: str, sha: str, *, mark: bool) -> None:
        """Move a data file and then its done file (a done file never outlives its data file)."""
        self._move(remote, name, folder, sha, mark=mark)
        if self.cfg.complete.mode == "done_file":
            self._move(remote, name + self.cfg.complete.done_suffix, folder, sha, mark=mark)

    def _move(
        self, remote: Remote, name: str, folder: str, sha: str, *, mark: bool = False, target: str = ""
    ) -> None:
        """Move ``name`` into ``folder`` under ``target`` (default: its own name), or a free name with
        ``.<sha[:12]>`` (and ``.2``, ``.3``...) after it when taken or ``mark``ed; never over anything."""
        if name not in {e.name for e in plain_files(remote.list())}:
            return  # moved by an earlier run that stopped before recording it
        there = remote.list(folder)
        self._note_odd(folder, there)
        taken = {e.name for e in there}
        base = target or name
        stem = f"{base}.{sha[:12]}" if sha else base
        candidates = ([] if mark else [base]) + [stem] + [f"{stem}.{n}" for n in range(2, 1000)]
        free = next(c for c in candidates if c not in taken)
        remote.rename(name, f"{folder}/{free}")
