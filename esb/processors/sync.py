"""The ``sync`` step's processor: send a key's change only if it changes what the target holds.

For each message it reads the key, the projection of the fields that matter, their content hash, the
version and whether the change is a delete or excluded; reads the key's state from the sync store, asks
:func:`esb.sync.rules.judge`, writes the verdict with a compare-and-set (a lost race reads and judges
again), then either passes the message on with the ``sync-action`` header (``upsert`` or ``delete``) or
drops it with its reason journaled (``filtered``, detail ``sync``/``key``/``skipped``/``why``).

The state is written here, before the message is sent, under the message's id (docs/sync.md, "When
the state is written"): the compare-and-set is what keeps an older version from ever being sent once a
newer one was, and the id is what lets the same message through again after a failed delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esb.codec import json_body
from esb.exceptions import TransportError
from esb.expressions import Expression
from esb.message import Message
from esb.processors.drops import dropped
from esb.processors.lazy import OpenedOnFirstUse
from esb.sync.content import SyncDataError, content_hash, project, version_number
from esb.sync.rules import Action, Change, Verdict, judge
from esb.sync.store import SyncState, SyncStore, SyncWrite
from esb.sync.tables import MAX_KEY

#: Header saying what the target must do with the passed-on message: ``upsert`` or ``delete``.
ACTION_HEADER = "sync-action"
#: Headers naming the sync and the key (for the target's mapping and for tracing).
NAME_HEADER = "sync-name"
KEY_HEADER = "sync-key"
#: Header saying whether the target held the key before this change (``true``/``false``): a route whose
#: target answers a create idempotently without updating (Billing's createAccount) updates it as well.
HELD_HEADER = "sync-held"
#: Header ``esb replay`` sets (esb.runtime.worker.REPLAY_HEADER; not imported: the runtime imports us).
REPLAY_HEADER = "esb-replay"
#: Times one message reads and judges again after losing a compare-and-set before giving up (retryable).
MAX_RACES = 8


@dataclass(frozen=True)
class SyncRule:
    """The compiled step: the sync's name, key, version, fields, delete and exclude conditions."""

    name: str
    key: Expression
    fields: tuple[str, ...]
    version: Expression | None = None
    delete: Expression | None = None
    exclude: Expression | None = None


class Syncer:
    """The processor of a ``sync`` step (its store is opened on the first message)."""

    def __init__(self, rule: SyncRule, journal_url: str, route_id: str) -> None:
        self.rule = rule
        self.journal_url = journal_url
        self.route_id = route_id
        self._store = OpenedOnFirstUse(lambda: SyncStore(self.journal_url, pool_size=2))

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with ``sync-action`` set, or nothing (skipped or stale, journaled why)."""
        if not isinstance(message.body, dict):  # JSON bytes straight from a queue: parsed here
            message = message.replace(body=json_body(message.body, f"sync {self.rule.name}"))
        change, projection = self.change(message)
        verdict, held = self._settle(change, projection, message)
        if verdict.action.sends:
            headers = {
                **message.headers,
                ACTION_HEADER: verdict.action.value,
                NAME_HEADER: self.rule.name,
                KEY_HEADER: change.key,
                HELD_HEADER: held_header(held),
            }
            return [message.replace(headers=headers)]
        note: dict[str, Any] = {
            "sync": self.rule.name,
            "key": change.key,
            "skipped": verdict.action.value,
            "why": verdict.why,
        }
        return dropped(message, note)

    def change(self, message: Message) -> tuple[Change, dict[str, Any]]:
        """Read the message's change (key, hash, version, delete, exclude) and its projection."""
        rule = self.rule
        if not isinstance(message.body, dict):
            raise SyncDataError(f"sync {rule.name}: the body must be a canonical JSON object (map it first)")
        key = rule.key.evaluate(message)
        if isinstance(key, bool) or not isinstance(key, str | int) or str(key).strip() == "":
            raise SyncDataError(
                f"sync {rule.name}: key {rule.key.text!r} gives {key!r}: expected a text or number"
            )
        key = str(key).strip()
        if len(key) > MAX_KEY:
            raise SyncDataError(f"sync {rule.name}: key is {len(key)} characters long (at most {MAX_KEY})")
        version = None
        if rule.version is not None:
            version = version_number(rule.version.evaluate(message), f"sync {rule.name}: {rule.version.text}")
            if version is None:
                raise SyncDataError(
                    f"sync {rule.name}: the message has no version ({rule.version.text!r} is empty), so "
                    "it cannot be ordered against the target's"
                )
        projection = project(message.body, rule.fields)
        return (
            Change(
                key,
                content_hash(projection),
                version,
                deleted=rule.delete is not None and rule.delete.truthy(message),
                excluded=rule.exclude is not None and rule.exclude.truthy(message),
            ),
            projection,
        )

    def _settle(
        self, change: Change, projection: dict[str, Any], message: Message
    ) -> tuple[Verdict, SyncState | None]:
        """Judge the change against the stored state and write the verdict (again after a lost race);
        return the verdict and the state it was judged against."""
        store = self.store()
        replay = REPLAY_HEADER in message.headers
        for _ in range(MAX_RACES):
            held = store.get(self.rule.name, change.key)
            verdict = judge(held, change, message.id, replay=replay)
            unchanged = verdict.action in (Action.UNCHANGED, Action.EXCLUDED)
            if held is not None and unchanged and self._lost(held, message.id):
                verdict = judge(held, change, message.id, replay=replay, lost=True)
            if self._write(store, held, change, projection, verdict, message.id):
                return verdict, held
        raise TransportError(
            f"sync {self.rule.name}: key {change.key!r} changed under this message {MAX_RACES} times in a "
            "row (concurrent writers): retried"
        )

    def _lost(self, held: SyncState, message_id: str) -> bool:
        """True when the message that set ``held`` ended dead-lettered on this route (never confirmed)."""
        if held.message_id is None or held.message_id == message_id:
            return False
        return self.store().outcome(self.route_id, held.message_id) == "dead_lettered"

    def _write(
        self,
        store: SyncStore,
        held: SyncState | None,
        change: Change,
        projection: dict[str, Any],
        verdict: Verdict,
        message_id: str,
    ) -> bool:
        """Write what ``verdict`` says; False when the row moved since it was read."""
        revision = None if held is None else held.revision
        if verdict.write:
            gone = verdict.action in (Action.DELETE, Action.EXCLUDED)
            write = SyncWrite(
                self.rule.name,
                change.key,
                change.hash,
                change.version,
                deleted=gone,
                message_id=message_id if verdict.action.sends else (held.message_id if held else None),
                body=None if gone else projection,  # nothing of a deleted or excluded record is kept
            )
            return store.claim(write, revision)
        if verdict.advance and held is not None and change.version is not None:
            return store.advance(self.rule.name, change.key, change.version, held.revision)
        return True

    def store(self) -> SyncStore:
        """The sync store, opened on first use."""
        return self._store.get()

    def close(self) -> None:
        """Close the store, if one was opened; harmless twice."""
        self._store.close()


def held_header(held: SyncState | None) -> str:
    """The ``sync-held`` header's value: ``true`` when ``held`` says the target holds the key."""
    return "true" if held is not None and not held.deleted else "false"
