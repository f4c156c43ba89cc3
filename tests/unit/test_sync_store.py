"""The sync store (esb/sync/store.py) on SQLite here, and on PostgreSQL in
tests/integration/test_sync_postgres.py (which re-uses these cases with its own ``sync_url``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from esb.journal import Journal
from esb.message import Message
from esb.sync.store import SyncStore, SyncWrite


@pytest.fixture
def sync_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def store(sync_url: str) -> Iterator[SyncStore]:
    """A connected sync store on a fresh database."""
    with SyncStore(sync_url) as opened:
        yield opened


def write(key: str = "C1", version: int | None = 10, hash_: str = "h1", **extra: object) -> SyncWrite:
    """Return a write of sync ``customer-billing``."""
    fields: dict[str, object] = {"deleted": False, "message_id": "m1", "body": {"name": "张三"}}
    fields.update(extra)
    return SyncWrite("customer-billing", key, hash_, version, **fields)  # type: ignore[arg-type]


def test_a_claimed_key_is_read_back_with_its_body_and_survives_a_restart(sync_url: str) -> None:
    """What one store claimed, a store opened later on the same database reads (body decompressed)."""
    with SyncStore(sync_url) as first:
        assert first.claim(write(), None)
    with SyncStore(sync_url) as second:
        state = second.get("customer-billing", "C1", bodies=True)
    assert state is not None
    assert (state.hash, state.version, state.deleted, state.message_id, state.revision) == (
        "h1",
        10,
        False,
        "m1",
        1,
    )
    assert state.body == {"name": "张三"}


def test_reads_without_bodies_leave_the_body_out(store: SyncStore) -> None:
    """get without bodies=True returns no packed body (the light columns only)."""
    store.claim(write(), None)
    state = store.get("customer-billing", "C1")
    assert state is not None
    assert state.packed is None
    assert state.body is None


def test_a_claim_on_a_moved_row_is_refused(store: SyncStore) -> None:
    """A second insert of a new key, and an update naming an old revision, both return False."""
    assert store.claim(write(), None)
    assert not store.claim(write(hash_="other"), None)
    assert store.claim(write(version=11, hash_="h2", message_id="m2"), 1)
    assert not store.claim(write(version=12, hash_="h3", message_id="m3"), 1)
    state = store.get("customer-billing", "C1")
    assert state is not None
    assert (state.hash, state.revision) == ("h2", 2)


def test_a_claim_never_writes_an_older_version(store: SyncStore) -> None:
    """Even at the right revision, a version older than the stored one is not written."""
    store.claim(write(version=10), None)
    assert not store.claim(write(version=9, hash_="old"), 1)
    state = store.get("customer-billing", "C1")
    assert state is not None
    assert state.hash == "h1"


def _claim_cases() -> list[tuple[SyncWrite, int | None]]:
    """Claims over keys C1-C3 stored at revision 1 (C3 unversioned): each kind of outcome."""
    return [
        (write("C1", 11, "h2", message_id="m2"), 1),  # at the revision read, newer: written
        (write("C2", 9, "old"), 1),  # an older version: refused
        (write("C3", None, "h3", deleted=True, message_id=None, body=None), 1),  # unversioned, deleted
        (write("C4", 5, "new"), None),  # a new key: inserted
        (write("C1", 12, "h4"), 1),  # the revision moved (by the first claim): refused
        (write("C2", None, "h5"), None),  # "new" but the key exists: refused
    ]


def _seeded(url: str) -> SyncStore:
    opened = SyncStore(url)
    opened.connect()
    for key, version in (("C1", 10), ("C2", 10), ("C3", None)):
        assert opened.claim(write(key, version), None)
    return opened


def _rows(opened: SyncStore) -> list[tuple[object, ...]]:
    states = opened.get_many("customer-billing", ["C1", "C2", "C3", "C4"], bodies=True)
    return sorted(
        (s.key, s.hash, s.version, s.deleted, s.message_id, s.revision, s.body) for s in states.values()
    )


def test_claim_many_claims_and_writes_exactly_what_claim_does_key_by_key(tmp_path: Path) -> None:
    """claim_many's prepared statements: the same keys claimed and the same rows as claim() one by one."""
    slow, fast = _seeded(f"sqlite:///{tmp_path / 'slow.db'}"), _seeded(f"sqlite:///{tmp_path / 'fast.db'}")
    try:
        one_by_one = {w.key for w, revision in _claim_cases() if slow.claim(w, revision)}
        assert fast.claim_many(_claim_cases()) == one_by_one == {"C1", "C3", "C4"}
        assert _rows(fast) == _rows(slow)
        assert fast.claim_many(_claim_cases()[:1]) == set()  # the same statements again: C1 moved
    finally:
        slow.close()
        fast.close()


def test_advance_moves_only_the_version(store: SyncStore) -> None:
    """advance raises the version (not below the stored one) and keeps hash and message id."""
    store.claim(write(version=10), None)
    assert store.advance("customer-billing", "C1", 12, 1)
    assert not store.advance("customer-billing", "C1", 11, 2)  # older than 12
    state = store.get("customer-billing", "C1")
    assert state is not None
    assert (state.version, state.hash, state.message_id) == (12, "h1", "m1")


def test_put_many_writes_many_keys_and_keeps_newer_rows(store: SyncStore) -> None:
    """A bulk write inserts new keys, updates older ones and leaves keys whose version is newer."""
    store.claim(write("K1", version=5), None)
    store.claim(write("K2", version=50), None)
    store.put_many([write(f"K{i}", version=10, hash_="bulk", message_id="resync") for i in range(1, 4)])
    got = store.get_many("customer-billing", ["K1", "K2", "K3", "missing"])
    assert {k: (s.hash, s.version) for k, s in got.items()} == {
        "K1": ("bulk", 10),
        "K2": ("h1", 50),
        "K3": ("bulk", 10),
    }
    assert got["K1"].revision == 2


def test_get_many_answers_more_keys_than_one_query_takes(store: SyncStore) -> None:
    """1,200 keys asked at once (three IN lists) all come back."""
    store.put_many([write(f"K{i:05d}") for i in range(1200)])
    assert len(store.get_many("customer-billing", [f"K{i:05d}" for i in range(1200)])) == 1200


def test_iterate_walks_a_sync_in_key_order_in_chunks_and_resumes_after_a_key(store: SyncStore) -> None:
    """Chunks come in key order, only this sync's rows, and a pass can start after the last key done."""
    store.put_many([write(f"K{i:03d}") for i in reversed(range(25))])
    store.put_many([SyncWrite("other", "K000", "h", None, False, None, None)])
    chunks = list(store.iterate("customer-billing", chunk=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    keys = [s.key for c in chunks for s in c]
    assert keys == sorted(keys)
    assert len(keys) == 25
    rest = [s.key for c in store.iterate("customer-billing", after="K019", chunk=10, bodies=True) for s in c]
    assert rest == [f"K{i:03d}" for i in range(20, 25)]
    assert store.count("customer-billing") == 25
    assert store.names() == ["customer-billing", "other"]


def test_count_tells_deleted_keys_apart(store: SyncStore) -> None:
    """count(deleted=True/False) counts keys the target no longer holds / still holds."""
    store.put_many([write("A"), write("B", deleted=True, body=None)])
    assert (
        store.count("customer-billing", deleted=True),
        store.count("customer-billing", deleted=False),
    ) == (1, 1)


def test_outcome_reads_the_journal_of_the_same_database(sync_url: str, store: SyncStore) -> None:
    """The store answers a message's final state on a route from the journal beside it."""
    with Journal(sync_url) as journal:
        message = Message(body=b"{}", id="m-dead")
        journal.received("r", message)
        journal.event("r", message, "dead_lettered")
    assert store.outcome("r", "m-dead") == "dead_lettered"
    assert store.outcome("r", "unknown") is None


def test_two_writers_racing_on_one_key_never_leave_an_older_version(store: SyncStore) -> None:
    """Threads claiming versions 1..40 of one key in random order: the newest version ends stored."""
    import random

    versions = list(range(1, 41))
    random.Random(7).shuffle(versions)

    def writer(mine: list[int]) -> None:
        for version in mine:
            for _ in range(50):  # read, then compare-and-set; a lost race reads again
                held = store.get("customer-billing", "C1")
                if held is not None and held.version is not None and held.version >= version:
                    break
                if store.claim(
                    write(version=version, hash_=f"h{version}"), None if held is None else held.revision
                ):
                    break

    threads = [threading.Thread(target=writer, args=(versions[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = store.get("customer-billing", "C1")
    assert state is not None
    assert (state.version, state.hash) == (40, "h40")


def test_forgetting_a_sync_removes_only_its_rows(store: SyncStore) -> None:
    """delete_sync drops every key of one sync, says how many, and leaves other syncs alone."""
    store.put_many(
        [write(f"K{i}") for i in range(3)] + [SyncWrite("other", "K0", "h", None, False, None, None)]
    )
    assert store.delete_sync("customer-billing") == 3
    assert store.count("customer-billing") == 0
    assert store.count("other") == 1
