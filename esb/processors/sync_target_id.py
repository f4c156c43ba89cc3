"""The ``sync_target_id`` step's processor: the target's own id of a synced key, kept and recalled.

A target that gives records its own ids (Billing's account id for the CRM's billing account) answers the
create with it; an update must name it. This step keeps that id per (sync, key) in the sync store when
told where the answer holds it (``remember``), and puts the id known for the key into the body at
``into`` (null when none is known), so the route's ``choice`` can pick update or create and the update
mapping can name it. The key is the ``sync-key`` header the ``sync`` step (or a resync) set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esb.codec import json_body
from esb.expressions import Expression
from esb.message import Message
from esb.processors.lazy import OpenedOnFirstUse
from esb.processors.routing import set_path
from esb.processors.sync import KEY_HEADER
from esb.sync.content import SyncDataError
from esb.sync.store import SyncStore
from esb.sync.tables import MAX_KEY


@dataclass(frozen=True)
class TargetIdRule:
    """The compiled step: which sync, the body field that gets the id, and where an answer holds it."""

    name: str
    into: str
    remember: Expression | None = None


class TargetIdKeeper:
    """The processor of a ``sync_target_id`` step (its store is opened on the first message)."""

    def __init__(self, rule: TargetIdRule, journal_url: str) -> None:
        self.rule = rule
        self._store = OpenedOnFirstUse(lambda: SyncStore(journal_url, pool_size=2))

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with the key's target id at ``into`` (kept first when ``remember``)."""
        rule = self.rule
        key = message.headers.get(KEY_HEADER)
        if not key:
            raise SyncDataError(
                f"sync_target_id {rule.name}: the message has no {KEY_HEADER!r} header: put this step "
                f"after the sync step {rule.name!r}"
            )
        body = message.body if isinstance(message.body, dict) else json_body(message.body, rule.name)
        if rule.remember is None:
            target_id = self._store.get().target_id(rule.name, str(key))
        else:
            target_id = self._answered(message)
            self._store.get().remember_target_id(rule.name, str(key), target_id)
        body = dict(body)
        set_path(body, rule.into, target_id)
        return [message.replace(body=body)]

    def _answered(self, message: Message) -> str:
        """The target's id in its answer; an answer without one is a data error (dead-lettered)."""
        assert self.rule.remember is not None
        found: Any = self.rule.remember.evaluate(message)
        if isinstance(found, bool) or not isinstance(found, str | int) or not str(found).strip():
            raise SyncDataError(
                f"sync_target_id {self.rule.name}: the target's answer has no id at "
                f"{self.rule.remember.text!r} (got {found!r})"
            )
        text = str(found).strip()
        if len(text) > MAX_KEY:
            raise SyncDataError(
                f"sync_target_id {self.rule.name}: the target's id is over {MAX_KEY} characters"
            )
        return text

    def close(self) -> None:
        """Close the store, if one was opened; harmless twice."""
        self._store.close()
