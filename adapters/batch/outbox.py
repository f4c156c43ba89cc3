"""What an outbound batch endpoint left for its peer: the complete files in its remote folder (esb receive).

A file is complete when its done file is there (``outbound.done_suffix``), or, without done files, as soon
as it has its final name (the sink uploads under a dotted temp name and renames). Collecting reads each
file whole, as the peer would; consuming removes the file and its done file after reading it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from adapters.batch.config import BatchEndpoint
from adapters.batch.remote import RemoteEntry, check_name, make_remote, plain_files
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.message import Message


def complete_files(endpoint: BatchEndpoint, entries: list[RemoteEntry]) -> list[RemoteEntry]:
    """The complete files of a listing, oldest first (then by name)."""
    if endpoint.outbound is None:
        raise ConfigError(f"{endpoint.remote.display()}: not an outbound batch endpoint (no outbound:)")
    suffix = endpoint.outbound.done_suffix
    present = {e.name for e in plain_files(entries)}
    found = [
        e
        for e in plain_files(entries)
        if not e.name.startswith(".")
        and not (suffix and e.name.endswith(suffix))
        and (not suffix or e.name + suffix in present)
    ]
    return sorted(found, key=lambda e: (e.mtime, e.name))


def collect(
    endpoint: BatchEndpoint,
    context: AdapterContext,
    limit: int,
    on_message: Callable[[Message], None],
    *,
    consume: bool,
) -> int:
    """Hand up to ``limit`` complete files to ``on_message`` as messages (id: the file name); with
    ``consume`` remove each (and its done file) once ``on_message`` returned. Return how many."""
    remote = make_remote(endpoint.remote, context.project_dir)
    remote.connect()
    try:
        entries = complete_files(endpoint, remote.list())[:limit]
        for entry in entries:
            name = check_name(entry.name)
            data = io.BytesIO()
            remote.download(name, data)
            on_message(
                Message(
                    body=data.getvalue(),
                    id=name,
                    source=context.endpoint,
                    headers={"file": name, "bytes": entry.size, "folder": endpoint.remote.display()},
                )
            )
            if consume:
                remote.remove(name)
                suffix = endpoint.outbound.done_suffix if endpoint.outbound is not None else None
                if suffix:
                    remote.remove(name + suffix)
        return len(entries)
    finally:
        remote.close()
