"""Which hub process consumes which partition of a partitioned ordered route (see partitioner.py).

Partition queues have a single active consumer, so order holds even while two processes both think they
own a partition; this module only spreads them. Each process runs a :class:`Membership` of the route's
group: it holds the lowest free slot ``k`` (lock ``members:{group}:{k}``, dying with its holder as in
:mod:`esb.runtime.leader`) and every ``interval`` reads the live slots; rank ``r`` of ``n`` live slots owns
partitions ``p % n == r`` (:func:`assign`). On PostgreSQL one connection per member holds the advisory lock
and reads ``pg_locks`` (a broken connection loses the slot until the next interval); otherwise one
``flock`` file per slot under ``data_dir``, probed with a shared lock released at once.

    members = Membership("route:billing.charges", settings, partitions=8, on_change=consume_only)
    members.start()  # on_change(frozenset) runs on the membership thread whenever the owned set changes
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from esb.logging import get_logger
from esb.runtime.leader import FileLock, lock_key, pg_connect

#: What a member knows after a check: its own slot (None when it holds none) and the sorted live slots.
State = tuple[int | None, tuple[int, ...]]

#: The held advisory locks of this database among %s; pg_locks shows a bigint key as two unsigned halves.
_HELD_LOCKS = """
SELECT key FROM (SELECT (classid::bigint << 32) | objid::bigint AS key FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS held
WHERE key = ANY(%s)
"""


def partition_of(key: str | None, partitions: int) -> int:
    """The partition (``0 <= p < partitions``) of ordering key ``key``: a stable hash; None goes to 0."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    if key is None:
        return 0
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def assign(slot: int | None, live: Sequence[int], partitions: int) -> frozenset[int]:
    """The partitions of the member holding ``slot`` when ``live`` slots are held (empty without a slot)."""
    if slot is None or slot not in live:
        return frozenset()
    ordered = sorted(live)
    return frozenset(range(ordered.index(slot), partitions, len(ordered)))


def slot_name(group: str, slot: int) -> str:
    """The lock name of member slot ``slot`` of ``group``."""
    return f"members:{group}:{slot}"


class SlotLocks(Protocol):
    """The member slots of one group, seen from one member."""

    def refresh(self) -> State:
        """Keep this member's slot (or take the lowest free one) and return the state; raise if lost."""
        ...

    def release(self) -> None:
        """Give the slot up. Safe to call twice."""
        ...


def _free(path: Path) -> bool:
    """True unless a process holds ``path`` locked: shared probes by two members never collide."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # and with it the probe's lock
    return True


class FileSlots:
    """Member slots as ``flock`` files under a folder (one machine)."""

    def __init__(self, group: str, folder: Path, max_members: int) -> None:
        self.locks = [FileLock(slot_name(group, k), folder) for k in range(max_members)]
        self.slot: int | None = None

    def refresh(self) -> State:
        """Probe every other slot with a shared lock; take the first free one (exclusive) if slotless."""
        live: list[int] = []
        for k, lock in enumerate(self.locks):
            if k == self.slot or not _free(lock.path):
                live.append(k)
            elif self.slot is None and lock.try_acquire():
                self.slot = k
                live.append(k)
        return self.slot, tuple(live)

    def release(self) -> None:
        """Unlock the held slot."""
        if self.slot is not None:
            self.locks[self.slot].release()
        self.slot = None


class PostgresSlots:
    """Member slots as session advisory locks, all on one autocommit connection of this member."""

    def __init__(self, group: str, url: str, max_members: int) -> None:
        self.url = url
        self.keys = {lock_key(slot_name(group, k)): k for k in range(max_members)}
        self.slot: int | None = None
        self._conn: Any = None

    def refresh(self) -> State:
        """Read the held slots from pg_locks; take the first free one if slotless (psycopg errors raise)."""
        if self._conn is None:
            self.slot = None
            self._conn = pg_connect(self.url)
        rows = self._conn.execute(_HELD_LOCKS, (list(self.keys),)).fetchall()
        live = {self.keys[key] for (key,) in rows}
        if self.slot not in live:  # cannot happen on a live session; take a slot again if it did
            self.slot = self._take(live)
        if self.slot is not None:
            live.add(self.slot)
        return self.slot, tuple(sorted(live))

    def _take(self, live: set[int]) -> int | None:
        for key, k in self.keys.items():  # in slot order
            if k not in live:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row and row[0]:
                    return k
        return None

    def release(self) -> None:
        """Close the connection: the server releases the slot with it."""
        conn, self._conn, self.slot = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def slot_locks(group: str, journal_url: str, data_dir: Path, max_members: int) -> SlotLocks:
    """PostgreSQL slots when the journal is on PostgreSQL, else flock files under ``data_dir``."""
    if journal_url.startswith("postgresql"):
        return PostgresSlots(group, journal_url, max_members)
    return FileSlots(group, data_dir, max_members)


class Membership(threading.Thread):
    """Holds a member slot of ``group`` and works out which of ``partitions`` this process consumes.

    Checks every ``interval`` seconds; ``on_change(owned)`` runs on this thread whenever the owned set
    changes from the last one it was given (starting from the empty set, and back to empty on losing
    the slot or stopping). A failing ``on_change`` is logged and called again at the next check.
    """

    def __init__(
        self,
        group: str,
        settings: Any,
        *,
        partitions: int,
        max_members: int = 32,
        interval: float = 2.0,
        on_change: Callable[[frozenset[int]], None] | None = None,
        slots: SlotLocks | None = None,
    ) -> None:
        super().__init__(name=f"members-{group}", daemon=True)
        if partitions < 1 or max_members < 1:
            raise ValueError(f"partitions and max_members must be >= 1 ({partitions}, {max_members})")
        self.group, self.partitions, self.interval, self.on_change = group, partitions, interval, on_change
        self.slots = slots or slot_locks(group, settings.journal.url, Path(settings.data_dir), max_members)
        self.checked = threading.Event()  # set after the first check (slot taken or not)
        self._state: State = (None, ())
        self._guard = threading.Lock()
        self._stop_event = threading.Event()
        self.log = get_logger("partitions").bind(group=group)

    @property
    def slot(self) -> int | None:
        """This member's slot as of the last check, or None."""
        with self._guard:
            return self._state[0]

    def live(self) -> tuple[int, ...]:
        """The sorted live slots (this member's included) as of the last check; empty without a slot."""
        with self._guard:
            return self._state[1]

    def owned(self, partitions: int | None = None) -> frozenset[int]:
        """The partitions this process should consume (of ``partitions``, default the group's)."""
        with self._guard:
            slot, live = self._state
        return assign(slot, live, self.partitions if partitions is None else partitions)

    def run(self) -> None:
        """Check the slots and report the owned set until stopped; then release the slot."""
        notified: frozenset[int] = frozenset()
        while True:
            self._set(self._refresh())
            self.checked.set()
            notified = self._notify(notified)
            if self._stop_event.wait(self.interval):
                break
        self.slots.release()
        self._set((None, ()))
        self._notify(notified)

    def _refresh(self) -> State:
        try:
            return self.slots.refresh()
        except Exception as exc:  # a broken connection or file error: the slot is lost, retry next time
            self.slots.release()
            if self.slot is not None:
                self.log.warning("member slot lost", slot=self.slot, error=str(exc))
            return None, ()

    def _set(self, state: State) -> None:
        with self._guard:
            before, self._state = self._state, state
        if state[0] != before[0] and state[0] is not None:
            self.log.info("member slot taken", slot=state[0])
        if state[0] is None and state[1] and state != before:
            self.log.warning("no free member slot: consuming nothing", live=list(state[1]))
        if state[1] != before[1]:
            self.log.info("members changed", live=list(state[1]), owned=sorted(self.owned()))

    def _notify(self, notified: frozenset[int]) -> frozenset[int]:
        owned = self.owned()
        if owned == notified or self.on_change is None:
            return owned
        try:
            self.on_change(owned)
        except Exception:  # the consumer side failed to switch: try again at the next check
            self.log.exception("on_change failed", owned=sorted(owned))
            return notified
        return owned

    def stop(self) -> None:
        """Stop checking and give the slot up (within one interval; ``join`` waits for it)."""
        self._stop_event.set()
