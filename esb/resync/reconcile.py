"""Reconciliation: compare a target's extract with what the hub says the target holds (docs/sync.md).

Each record of the target's extract is mapped to canonical with the reconciliation's transform and read
as the ``sync`` step reads a change (key, content hash of the fields that matter), then compared in
chunks with the stored states (:meth:`SyncStore.get_many`):

- **different**: the target holds the key, the hub sent other content (hash mismatch; with ``fields``,
  of only those fields, the hub's side hashed from the stored body);
- **extra**: the target holds a key the hub never sent, or sent a delete for (an excluded key included);
- **missing**: the hub sent the key and no delete, and the target's extract lacks it (found by walking
  the store in key order after the extract, against the set of keys the extract held).

The report (counts and every key found) is stored in the journal's database; ``esb sync resync
--from-report`` repairs exactly those keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esb.exceptions import EsbError
from esb.message import Message
from esb.processors.sync import Syncer
from esb.resync.path import find_sync
from esb.resync.resync import Record, _chunks
from esb.runtime.pipeline import StepBuilder
from esb.sync.content import content_hash, project
from esb.sync.runs import KINDS, MAX_ERROR_SAMPLES, SyncRuns
from esb.sync.store import SyncStore

if TYPE_CHECKING:
    from esb.config.settings import ReconcileSettings
    from esb.project import Project

CHUNK = 2000


@dataclass
class Reconciliation:
    """What a reconciliation found: counts, keys per kind, unreadable records."""

    name: str
    extract: str
    counts: dict[str, int] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list[str] = field(default_factory=list)
    report_id: str = ""

    @property
    def differs(self) -> bool:
        """True when the target does not hold what the hub sent it."""
        return any(self.keys[kind] for kind in KINDS)

    def as_dict(self) -> dict[str, Any]:
        """The reconciliation for ``--json``."""
        return {
            "report": self.report_id,
            "sync": self.name,
            "extract": self.extract,
            "counts": self.counts,
            "keys": self.keys,
            "errors": self.errors,
        }


def rule_syncer(project: Project, name: str) -> Syncer:
    """The ``sync`` step of sync ``name``, built alone (to read changes as the live step does)."""
    route, index = find_sync(project, name)
    syncer = StepBuilder(project, route.id, lambda endpoint: None).step(route.steps[index])
    assert isinstance(syncer, Syncer)
    return syncer


class Reconciler:
    """Compares a target's extract with the sync store and stores the report."""

    def __init__(self, project: Project, store: SyncStore, name: str, spec: ReconcileSettings) -> None:
        self.name = name
        self.store = store
        self.syncer = rule_syncer(project, name)
        self.transform = project.transforms.get(spec.transform)
        self.fields = tuple(spec.fields) if spec.fields else None

    def run(
        self, records: Iterable[Record], extract: str, progress: Callable[[int], None] | None = None
    ) -> Reconciliation:
        """Reconcile ``records`` (the target's extract at ``extract``); store and return the report."""
        found = Reconciliation(self.name, extract)
        counts = dict.fromkeys(("target_records", "hub_keys", "same", *KINDS, "errors"), 0)
        seen: set[str] = set()
        for chunk in _chunks(records, CHUNK):
            changes = {}
            for number, fields, error in chunk:
                counts["target_records"] += 1
                try:
                    if error is not None:
                        raise EsbError(error)
                    message = self.transform.apply(Message(body=fields, id=f"reconcile-{number}"))
                    change, _ = self.syncer.change(message)
                    content = change.hash if self.fields is None else _hash(message.body, self.fields)
                except EsbError as exc:
                    counts["errors"] += 1
                    if len(found.errors) < MAX_ERROR_SAMPLES:
                        found.errors.append(f"record {number}: {exc}")
                    continue
                changes[change.key] = content
                seen.add(change.key)
            held = (
                self.store.compare_many(self.name, list(changes))
                if self.fields is None
                else self.store.get_many(self.name, changes, bodies=True)
            )
            for key, content in changes.items():
                state = held.get(key)
                if state is None or state.deleted or state.message_id is None:
                    found.keys["extra"].append(key)
                elif (state.hash if self.fields is None else _hash(state.body or {}, self.fields)) != content:
                    found.keys["different"].append(key)
                else:
                    counts["same"] += 1
            if progress is not None:
                progress(counts["target_records"])
        for rows in self.store.iterate_keys(self.name, chunk=5000):
            for key, deleted, message_id in rows:
                if deleted or message_id is None:
                    continue
                counts["hub_keys"] += 1
                if key not in seen:
                    found.keys["missing"].append(key)
        for kind in KINDS:
            found.keys[kind].sort()
            counts[kind] = len(found.keys[kind])
        found.counts = counts
        pairs = ((key, kind) for kind in KINDS for key in found.keys[kind])
        found.report_id = SyncRuns(self.store).save_report(self.name, extract, counts, pairs)
        return found


def _hash(body: dict[str, Any], fields: tuple[str, ...]) -> str:
    """The content hash of ``body``'s projection on ``fields`` (a reconciliation's narrower compare)."""
    return content_hash(project(body, fields))
