"""Full resync: read the source's full extract, send the target only what differs (docs/sync.md).

The last run's fingerprints are loaded once (:class:`~esb.resync.skip.LineIndex`): a record whose bytes
were judged last time against a state that has not moved since is unchanged (one hash, one set lookup).
The others are judged per chunk (``resync.chunk`` records to judge, 1,000 by default; or every
``SPAN`` × ``chunk`` records read):

1. map each record to canonical with the resync's transform, read its change exactly as the ``sync``
   step does (:meth:`Syncer.change`: key, content hash, version, delete, exclude);
2. read the chunk's stored states in bulk (:meth:`SyncStore.compare_many`, one query per 500 keys) and
   judge each change with the live rules (:func:`esb.sync.rules.judge`);
3. claim the differences in one transaction (:meth:`SyncStore.claim_many`, the step's compare-and-set on
   the revision read) and send them through the route's steps after its ``sync`` step
   (:class:`~esb.resync.path.SyncPath`): the target's mapping and endpoint are the live ones; a key a
   live change moved meanwhile goes through the route from its ``sync`` step, which judges it again;
4. store the checkpoint (the last record read) and the counts in the run's row, and the judged records'
   fingerprints.

Each difference is sent as message ``<run id>-<key>`` (``resync-<time>-<hex>-C0000001``). A run killed
after a key was claimed and before the chunk's checkpoint meets, when resumed, a state that this very
message set: it is sent again, and the journal's duplicate check and the outlet's per-endpoint record
keep it from reaching the target twice when it had been delivered.
Records before the checkpoint are not judged again.

With ``delete_missing``, the keys the extract lacks are deleted at the end: the store is walked in key
order (keyset pages, each key with its stored fingerprint) and every live key the extract did not hold
(:meth:`LineIndex.seen`) gets a tombstone (compare-and-set: a live change that came meanwhile wins) and
a delete through the steps after the sync step. A resumed run reads the extract's finished part again
only to mark its keys seen.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esb.config.steps.transform import TransformStep
from esb.exceptions import EsbError
from esb.message import Message, utcnow
from esb.processors.sync import ACTION_HEADER, HELD_HEADER, KEY_HEADER, NAME_HEADER, held_header
from esb.resync.path import SyncPath
from esb.resync.skip import LineIndex
from esb.sync.fingerprints import Fingerprints, rules_digest, transform_files
from esb.sync.rules import Action, Change, judge
from esb.sync.runs import MAX_ERROR_SAMPLES, Run, SyncRuns
from esb.sync.store import SyncState, SyncStore, SyncWrite

if TYPE_CHECKING:
    from esb.config.settings import ResyncSettings
    from esb.journal import Journal
    from esb.project import Project

#: One extract record: its number in the file (from 1), its fields, or why it could not be read.
Record = tuple[int, dict[str, Any] | None, str | None]
#: One raw extract record: its number in the file (from 1) and its bytes.
Line = tuple[int, bytes]
#: Consecutive raw extract records: the number of the first, and the bytes of each.
Block = tuple[int, list[bytes]]
#: Parses one raw record: ``(fields, None)`` or ``(None, why)``.
Parse = Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]
#: A chunk is closed (judged, sent, checkpointed) at ``chunk`` records to judge, or at this many times
#: ``chunk`` records read (most skipped by their fingerprints), whichever comes first.
SPAN = 100
#: A key expression this simple (``body.id``, ``body.a.b``) is also written into a delete's body.
_SIMPLE_KEY = re.compile(r"^body((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")


def message_id(run_id: str, key: str) -> str:
    """The id a run sends key ``key`` under, ``<run id>-<key>`` (the same after a resume)."""
    return f"{run_id}-{key}"


@dataclass
class Candidate:
    """A record whose change differs from what the target holds: what to do, and what was read."""

    message: Message
    change: Change
    action: Action
    held: SyncState | None = None
    projection: dict[str, Any] | None = None
    write: bool = False


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
        self.fingerprints = Fingerprints(store, name, self._digest(project, spec))
        self.progress = progress
        #: one creation time for a run's canonical records (utcnow per record costs more than the compare)
        self._now = utcnow()

    def _digest(self, project: Project, spec: ResyncSettings | None) -> bytes:
        """The digest of the rules reading a record: the sync step's declaration, the transform's files,
        and the files of the route's transforms before the sync step (the live chain the resync's
        transform gives the body of, or runs: the directories' listing mapping)."""
        route = self.path.route
        step: Any = route.steps[self.path.index]  # the SyncStep model
        files = b"" if spec is None else transform_files(project.transforms.path_of(spec.transform))
        live = [s.transform for s in route.steps[: self.path.index] if isinstance(s, TransformStep)]
        if live:  # only then: the digests of syncs whose bodies are canonical already stay as they were
            files += b"".join(b"\0" + transform_files(project.transforms.path_of(name)) for name in live)
        return rules_digest(step.model_dump_json(), spec.transform if spec else "", files)

    def close(self) -> None:
        """Close the route's steps and sinks."""
        self.path.close()

    # -- the full resync ------------------------------------------------------------------------------
    def run(self, blocks: Iterable[Block], parse: Parse, source: str, *, restart: bool = False) -> Run:
        """Resync from the extract at ``source``: its records as ``blocks`` (number of the first, raw
        bytes of each) and their parser. Resumes the unfinished run over the same source unless
        ``restart``; returns the run."""
        assert self.spec is not None
        run = None if restart else self.runs.unfinished(self.name, "resync", source)
        if run is None:
            run = self.runs.start(self.name, "resync", source)
        else:
            self.runs.adopt(run)
        index = LineIndex(self.fingerprints, track=self.spec.delete_missing).load()
        try:
            todo: list[Line] = []
            read, last = 0, run.checkpoint
            for first, raws in blocks:
                if first <= run.checkpoint:  # judged before a resume: only their keys are wanted
                    done = min(len(raws), run.checkpoint - first + 1)
                    if self.spec.delete_missing:
                        for line in zip(range(first, first + done), raws[:done], strict=True):
                            self._mark(line, parse, index)
                    first, raws = first + done, raws[done:]
                if raws:
                    todo, read = self._take(run, (first, raws), todo, read, (parse, index))
                    last = first + len(raws) - 1
            if read:
                self._close_chunk(run, todo, last, parse, index)
            if self.spec.delete_missing:
                self._delete_missing(run, index)
        except (EsbError, OSError) as exc:
            self.runs.finish(run, f"{type(exc).__name__}: {exc}")
            raise
        self.runs.finish(run)
        return run

    def _take(
        self, run: Run, block: Block, todo: list[Line], read: int, using: tuple[Parse, LineIndex]
    ) -> tuple[list[Line], int]:
        """Count the block's records the fingerprints recognise unchanged, add the others to the open
        chunk's ``todo`` (``read`` records read so far), and close the chunk exactly where the
        record-by-record rule would: at ``chunk`` records to judge or ``SPAN`` x ``chunk`` records read.
        Returns the open chunk's records to judge and records read."""
        assert self.spec is not None
        (first, raws), (parse, index) = block, using
        size, span = self.spec.chunk, SPAN * self.spec.chunk
        misses = index.take_block(raws)  # positions of the records to judge, in order
        at, m = 0, 0
        while at < len(raws):
            end = len(raws) - 1  # the block's last record to account for before the chunk closes
            if m + size - len(todo) - 1 < len(misses):
                end = misses[m + size - len(todo) - 1]
            end = min(end, at + span - read - 1)
            k = bisect_right(misses, end, m)
            todo.extend((first + i, raws[i]) for i in misses[m:k])
            taken = end - at + 1
            run.counts["read"] += taken
            run.counts["unchanged"] += taken - (k - m)
            read, m, at = read + taken, k, end + 1
            if len(todo) >= size or read >= span:
                self._close_chunk(run, todo, first + end, parse, index)
                todo, read = [], 0
        return todo, read

    def _error(self, run: Run, what: str) -> None:
        """Count an error and keep the first ones (record number or key, and why)."""
        run.counts["errors"] += 1
        samples = run.counts.setdefault("error_samples", [])
        if len(samples) < MAX_ERROR_SAMPLES:
            samples.append(what)

    def _close_chunk(self, run: Run, todo: list[Line], number: int, parse: Parse, index: LineIndex) -> None:
        """Judge and send the chunk's records to judge, then checkpoint at record ``number``."""
        if todo:
            self._chunk(run, todo, parse, index)
        run.checkpoint = number
        self.runs.checkpoint(run)
        if self.progress is not None:
            self.progress(run)

    def _chunk(self, run: Run, chunk: list[Line], parse: Parse, index: LineIndex) -> None:
        """Judge records the fingerprints did not skip against the store in bulk, send the differences."""
        changes: list[tuple[Message, Change, dict[str, Any], str]] = []
        for number, raw in chunk:
            found = self._change(number, raw, parse)
            if isinstance(found, str):
                self._error(run, found)
                continue
            changes.append((*found, self.fingerprints.of(raw)))
            index.add(found[1].key)
        index.settle([change.key for _, change, _, _ in changes])
        held = self.store.compare_many(self.name, [c.key for _, c, _, _ in changes])
        candidates: list[Candidate] = []
        remember: dict[str, tuple[str, int]] = {}
        for message, change, projection, line in changes:
            state = held.get(change.key)
            candidate = self._judge(run, state, message, change, projection)
            if candidate is not None:
                candidates.append(candidate)
            elif state is not None:
                remember[change.key] = (line, state.revision)
        self._send(run, candidates)
        lines = {change.key: line for _, change, _, line in changes}
        after = self.store.compare_many(self.name, [c.change.key for c in candidates])
        for candidate in candidates:
            state = after.get(candidate.change.key)
            if state is not None and state.message_id == candidate.message.id:  # our send is the latest
                remember[candidate.change.key] = (lines[candidate.change.key], state.revision)
        self.fingerprints.remember(remember)

    def _change(self, number: int, raw: bytes, parse: Parse) -> tuple[Message, Change, dict[str, Any]] | str:
        """Parse, map to canonical and read one record's change; or why it cannot be (an error)."""
        assert self.transform is not None
        fields, error = parse(number, raw)
        if error is not None:
            return f"record {number}: {error}"
        try:
            header = self.transform.header
            message = Message(
                body=self.transform.transform_body(fields), id=f"{number}", correlation_id="resync",
                type=header.output_type, schema=header.output_schema, created_at=self._now,
            )  # fmt: skip
            change, projection = self.syncer.change(message)
        except EsbError as exc:
            return f"record {number}: {exc}"
        return message, change, projection

    def _judge(
        self, run: Run, held: SyncState | None, message: Message, change: Change, projection: dict[str, Any]
    ) -> Candidate | None:
        """A candidate when the change must go to the target, else None (counted unchanged or stale)."""
        mid = message_id(run.id, change.key)
        if held is not None and held.message_id == mid:  # claimed by this run before a crash: again
            action = Action.DELETE if held.deleted else Action.UPSERT
            return Candidate(message.replace(id=mid), change, action, held, projection)
        verdict = judge(held, change, mid)
        if verdict.action in (Action.UNCHANGED, Action.STALE) or (
            verdict.action is Action.EXCLUDED and not verdict.write
        ):
            run.counts[
                {"unchanged": "unchanged", "stale": "stale"}.get(verdict.action.value, "excluded")
            ] += 1
            return None
        return Candidate(message.replace(id=mid), change, verdict.action, held, projection, verdict.write)

    def _send(self, run: Run, candidates: list[Candidate]) -> None:
        """Claim the chunk's differences in one transaction, send the claimed through the steps after
        the sync step, and the others (a live change moved the key since it was read) through the route
        from the sync step, which judges them again; count what each became."""
        claims = [
            (self._write(c), None if c.held is None else c.held.revision) for c in candidates if c.write
        ]
        claimed = self.store.claim_many(claims)
        decided = [c for c in candidates if (c.write and c.change.key in claimed) or not c.write]
        again = [c for c in candidates if c.write and c.change.key not in claimed]
        for candidate in decided:
            if candidate.action is Action.EXCLUDED:  # a tombstone only: nothing goes
                run.counts["excluded"] += 1
        sending = [c for c in decided if c.action.sends]
        messages = [self._headed(c) for c in sending]
        self._count_outcomes(run, sending, self.path.send(self.path.decided, messages))
        self._count_outcomes(run, again, self.path.send(self.path.judged, [c.message for c in again]))

    def _write(self, candidate: Candidate) -> SyncWrite:
        """The state a claimed difference leaves (as the sync step writes it: nothing of a deleted or
        excluded record's body kept)."""
        gone = candidate.action in (Action.DELETE, Action.EXCLUDED)
        held = candidate.held
        sender = candidate.message.id if candidate.action.sends else (held.message_id if held else None)
        change = candidate.change
        body = None if gone else candidate.projection
        return SyncWrite(self.name, change.key, change.hash, change.version, gone, sender, body)

    def _headed(self, candidate: Candidate) -> Message:
        """The message as the sync step passes it on: the ``sync-action``, name and key headers."""
        headers = {
            **candidate.message.headers,
            ACTION_HEADER: candidate.action.value,
            NAME_HEADER: self.name,
            KEY_HEADER: candidate.change.key,
            HELD_HEADER: held_header(candidate.held),
        }
        return candidate.message.replace(headers=headers)

    def _count_outcomes(self, run: Run, candidates: list[Candidate], outcomes: list[str]) -> None:
        for candidate, outcome in zip(candidates, outcomes, strict=True):
            if outcome == "delivered":
                run.counts[
                    {"upsert": "sent", "delete": "deleted"}.get(candidate.action.value, "excluded")
                ] += 1
            elif outcome == "filtered":
                run.counts["excluded" if candidate.change.excluded else "unchanged"] += 1
            else:
                self._error(run, f"key {candidate.change.key}: {outcome}")

    def _mark(self, line: Line, parse: Parse, index: LineIndex) -> None:
        """Mark the key of a record judged before a resume seen: by fingerprint, else mapped."""
        number, raw = line
        if not index.take(raw):
            found = self._change(number, raw, parse)
            if not isinstance(found, str):
                index.add(found[1].key)

    # -- deletes --------------------------------------------------------------------------------------
    def _delete_missing(self, run: Run, index: LineIndex) -> None:
        """Delete at the target every live key the extract lacks (and finish this run's claimed ones)."""
        if index.complete:  # every key of the store was met: none is missing, no walk
            return
        for rows in self.fingerprints.states():
            gone = [
                key
                for key, deleted, sender, line in rows
                if not index.seen(key, line) and (not deleted or sender == message_id(run.id, key))
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
                self._error(run, f"key {message.headers[KEY_HEADER]}: {outcome}")

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
        headers = {
            ACTION_HEADER: action.value,
            NAME_HEADER: self.name,
            KEY_HEADER: state.key,
            HELD_HEADER: held_header(state),
        }
        return Message(body=body, id=mid, correlation_id=run_id, headers=headers)


def _chunks(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``records`` in lists of ``size``."""
    chunk: list[Any] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
