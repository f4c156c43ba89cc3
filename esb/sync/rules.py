"""The sync rules: given what the target holds for a key and a new change, what the hub does.

A pure function (no database), so every rule is tested on its own; :class:`esb.processors.sync.Syncer`
reads the state, asks :func:`judge`, and writes what the verdict says with a compare-and-set.

In order:

1. **Redelivery**: the message that set the state comes again (a crash before its delivery was confirmed,
   a retry, a failed delivery): it is sent again, whatever else holds.
2. **Stale**: with a version rule, a change older than the stored version, or as old with other content,
   is dropped and never applied.
3. **Excluded** (privacy, out of scope): never sent; if the target holds the key, a delete goes instead.
4. **Delete**: sent, unless the target already holds no record.
5. **Unchanged**: the same content as the target holds is not sent (its version still moves on).

An unchanged change is sent after all when it is a replay (``esb replay``, ``esb dlq retry``) or when the
message that last set the state ended dead-lettered (the target may never have got it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from esb.sync.store import SyncState

__all__ = ["Action", "Change", "Verdict", "judge"]


class Action(StrEnum):
    """What the hub does with a change."""

    UPSERT = "upsert"
    """Send the target's create-or-update message."""
    DELETE = "delete"
    """Send the target's delete message."""
    UNCHANGED = "unchanged"
    """Not sent: the target holds this content already."""
    STALE = "stale"
    """Dropped: older than (or as old as, with other content) what the target holds."""
    EXCLUDED = "excluded"
    """Not sent: out of scope for this target, and the target holds nothing for the key."""

    @property
    def sends(self) -> bool:
        """True when a message goes to the target."""
        return self in (Action.UPSERT, Action.DELETE)


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a key as the step read it from the message."""

    key: str
    hash: str
    version: int | None
    deleted: bool = False
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rule's answer: the action, whether the state must be written, and why (for the journal)."""

    action: Action
    write: bool
    """Write the change as the key's new state (a send, or an excluded key's tombstone)."""
    advance: bool = False
    """Only raise the stored version (an unchanged change with a newer version)."""
    why: str = ""


def judge(
    held: SyncState | None, change: Change, message_id: str, *, replay: bool = False, lost: bool = False
) -> Verdict:
    """Return what to do with ``change`` (from message ``message_id``) when the target holds ``held``.

    ``replay``: the message is a replay (sent even if unchanged). ``lost``: the message that set ``held``
    ended dead-lettered (so an unchanged change is sent after all); only looked at for unchanged ones.
    """
    if held is None:
        if change.excluded:
            return Verdict(Action.EXCLUDED, write=True, why="excluded, and the target never had it")
        return Verdict(Action.DELETE if change.deleted else Action.UPSERT, write=True, why="new key")
    if held.message_id == message_id:
        action = Action.DELETE if held.deleted else Action.UPSERT
        return Verdict(action, write=False, why="the same message again: sent again")
    if change.version is not None and held.version is not None:
        if change.version < held.version:
            return Verdict(Action.STALE, write=False, why="older than the version the target holds")
        if change.version == held.version and not _same(held, change):
            return Verdict(Action.STALE, write=False, why="the same version with other content")
    gone = change.excluded or change.deleted
    if gone and not held.deleted:
        return Verdict(Action.DELETE, write=True, why="excluded: delete" if change.excluded else "delete")
    if not gone and (held.deleted or held.hash != change.hash):
        return Verdict(Action.UPSERT, write=True, why="changed")
    # the target holds this already (the same content, or no record for a delete)
    newer = change.version is not None and (held.version is None or change.version > held.version)
    if held.message_id is not None and (replay or lost):
        action = Action.DELETE if held.deleted else Action.UPSERT
        why = "unchanged, sent again: a replay" if replay else "unchanged, sent again: the last send was lost"
        return Verdict(action, write=True, why=why)
    if change.excluded:
        return Verdict(Action.EXCLUDED, write=False, advance=newer, why="excluded, and the target has none")
    return Verdict(Action.UNCHANGED, write=False, advance=newer, why="the target holds this content")


def _same(held: SyncState, change: Change) -> bool:
    """True when ``change`` says what the target holds (both gone, or the same content)."""
    gone = change.deleted or change.excluded
    return gone == held.deleted and (gone or held.hash == change.hash)
