"""Partition membership on a real PostgreSQL: advisory-lock slots read from pg_locks, split and takeover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from esb.runtime.leader import lock_key, pg_connect
from esb.runtime.partitions import assign, slot_name
from tests.integration.pg_server import PostgresServer
from tests.unit.test_partitions import ALL, MakeMember, assert_split, members_of, settled, wait_for

pytestmark = pytest.mark.integration

GROUP = "route:billing.charges"
INTERVAL = 0.05


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the throwaway server, dropped at the end."""
    url = postgres_server.create_database("partitions")
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def admin(database: str) -> Iterator[Any]:
    """An autocommit connection of the test's own to the database."""
    conn = pg_connect(database)
    yield conn
    conn.close()


@pytest.fixture
def member(database: str, tmp_path: Path) -> Iterator[MakeMember]:
    """Start members of GROUP on the PostgreSQL journal URL; stop and join them all at the end."""
    yield from members_of(SimpleNamespace(journal=SimpleNamespace(url=database), data_dir=tmp_path), GROUP)


def other_backends(admin: Any) -> int:
    """How many sessions other than the admin's are connected to the test database."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
    return int(admin.execute(sql, (admin.info.backend_pid,)).fetchone()[0])


@pytest.mark.parametrize("count", [pytest.param(2, id="two"), pytest.param(3, id="three")])
def test_members_split_partitions(member: MakeMember, admin: Any, count: int) -> None:
    """Members take different advisory-lock slots, split the partitions, and use one connection each."""
    members = [member()[0] for _ in range(count)]
    assert wait_for(lambda: settled(members))
    assert len({m.slot for m in members}) == count
    assert_split(members)
    assert other_backends(admin) == count


def test_stopped_member_partitions_taken_over(member: MakeMember, admin: Any) -> None:
    """A stopped member closes its connection, reports nothing owned, and the others take over."""
    (first, _), (second, second_calls), (third, third_calls) = member(), member(), member()
    assert wait_for(lambda: settled([first, second, third]))
    second.stop()
    second.join(10)
    assert second.owned() == frozenset()
    assert second_calls.history()[-1] == frozenset()
    assert wait_for(lambda: settled([first, third]))
    assert_split([first, third])
    assert wait_for(lambda: third_calls.history()[-1:] == [third.owned()])
    assert wait_for(lambda: other_backends(admin) == 2)


def test_slots_held_by_another_session_are_live(member: MakeMember, admin: Any) -> None:
    """Slots locked by another session (keys of both signs) count as live and the member takes the next."""
    keys = [lock_key(slot_name(GROUP, k)) for k in range(4)]
    assert any(key < 0 for key in keys)
    assert any(key > 0 for key in keys)
    for key in keys:
        admin.execute("SELECT pg_advisory_lock(%s)", (key,))
    membership, calls = member()
    assert wait_for(lambda: membership.live() == (0, 1, 2, 3, 4))
    assert membership.slot == 4
    assert assign(4, (0, 1, 2, 3, 4), 8) == frozenset({4})
    assert wait_for(lambda: calls.history() == [frozenset({4})])


def test_terminated_connection_drops_partitions_then_retakes(member: MakeMember, admin: Any) -> None:
    """pg_terminate_backend on a member's session empties its owned set; it takes a slot again after."""
    (first, first_calls), (second, _) = member(), member()
    assert wait_for(lambda: settled([first, second]))
    half = first.owned()
    assert wait_for(lambda: first_calls.history() == [ALL, half] or first_calls.history() == [half])
    key = lock_key(slot_name(GROUP, first.slot or 0))
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        (high, low),
    ).fetchone()
    assert row is not None
    assert row[0] is True
    assert wait_for(lambda: frozenset() in first_calls.history())
    assert wait_for(lambda: first_calls.history()[-1] != frozenset() and settled([first, second]))
    assert_split([first, second])
