"""``esb full-file ROUTE --to ENDPOINT``: write every record a route's target currently holds as one file.

A route that syncs an entity to a file-fed target (114, the phone directory) has a ``sync`` step: its sync
store keeps, per key, the projection of the fields last sent and whether the target still holds it. The
full file is that state, read back in key order a chunk at a time (memory stays flat in the number of
records), each live record checked against the step's ``exclude`` again at write time (a record excluded
since is never written, whatever the store says), then passed through the route's ``transform`` steps
after its sync step (the same mappings the daily delta uses) and streamed into one file of ``ENDPOINT``
(an adapter that takes a whole file: :class:`esb.typing.FileWriter`, a batch endpoint's ``outbound``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from esb.exceptions import ConfigError, EsbError
from esb.expressions import Expression
from esb.message import Message
from esb.typing import FileWriter, capability

if TYPE_CHECKING:
    from esb.project import Project

#: keys read from the sync store per query
CHUNK = 1000


class SyncRow(Protocol):
    """What the full file reads of one key's sync state."""

    key: str
    deleted: bool

    @property
    def body(self) -> dict[str, Any] | None:
        """The projection last sent (None for a deleted or excluded key)."""
        ...


class SyncReader(Protocol):
    """The part of the sync store the full file reads (esb.sync.SyncStore)."""

    def iterate(self, name: str, *, after: str | None = None, chunk: int = 1000, bodies: bool = False) -> Any:
        """Yield the sync's rows in key order, ``chunk`` at a time."""
        ...


@dataclass
class FullFile:
    """What one full file held: its name, records written, and live keys left out by ``exclude``."""

    route: str
    sync: str
    endpoint: str
    file: str = ""
    records: int = 0
    excluded: int = 0


@dataclass(frozen=True)
class FullFilePlan:
    """A route's full file: its sync's name and exclude rule, the mappings after the sync step."""

    route: str
    sync: str
    exclude: Expression | None
    transforms: tuple[str, ...]


def plan(project: Project, route_id: str) -> FullFilePlan:
    """Read the route's sync step and the transform steps after it; ConfigError when it has none."""
    route = project.route(route_id)
    steps = list(route.steps)
    found = [i for i, step in enumerate(steps) if getattr(step, "sync", None) is not None]
    if not found:
        raise ConfigError(f"route {route_id} has no sync step: a full file is read from a sync's state")
    spec = steps[found[0]].sync  # type: ignore[attr-defined]
    after = steps[found[0] + 1 :]
    names = tuple(str(getattr(step, "transform", "")) for step in after)
    if not all(names):
        raise ConfigError(
            f"route {route_id}: only transform steps may follow its sync step for a full file "
            "(the full file maps each held record as the delta does)"
        )
    exclude = Expression(spec.exclude, f"{route_id}.sync.exclude") if spec.exclude else None
    return FullFilePlan(route_id, spec.name, exclude, names)


def records(
    project: Project, chosen: FullFilePlan, store: SyncReader, result: FullFile
) -> Iterator[dict[str, Any]]:
    """Yield the record of every key the target holds and ``exclude`` still allows, counting on ``result``."""
    transforms = [project.transforms.get(name) for name in chosen.transforms]
    for chunk in store.iterate(chosen.sync, chunk=CHUNK, bodies=True):
        for row in chunk:
            body = row.body
            if row.deleted or body is None:
                continue
            message = Message(
                body=body, id=f"full-file:{chosen.sync}:{row.key}", headers={"sync-action": "upsert"}
            )
            if chosen.exclude is not None and chosen.exclude.truthy(message):
                result.excluded += 1
                continue
            for transform in transforms:
                message = transform.apply(message)
            if not isinstance(message.body, dict):
                raise EsbError(
                    f"{chosen.route}: the mappings after the sync step gave no record for {row.key!r}"
                )
            result.records += 1
            yield message.body


def write_full_file(
    project: Project, route_id: str, endpoint: str, store: SyncReader, now: datetime | None = None
) -> FullFile:
    """Write the full file of ``route_id`` to ``endpoint``; return what it held."""
    chosen = plan(project, route_id)
    result = FullFile(route_id, chosen.sync, endpoint)
    config = project.endpoint(endpoint)
    writer = capability(project.adapter_for(endpoint), FileWriter)
    if writer is None:
        raise ConfigError(f"{endpoint} cannot take a whole file (a batch endpoint with outbound can)")
    rows = records(project, chosen, store, result)
    result.file, written = writer.write_file(config, project.context(endpoint), rows, now)
    assert written == result.records, (written, result.records)
    return result
