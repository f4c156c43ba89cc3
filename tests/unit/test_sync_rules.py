"""The sync rules (esb/sync/rules.py): unchanged, stale, delete, excluded, redelivery, replay, lost sends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from esb.sync.rules import Action, Change, judge
from esb.sync.store import SyncState

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def held(
    hash_: str = "h1", version: int | None = 10, *, deleted: bool = False, by: str | None = "m1"
) -> SyncState:
    """Return a stored state: content ``hash_`` at ``version``, set by message ``by``."""
    return SyncState("customer-billing", "C1", hash_, version, deleted, by, NOW, 3)


def change(hash_: str = "h1", version: int | None = 10, **flags: bool) -> Change:
    """Return a change of key C1."""
    return Change("C1", hash_, version, **flags)


@pytest.mark.parametrize(
    ("state", "new", "action", "write"),
    [
        pytest.param(None, change(), Action.UPSERT, True, id="new-key-upsert"),
        pytest.param(None, change(deleted=True), Action.DELETE, True, id="new-key-delete-is-sent"),
        pytest.param(None, change(excluded=True), Action.EXCLUDED, True, id="new-key-excluded-tombstone"),
        pytest.param(held(), change("h2", 11), Action.UPSERT, True, id="changed-newer"),
        pytest.param(held(), change("h1", 11), Action.UNCHANGED, False, id="unchanged-newer"),
        pytest.param(held(), change("h1", 10), Action.UNCHANGED, False, id="unchanged-same-version"),
        pytest.param(held(), change("h2", 9), Action.STALE, False, id="older-is-stale"),
        pytest.param(held(), change("h1", 9), Action.STALE, False, id="older-even-if-same-content"),
        pytest.param(held(), change("h2", 10), Action.STALE, False, id="same-version-other-content"),
        pytest.param(held(), change("h2", 10, deleted=True), Action.STALE, False, id="same-version-delete"),
        pytest.param(held(), change("h2", 11, deleted=True), Action.DELETE, True, id="delete"),
        pytest.param(held(), change("h1", 11, excluded=True), Action.DELETE, True, id="excluded-held-delete"),
        pytest.param(
            held(deleted=True), change("h9", 11, deleted=True), Action.UNCHANGED, False, id="deleted-again"
        ),
        pytest.param(held(deleted=True), change("h1", 11), Action.UPSERT, True, id="back-after-delete"),
        pytest.param(
            held(deleted=True, by=None),
            change("h1", 11, excluded=True),
            Action.EXCLUDED,
            False,
            id="excluded-again",
        ),
        pytest.param(held("h1", None), change("h2", None), Action.UPSERT, True, id="no-version-changed"),
        pytest.param(
            held("h1", None), change("h1", None), Action.UNCHANGED, False, id="no-version-unchanged"
        ),
        pytest.param(
            held("h1", None), change("h1", 5), Action.UNCHANGED, False, id="first-version-unchanged"
        ),
    ],
)
def test_rules(state: SyncState | None, new: Change, action: Action, write: bool) -> None:
    """Each case: what the target holds, the change, what the hub does and whether it writes the state."""
    verdict = judge(state, new, "m2")
    assert (verdict.action, verdict.write) == (action, write)
    assert verdict.why


def test_an_unchanged_newer_version_still_moves_the_version_on() -> None:
    """Skipping an unchanged change with a newer version asks to advance the stored version."""
    assert judge(held(), change("h1", 11), "m2").advance
    assert not judge(held(), change("h1", 10), "m2").advance


def test_the_same_message_again_is_sent_again_whatever_the_state_says() -> None:
    """A redelivery of the message that set the state (same id) is sent, without writing again."""
    verdict = judge(held(by="m1"), change("h1", 10), "m1")
    assert (verdict.action, verdict.write) == (Action.UPSERT, False)
    deleted = judge(held(deleted=True, by="m1"), change("h1", 10, deleted=True), "m1")
    assert deleted.action is Action.DELETE


def test_a_replay_of_unchanged_content_is_sent() -> None:
    """A replayed message whose content the target holds is sent anyway (esb replay, esb dlq retry)."""
    verdict = judge(held(), change("h1", 11), "m2", replay=True)
    assert (verdict.action, verdict.write) == (Action.UPSERT, True)


def test_a_replay_is_still_refused_when_stale() -> None:
    """A replay older than what the target holds is still dropped as stale."""
    assert judge(held(), change("h2", 9), "m2", replay=True).action is Action.STALE


def test_unchanged_content_is_sent_when_the_last_send_was_dead_lettered() -> None:
    """When the message that set the state was dead-lettered, the same content is sent again."""
    verdict = judge(held(), change("h1", 11), "m2", lost=True)
    assert (verdict.action, verdict.write) == (Action.UPSERT, True)
    assert "lost" in verdict.why


def test_sends_and_skips() -> None:
    """Only upsert and delete send a message."""
    assert [a for a in Action if a.sends] == [Action.UPSERT, Action.DELETE]
