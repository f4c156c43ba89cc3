"""The ``sync_rejected`` step's processor: a record the target rejected becomes the dead letter of the change
that was sent, so that ``esb dlq retry`` sends it again through the sync route (docs/sync.md).

For one rejected record (a line of a directory's ack file) it reads the key's sync state, takes the
message that last set it (the change that was sent), and returns that message as it entered the sync
route (journaled bytes, envelope and headers) with the dead-letter headers of that route
(``esb-route``: the sync route, ``esb-error``: the target's reason) and ``listing-sent`` (the projected
body the state holds, JSON), ``reject-code``, ``reject-reason``, ``reject-record`` and ``reject-file``
(the ack file's name). The route writes it to the sync route's dead-letter endpoint; the change is
journaled ``dead_lettered`` on the sync route, so that the next change of the same content is sent, not
skipped as unchanged (the target never took it).

A retry re-publishes it to the sync route, marked as a replay: the sync step sends it again unless a
newer change of the key was judged since (then it is stale and dropped: an older listing is never
sent). A key with no sent change, or a change the journal no longer holds, is a MessageError: the
rejected record then ends on the ack route's own dead-letter queue, with the target's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from esb.codec import json_body
from esb.exceptions import MessageError
from esb.expressions import Expression
from esb.journal import Journal
from esb.message import Message
from esb.processors.lazy import OpenedOnFirstUse
from esb.sync.store import SyncStore

#: The error class a rejected change carries on the dead-letter queue (``esb dlq list``).
ERROR_CLASS = "TargetRejected"
#: Its ``esb-error-reason``.
ERROR_REASON = "target-rejected"
#: Headers of a replay that must not travel with the dead letter (esb.ops.replay's, not imported: the
#: runtime imports the processors).
REPLAY_HEADERS = ("esb-replay", "esb-replay-of")
#: The header of a batch record naming its file (the batch adapter's).
FILE_HEADER = "batch-file"


@dataclass(frozen=True)
class RejectRule:
    """The compiled step: which sync and sync route, and where the key and the target's reason are."""

    sync: str
    route: str
    key: Expression
    code: Expression
    reason: Expression | None = None
    record: Expression | None = None


class SyncRejecter:
    """The processor of a ``sync_rejected`` step (its store is opened on the first message)."""

    def __init__(self, rule: RejectRule, journal_url: str, where: str, dead_letter: str | None) -> None:
        self.rule = rule
        self.journal_url = journal_url
        self.where = where
        self.dead_letter = dead_letter
        self._store = OpenedOnFirstUse(lambda: SyncStore(self.journal_url, pool_size=2))
        self._journal = OpenedOnFirstUse(lambda: Journal(self.journal_url, pool_size=2))

    def __call__(self, message: Message) -> list[Message]:
        """Return the sent change of the rejected record's key as a dead letter of the sync route."""
        if not isinstance(message.body, dict):
            message = message.replace(body=json_body(message.body, self.where))
        key = _text(self.rule.key.evaluate(message))
        code = _text(self.rule.code.evaluate(message))
        reason = _text(self.rule.reason.evaluate(message)) if self.rule.reason else ""
        record = _text(self.rule.record.evaluate(message)) if self.rule.record else ""
        file = str(message.headers.get(FILE_HEADER) or "")
        said = f"{code} {reason}".strip()
        if not key:
            raise MessageError(f"{self.where}: the rejected record has no key (target said {said})")
        store = self.store()
        held = store.get(self.rule.sync, key, bodies=True)
        if held is None or held.message_id is None:
            raise MessageError(
                f"{self.where}: {key} was rejected ({said}, {file or 'no file'}) but sync "
                f"{self.rule.sync!r} never sent it: nothing to send again"
            )
        sent = store.sent_message(self.rule.route, held.message_id)
        if sent is None:
            raise MessageError(
                f"{self.where}: {key} was rejected ({said}, {file or 'no file'}); the change that was sent, "
                f"{held.message_id}, is no longer in the journal of route {self.rule.route}"
            )
        entry, body = sent
        where_in_file = f"record {record} of " if record else ""
        headers: dict[str, Any] = {k: v for k, v in entry.headers.items() if k not in REPLAY_HEADERS}
        headers.update(
            {
                "esb-error": f"the target rejected {key} ({said}) in {where_in_file}{file or 'its ack'}",
                "esb-error-class": ERROR_CLASS,
                "esb-error-reason": ERROR_REASON,
                "esb-route": self.rule.route,
                "esb-failed-at": datetime.now(UTC).isoformat(),
                "listing-sent": orjson.dumps(held.body).decode() if held.body is not None else "deleted",
                "reject-code": code,
                "reject-reason": reason,
                "reject-record": record,
                "reject-file": file,
            }
        )
        extra: dict[str, Any] = {"created_at": entry.created_at} if entry.created_at is not None else {}
        dead = Message(
            body=body,
            id=entry.id,
            correlation_id=entry.correlation_id,
            causation_id=entry.causation_id,
            type=entry.type,
            source=entry.source,
            schema=entry.schema,
            headers=headers,
            **extra,
        )
        # the sync route's own record: the target never took it, so the next change of the same content is
        # sent, not skipped as unchanged (docs/sync.md, rule "the last send was lost")
        self.journal().event(
            self.rule.route, dead, "dead_lettered", endpoint=self.dead_letter, error=headers["esb-error"]
        )
        return [dead]

    def store(self) -> SyncStore:
        """The sync store, opened on first use."""
        return self._store.get()

    def journal(self) -> Journal:
        """The journal (the sync route's events), opened on first use."""
        return self._journal.get()

    def close(self) -> None:
        """Close the store and the journal, if opened; harmless twice."""
        self._store.close()
        self._journal.close()


def _text(value: Any) -> str:
    """A header-safe text of an evaluated value (None: empty)."""
    return "" if value is None else str(value).strip()
