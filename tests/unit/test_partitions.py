"""Partition hashing and the membership that splits partitions between hub processes (file locks)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from esb.runtime.partitions import FileSlots, Membership, State, assign, partition_of

PARTITIONS = 8
INTERVAL = 0.05
ALL = frozenset(range(PARTITIONS))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until true or the deadline; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


class Recorder:
    """An on_change callback that records every owned set it was given."""

    def __init__(self) -> None:
        self.calls: list[frozenset[int]] = []
        self.lock = threading.Lock()

    def __call__(self, owned: frozenset[int]) -> None:
        with self.lock:
            self.calls.append(owned)

    def history(self) -> list[frozenset[int]]:
        """The calls so far."""
        with self.lock:
            return list(self.calls)


MakeMember = Callable[..., tuple[Membership, Recorder]]


def members_of(settings: Any, group: str = "route:billing.charges") -> Iterator[MakeMember]:
    """Yield a maker of started members of ``group`` (8 partitions, recorded); stop and join them after."""
    made: list[Membership] = []

    def make(**options: Any) -> tuple[Membership, Recorder]:
        recorder = Recorder()
        options = {"partitions": PARTITIONS, "interval": INTERVAL, "on_change": recorder, **options}
        membership = Membership(group, settings, **options)
        membership.start()
        made.append(membership)
        return membership, recorder

    yield make
    for membership in made:
        membership.stop()
    for membership in made:
        membership.join(10)


@pytest.fixture
def member(tmp_path: Path) -> Iterator[MakeMember]:
    """Start members of one group over ``tmp_path``; stop and join them all at the end."""
    journal = SimpleNamespace(url=f"sqlite:///{tmp_path}/journal.db")
    yield from members_of(SimpleNamespace(journal=journal, data_dir=tmp_path))


def settled(members: list[Membership]) -> bool:
    """True when every member holds a slot and all see the same live slots, one per member."""
    views = {m.live() for m in members}
    return all(m.slot is not None for m in members) and len(views) == 1 and len(views.pop()) == len(members)


def assert_split(members: list[Membership]) -> None:
    """The members own disjoint partition sets that together cover every partition."""
    owned = [m.owned() for m in members]
    assert all(owned), owned
    assert sum(len(o) for o in owned) == PARTITIONS, owned
    assert frozenset().union(*owned) == ALL


@pytest.mark.parametrize(
    ("key", "partitions", "expected"),
    [
        pytest.param("ACC-1001", 8, 2, id="acc-1001"),
        pytest.param("ACC-1002", 8, 1, id="acc-1002"),
        pytest.param("billing-account-42", 16, 12, id="16-partitions"),
        pytest.param("", 8, 4, id="empty-key"),
        pytest.param("客户-7", 1000003, 691494, id="chinese-key-large-n"),
    ],
)
def test_partition_of_is_stable(key: str, partitions: int, expected: int) -> None:
    """partition_of gives fixed values (a stable hash, not Python's per-run hash())."""
    assert partition_of(key, partitions) == expected


def test_partition_of_spreads_keys_evenly() -> None:
    """10,000 account keys land within 20% of an even share on each of 8 partitions."""
    counts = Counter(partition_of(f"ACC-{n:06d}", 8) for n in range(10_000))
    assert set(counts) == set(range(8))
    assert all(1000 <= c <= 1500 for c in counts.values()), counts


def test_partition_of_none_key_goes_to_zero() -> None:
    """A message without a key goes to partition 0 whatever the partition count."""
    assert [partition_of(None, n) for n in (1, 2, 8, 97)] == [0, 0, 0, 0]


def test_partition_of_refuses_no_partitions() -> None:
    """A partition count below 1 is a clear error, not a ZeroDivisionError."""
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("ACC-1", 0)


@pytest.mark.parametrize(
    ("slot", "live", "expected"),
    [
        pytest.param(None, (0, 1), frozenset(), id="no-slot"),
        pytest.param(3, (0, 1), frozenset(), id="slot-not-live"),
        pytest.param(4, (4,), ALL, id="alone-owns-all"),
        pytest.param(2, (0, 2, 5), frozenset({1, 4, 7}), id="rank-1-of-3"),
        pytest.param(9, (9, 1), frozenset({1, 3, 5, 7}), id="unsorted-live"),
    ],
)
def test_assign_by_rank(slot: int | None, live: tuple[int, ...], expected: frozenset[int]) -> None:
    """A member owns the partitions p with p % len(live) == its rank among the sorted live slots."""
    assert assign(slot, live, PARTITIONS) == expected


def test_flock_slots_exclude_each_other_in_one_process(tmp_path: Path) -> None:
    """Two slot tables in one process take different slots (flock is per open file) and see both."""
    first, second = FileSlots("g", tmp_path, 4), FileSlots("g", tmp_path, 4)
    try:
        assert first.refresh() == (0, (0,))
        assert second.refresh() == (1, (0, 1))
        assert first.refresh() == (0, (0, 1))
        first.release()
        assert second.refresh() == (1, (1,))
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize("count", [pytest.param(2, id="two"), pytest.param(3, id="three")])
def test_members_split_partitions(member: MakeMember, count: int) -> None:
    """Members over one folder take different slots and split the partitions disjointly and completely."""
    members = [member()[0] for _ in range(count)]
    assert wait_for(lambda: settled(members))
    assert len({m.slot for m in members}) == count
    assert_split(members)


def test_stopped_member_partitions_taken_over(member: MakeMember) -> None:
    """When a member stops, it reports an empty set and the others take over all its partitions."""
    (first, first_calls), (second, second_calls), (third, third_calls) = member(), member(), member()
    assert wait_for(lambda: settled([first, second, third]))
    second.stop()
    second.join(10)
    assert second.slot is None
    assert second.owned() == frozenset()
    assert second_calls.history()[-1] == frozenset()
    assert wait_for(lambda: settled([first, third]))
    assert_split([first, third])
    assert wait_for(lambda: first_calls.history()[-1:] == [first.owned()])
    assert wait_for(lambda: third_calls.history()[-1:] == [third.owned()])


def test_on_change_follows_the_owned_set(member: MakeMember) -> None:
    """on_change gets all partitions when alone, its share when another joins, all again when it leaves."""
    first, calls = member()
    assert wait_for(lambda: calls.history() == [ALL])
    second, _ = member()
    assert wait_for(lambda: settled([first, second]))
    half = first.owned()
    assert len(half) == PARTITIONS // 2
    assert wait_for(lambda: calls.history() == [ALL, half])
    second.stop()
    assert wait_for(lambda: calls.history() == [ALL, half, ALL])


def test_no_free_slot_then_takes_a_freed_one(member: MakeMember) -> None:
    """With every slot taken a member owns nothing; it takes the slot a stopped member frees."""
    made = [member(max_members=2) for _ in range(3)]
    members = [m for m, _ in made]

    def two_hold_slots() -> bool:
        holders = [m for m in members if m.slot is not None]
        return all(m.checked.is_set() for m in members) and len(holders) == 2 and settled(holders)

    assert wait_for(two_hold_slots)
    (waiting, waiting_calls), *_ = [(m, calls) for m, calls in made if m.slot is None]
    assert waiting.owned() == frozenset()
    assert waiting_calls.history() == []
    leaving, staying = [m for m in members if m is not waiting]
    leaving.stop()
    assert wait_for(lambda: settled([staying, waiting]))
    assert_split([staying, waiting])
    assert wait_for(lambda: waiting_calls.history() == [waiting.owned()])


class FlakySlots:
    """A slot table that fails on demand, like a PostgreSQL connection killed by the server."""

    def __init__(self) -> None:
        self.fail = threading.Event()
        self.failures = 0
        self.releases = 0

    def refresh(self) -> State:
        """Hold slot 0 alone, or raise (once per ``fail``) as a broken connection does."""
        if self.fail.is_set():
            self.fail.clear()
            self.failures += 1
            raise ConnectionError("server closed the connection")
        return 0, (0,)

    def release(self) -> None:
        """Count releases."""
        self.releases += 1


def test_lost_slot_drops_partitions_then_retakes(member: MakeMember) -> None:
    """A broken slot backend empties the owned set (on_change) and the member takes a slot again."""
    slots = FlakySlots()
    membership, calls = member(slots=slots)
    assert wait_for(lambda: calls.history() == [ALL])
    slots.fail.set()
    assert wait_for(lambda: calls.history() == [ALL, frozenset(), ALL])
    assert slots.failures == 1
    assert slots.releases >= 1
    assert membership.owned() == ALL


def test_failing_on_change_is_retried(member: MakeMember) -> None:
    """An on_change that raises is called again with the same set at the next check."""
    seen: list[frozenset[int]] = []

    def flaky(owned: frozenset[int]) -> None:
        seen.append(owned)
        if len(seen) == 1:
            raise RuntimeError("consumer not ready")

    membership, _ = member(on_change=flaky)
    assert wait_for(lambda: len(seen) >= 2)
    assert seen[:2] == [ALL, ALL]
    assert membership.is_alive()
