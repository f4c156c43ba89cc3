"""Reading a full extract (a source's for resync, a target's for reconciliation) through its endpoint.

The endpoint is a ``batch`` endpoint of systems.yaml: its layout and encoding say how the file reads. The
engine asks its adapter for the :class:`~esb.typing.ExtractReader` capability, never for the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esb.exceptions import ConfigError
from esb.typing import ExtractReader, capability

#: Parses one raw record: ``(fields, None)`` or ``(None, why)``.
Parse = Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]

if TYPE_CHECKING:
    from esb.project import Project
    from esb.resync.resync import Record


def extract_blocks(
    project: Project, endpoint: str, path: Path
) -> tuple[Iterator[tuple[int, list[bytes]]], Parse]:
    """The records of the file ``path`` read as ``endpoint``'s layout, in blocks ``(number of the first,
    raw records)``, and their parser."""
    reader = capability(project.adapter_for(endpoint), ExtractReader)
    if reader is None:
        kind = project.endpoint(endpoint).adapter
        raise ConfigError(f"{endpoint}: the {kind!r} adapter cannot read an extract (use a batch endpoint)")
    if not path.is_file():
        raise ConfigError(f"extract {path}: no such file")
    return reader.extract_blocks(project.endpoint(endpoint), project.context(endpoint), path)


def extract_records(project: Project, endpoint: str, path: Path) -> Iterator[Record]:
    """``(number, fields, error)`` per record of ``path`` (every record parsed: a reconciliation's read)."""
    blocks, parse = extract_blocks(project, endpoint, path)
    for first, raws in blocks:
        for number, raw in enumerate(raws, first):
            fields, error = parse(number, raw)
            yield number, fields, error


def newest_extract(project: Project, endpoint: str) -> Path | None:
    """The newest file in a local batch endpoint's folder (a scheduled resync's extract), if any."""
    remote = getattr(project.endpoint(endpoint), "remote", None)
    folder = getattr(remote, "path", None)
    if folder is None:
        return None
    base = Path(folder) if Path(folder).is_absolute() else project.root / folder
    inbound = getattr(project.endpoint(endpoint), "inbound", None)
    pattern = getattr(inbound, "pattern", "*") or "*"
    files = [p for p in base.glob(pattern) if p.is_file()] if base.is_dir() else []
    return max(files, key=lambda p: p.stat().st_mtime, default=None)
