"""A scheduled resync's extract from the endpoint's remote (SFTP, FTP) folder: the newest complete file
matching the inbound pattern, downloaded into the endpoint's staging folder and recorded in its state.

The remote machinery is the poller's own: :func:`~adapters.batch.remote.make_remote` (SFTP host keys from
``known_hosts`` only), names checked by :func:`~adapters.batch.remote.check_name`, the download staged
under a temp name, fsynced, hashed and renamed (:func:`~adapters.batch.staging.stage`), a size that
differs from the listing refused, completeness by the endpoint's ``inbound.complete`` (a done file newer
than the data file, a minimum age, or the same size and mtime on two listings ``STABLE_PAUSE`` apart).

A file is known by name + size + SHA-256 in the endpoint's ``state.db``: ``staged`` when fetched,
``processed`` (or ``failed``, with the error) when its resync ended. A processed file is not fetched or
resynced again; a file whose resync did not end (the process died) is handed out again from its staged
copy, so the resync resumes over the same path. Nothing on the remote side is moved or deleted: the
extract belongs to the system that wrote it.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.batch.config import BatchEndpoint
from adapters.batch.errors import RemoteTransferError
from adapters.batch.remote import Remote, RemoteEntry, check_name, make_remote, plain_files
from adapters.batch.staging import endpoint_dirs, stage
from adapters.batch.store import StateStore
from esb.exceptions import ConfigError
from esb.typing import FetchedExtract

#: Seconds between the two listings of ``complete: {mode: stable}`` (one fetch cannot wait for polls).
STABLE_PAUSE = 2.0
#: The statuses of a file whose resync ended: never handed out again.
ENDED = ("processed", "duplicate")


@dataclass(frozen=True)
class _Candidate:
    entry: RemoteEntry
    known: dict[str, Any] | None


def fetch_extract(endpoint: BatchEndpoint, context: Any) -> FetchedExtract | None:
    """Return the newest complete extract of the remote folder, staged locally; None when there is none
    or the newest was resynced already."""
    if endpoint.inbound is None:
        raise ConfigError(
            f"{context.endpoint}: an extract endpoint on a remote folder needs 'inbound' (its pattern)"
        )
    dirs = endpoint_dirs(context).create()
    store = StateStore(dirs.state)
    store.open()
    remote = make_remote(endpoint.remote, context.project_dir)
    try:
        remote.connect()
        newest = _newest(endpoint, remote, store)
        if newest is None:
            return None
        return _staged(endpoint, context, remote, store, newest)
    finally:
        remote.close()
        store.close()


def extract_done(endpoint: BatchEndpoint, context: Any, fetched: FetchedExtract, error: str | None) -> None:
    """Record that the resync of ``fetched`` ended (``processed``) or failed (``failed``, fetched again)."""
    store = StateStore(endpoint_dirs(context).create().state)
    store.open()
    try:
        store.set_file(fetched.key, status="failed" if error else "processed", error=error)
    finally:
        store.close()


def _newest(endpoint: BatchEndpoint, remote: Remote, store: StateStore) -> _Candidate | None:
    """The newest complete file matching the pattern (by mtime, then name), or None."""
    assert endpoint.inbound is not None
    inbound = endpoint.inbound
    found = {e.name: e for e in plain_files(remote.list())}
    matching = [
        e
        for e in found.values()
        if not e.name.startswith(".") and fnmatch.fnmatchcase(e.name, inbound.pattern)
    ]
    if not matching:
        return None
    entry = max(matching, key=lambda e: (e.mtime, e.name))
    check_name(entry.name)
    known = store.known_name(entry.name, entry.size)
    if known is not None and known["mtime"] == entry.mtime and known["status"] in ENDED:
        return None  # resynced already: the same file is not processed twice
    if not _complete(endpoint, remote, entry, found):
        return None
    return _Candidate(entry, known)


def _complete(
    endpoint: BatchEndpoint, remote: Remote, entry: RemoteEntry, found: dict[str, RemoteEntry]
) -> bool:
    """The endpoint's completeness test, for one fetch."""
    assert endpoint.inbound is not None
    mode = endpoint.inbound.complete
    if mode.mode == "done_file":  # a done file older than its data file is stale: not trusted
        done = found.get(entry.name + mode.done_suffix)
        return done is not None and done.mtime >= entry.mtime
    if mode.mode == "min_age":
        return time.time() - entry.mtime >= mode.min_age
    time.sleep(STABLE_PAUSE)
    again = {e.name: e for e in plain_files(remote.list())}.get(entry.name)
    return again is not None and (again.size, again.mtime) == (entry.size, entry.mtime)


def _staged(
    endpoint: BatchEndpoint, context: Any, remote: Remote, store: StateStore, candidate: _Candidate
) -> FetchedExtract | None:
    """The candidate's staged copy: the one fetched before if its resync did not end, else a download."""
    entry, known = candidate.entry, candidate.known
    if known is not None and known["mtime"] == entry.mtime and Path(known["staged"]).is_file():
        return FetchedExtract(Path(known["staged"]), entry.name, str(known["key"]))  # resume over it
    dirs = endpoint_dirs(context)
    staged = stage(dirs.staging, entry.name, lambda out: remote.download(entry.name, out))
    if staged.size != entry.size:
        staged.path.unlink(missing_ok=True)
        raise RemoteTransferError(
            f"download of {entry.name} is {staged.size} bytes, the listing said {entry.size}: incomplete "
            "transfer, fetched again at the next run",
            endpoint=endpoint.remote.display(),
        )
    key = f"{entry.name}|{entry.size}|{staged.sha256}"
    row = {"key": key, "name": entry.name, "size": entry.size, "mtime": entry.mtime,
           "sha256": staged.sha256, "staged": str(staged.path), "status": "staged"}  # fmt: skip
    if not store.add_file(row):  # the same name, size and content fetched before (another mtime)
        row = store.file(key) or row
        if row["status"] in ENDED:
            staged.path.unlink(missing_ok=True)
            return None
        store.set_file(key, staged=str(staged.path), mtime=entry.mtime)
    return FetchedExtract(staged.path, entry.name, key)
