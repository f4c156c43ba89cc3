"""Full resync: read the source's full extract, send the target only what differs (docs/sync.md).

Per chunk of extract records (``resync.chunk``, 1,000 by default):

1. map each record to canonical with the resync's transform, read its change exactly as the ``sync``
   step does (:meth:`Syncer.change`: key, content hash, version, delete, exclude);
2. read the chunk's stored states in bulk (:meth:`SyncStore.get_many`, one query per 500 keys) and judge
   each change with the live rules (:func:`esb.sync.rules.judge`);
3. send the differences (new, changed, deletes, excluded keys the target holds) through the route from
   its ``sync`` step on (:class:`~esb.sync.path.SyncPath`), so the step judges and claims them again,
   atomically, beside live traffic, and the target's mapping and endpoint are the live ones;
4. store the checkpoint (records done) and the counts in the run's row.

Each difference is sent as message ``<run id>-<key>`` (``resync-<time>-<hex>-C0000001``). A run killed
after the step claimed a key and before the chunk's checkpoint meets, when resumed, a state that this
very message set: it is sent again (rule 1 of the step), and the journal's duplicate check and the
outlet's per-endpoint record keep it from reaching the target twice when it had been delivered.
Records before the checkpoint are not judged again.

With ``delete_missing``, the keys the extract lacks are deleted at the end: the store is walked in key
order (keyset pages) and every live key not seen in the extract gets a tombstone (compare-and-set: a live
change that came meanwhile wins) and a delete through the steps after the sync step. The keys seen are
held in memory (a set of strings: ~100 bytes a key), so a resumed run reads the extract's finished part
again for its keys only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esb.exceptions import EsbError
from esb.message import Message, utcnow
from esb.processors.sync import ACTION_HEADER, KEY_HEADER, NAME_HEADER
from esb.sync.path import SyncPath
from esb.sync.rules import Action, Change, judge
from esb.sync.runs import MAX_ERROR_SAMPLES, Run, SyncRuns
from esb.sync.store import SyncState, SyncStore, SyncWrite

if TYPE_CHECKING:
    from esb.config.settings import ResyncSettings
    from esb.journal import Journal
    from esb.project import Project

#: One extract record: its number in the file (from 1), its fields, or why it could not be read.
Record = tuple[int, dict[str, Any] | None, str | None]
#: A key expression this simple (``body.id``, ``body.a.b``) is also written into a delete's body.
_SIMPLE_KEY = re.compile(r"^body((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")


def message_id(run_id: str, key: str) -> str:
    """The id a run sends key ``key`` under, ``<run id>-<key>`` (the same after a resume)."""
    return f"{run_id}-{key}"


@dataclass
class Candidate:
    """A record whose change differs from what the target holds."""

    message: Message
    change: Change
    action: Action


class Resync:
    """One sync's full resync (and the sends of ``esb sync resync --keys``), in this process."""

    def __init__(
        self,
        project: Project,
        journal: Journal,
        store: SyncStore,
        name: str,
        spec: ResyncSettings | None,
        *,
        progress: Callable[[Run], None] | None = None,
    ) -> None:
        self.project = project
        self.name = name
        self.spec = spec
        self.store = store
        self.runs = SyncRuns(store)
        self.path = SyncPath(project, journal, name)
        self.syncer = self.path.syncer
        self.transform = project.transforms.get(spec.transform) if spec is not None else None
        self.progress = progress

    def close(self) -> None:
        """Close the route's steps and sinks."""
        self.path.close()

    # -- the full resync ------------------------------------------------------------------------------
    def run(self, records: Iterable[Record], source: str, *, restart: bool = False) -> Run:
        """Resync from ``records`` (the extract at ``source``); resume the unfinished run over the same
        source unless ``restart``. Returns the finished run (its counts)."""
        assert self.spec is not None
        run = None if restart else self.runs.unfinished(self.name, "resync", source)
        if run is None:
            run = self.runs.start(self.name, "resync", source)
        else:
            self.runs.adopt(run)
        seen: set[str] | None = set() if self.spec.delete_missing else None
        try:
            for chunk in _chunks(records, self.spec.chunk):
                if chunk[-1][0] <= run.checkpoint:
                    if seen is not None:
                        seen.update(self._keys(chunk))
                    continue
                self._chunk(run, [r for r in chunk if r[0] > run.checkpoint], seen)
                if seen is not None:
                    seen.update(self._keys([r for r in chunk if r[0] <= run.checkpoint]))
                run.checkpoint = chunk[-1][0]
                self.runs.checkpoint(run)
                if self.progress is not None:
                    self.progress(run)
            if seen is not None:
                self._delete_missing(run, seen)
        except (EsbError, OSError) as exc:
            self.runs.finish(run, f"{type(exc).__name__}: {exc}")
            raise
        self.runs.finish(run)
        return run

    def _canonical(
        self, run: Run, number: int, fields: dict[str, Any] | None, error: str | None
    ) -> Message | None:
        """The record mapped to canonical, or None (counted and sampled as an error)."""
        assert self.transform is not None
        if error is None:
            try:
                mapped: Message = self.transform.apply(
                    Message(body=fields, id=f"{run.id}-record-{number}", correlation_id=run.id)
                )
                return mapped
            except EsbError as exc:
                error = str(exc)
        run.counts["errors"] += 1
        samples = run.counts.setdefault("error_samples", [])
        if len(samples) < MAX_ERROR_SAMPLES:
            samples.append(f"record {number}: {error}")
        return None

    def _chunk(self, run: Run, chunk: list[Record], seen: set[str] | None) -> None:
        """Judge a chunk against the store in bulk and send its differences."""
        changes: list[tuple[Message, Change]] = []
        for number, fields, error in chunk:
            run.counts["read"] += 1
            message = self._canonical(run, number, fields, error)
            if message is None:
                continue
            try:
                change, _ = self.syncer.change(message)
            except EsbError as exc:
                self._canonical(run, number, None, str(exc))
                continue
            changes.append((message, change))
            if seen is not None:
                seen.add(change.key)
        held = self.store.get_many(self.name, [c.key for _, c in changes])
        candidates = [c for c in (self._judge(run, held.get(ch.key), m, ch) for m, ch in changes) if c]
        self._send(run, candidates)

    def _judge(self, run: Run, held: SyncState | None, message: Message, change: Change) -> Candidate | None:
        """A candidate when the change must go through the route, else None (counted unchanged or stale)."""
        mid = message_id(run.id, change.key)
        if held is not None and held.message_id == mid:  # claimed by this run before a crash: again
            return Candidate(
                message.replace(id=mid), change, Action.DELETE if held.deleted else Action.UPSERT
            )
        verdict = judge(held, change, mid)
        if verdict.action in (Action.UNCHANGED, Action.STALE) or (
            verdict.action is Action.EXCLUDED and not verdict.write
        ):
            run.counts[
                {"unchanged": "unchanged", "stale": "stale"}.get(verdict.action.value, "excluded")
            ] += 1
            return None
        return Candidate(message.replace(id=mid), change, verdict.action)

    def _send(self, run: Run, candidates: list[Candidate]) -> None:
        """Send the candidates through the route from the sync step; count what each became."""
        outcomes = self.path.send(self.path.judged, [c.message for c in candidates])
        for candidate, outcome in zip(candidates, outcomes, strict=True):
            if outcome == "delivered":
                run.counts[
                    {"upsert": "sent", "delete": "deleted"}.get(candidate.action.value, "excluded")
                ] += 1
            elif outcome == "filtered":
                run.counts["excluded" if candidate.change.excluded else "unchanged"] += 1
            else:
                run.counts["errors"] += 1
                samples = run.counts.setdefault("error_samples", [])
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(f"key {candidate.change.key}: {outcome}")

    def _keys(self, chunk: list[Record]) -> Iterator[str]:
        """The keys of a finished chunk's records (a resumed run's ``seen``)."""
        for number, fields, error in chunk:
            if error is not None:
                continue
            assert self.transform is not None
            try:
                message = self.transform.apply(Message(body=fields, id=f"record-{number}"))
                yield self.syncer.change(message)[0].key
            except EsbError:
                continue

    # -- deletes --------------------------------------------------------------------------------------
    def _delete_missing(self, run: Run, seen: set[str]) -> None:
        """Delete at the target every live key the extract lacks (and finish this run's claimed ones)."""
        chunk = self.spec.chunk if self.spec is not None else 1000
        for rows in self.store.iterate(self.name, chunk=chunk):
            gone = [
                row.key
                for row in rows
                if row.key not in seen and (not row.deleted or row.message_id == message_id(run.id, row.key))
            ]
            if gone:
                self.delete_keys(run, gone)
                self.runs.checkpoint(run)

    def delete_keys(self, run: Run, keys: list[str]) -> None:
        """Tombstone and send a delete for each of ``keys`` the target holds (stored body, key filled in)."""
        messages = []
        for state in self.store.get_many(self.name, keys, bodies=True).values():
            mid = message_id(run.id, state.key)
            if state.message_id != mid:
                if state.deleted:
                    continue
                tombstone = SyncWrite(self.name, state.key, state.hash, state.version, True, mid, None)
                if not self.store.claim(tombstone, state.revision):
                    continue  # a live change of the key came meanwhile: it decides
            messages.append(self._decided(state, mid, Action.DELETE, run.id))
        self._count(run, messages, "deleted")

    def send_stored(self, run: Run, keys: list[str]) -> None:
        """Send the stored body of each of ``keys`` again (an upsert; a delete for a deleted key)."""
        messages = []
        for state in self.store.get_many(self.name, keys, bodies=True).values():
            if state.message_id is None:
                continue  # never sent (an excluded key's tombstone): nothing to repair
            action = Action.DELETE if state.deleted else Action.UPSERT
            messages.append(self._decided(state, message_id(run.id, state.key), action, run.id))
        self._count(run, messages, "sent")

    def send_delete(self, run: Run, keys: list[str]) -> None:
        """Send a delete for each of ``keys`` (a target's extra keys); the state stays as it is."""
        held = self.store.get_many(self.name, keys, bodies=True)
        messages = []
        for key in keys:
            state = held.get(key) or SyncState(self.name, key, "", None, True, None, utcnow(), 0)
            messages.append(self._decided(state, message_id(run.id, key), Action.DELETE, run.id))
        self._count(run, messages, "deleted")

    def _count(self, run: Run, messages: list[Message], bucket: str) -> None:
        for message, outcome in zip(messages, self.path.send(self.path.decided, messages), strict=True):
            if outcome == "delivered":
                run.counts["deleted" if message.headers[ACTION_HEADER] == "delete" else bucket] += 1
            else:
                run.counts["errors"] += 1
                samples = run.counts.setdefault("error_samples", [])
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(f"key {message.headers[KEY_HEADER]}: {outcome}")

    def _decided(self, state: SyncState, mid: str, action: Action, run_id: str) -> Message:
        """The message of a decided send: the stored body (its key filled in), the sync headers."""
        body = dict(state.body or {})
        match = _SIMPLE_KEY.match(self.syncer.rule.key.text)
        if match is not None:
            target = body
            parts = match.group(1).split(".")[1:]
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target.setdefault(parts[-1], state.key)
        headers = {ACTION_HEADER: action.value, NAME_HEADER: self.name, KEY_HEADER: state.key}
        return Message(body=body, id=mid, correlation_id=run_id, headers=headers)


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """``records`` in lists of ``size``."""
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
