"""Two hub processes syncing the same keys at once: an older version never replaces a newer one.

Each process runs the ``sync`` step's processor over every version of every key, in its own shuffled
order (as two hubs handed the same changes, out of order, without partitions). On SQLite here; on
PostgreSQL in tests/integration/test_sync_postgres.py.
"""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest

from esb.expressions import Expression
from esb.message import Message
from esb.processors.sync import Syncer, SyncRule
from esb.sync.store import SyncStore

KEYS = 4
VERSIONS = 30


@pytest.fixture
def sync_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


def hub(url: str, seed: int, results: Any) -> None:
    """One 'hub process': every (key, version) change through a syncer, in a shuffled order; report sends."""
    rule = SyncRule("race", Expression("body.id"), ("name",), Expression("body.v"))
    syncer = Syncer(rule, url, "race-route")
    changes = [(k, v) for k in range(KEYS) for v in range(1, VERSIONS + 1)]
    random.Random(seed).shuffle(changes)
    sent: list[tuple[int, int]] = []
    for key, version in changes:
        body = {"id": f"K{key}", "name": f"name-{version}", "v": version}
        if syncer(Message(body=body, id=f"p{seed}-K{key}-v{version}")):
            sent.append((key, version))
    syncer.close()
    results.put((seed, sent))


def race(url: str) -> dict[int, list[tuple[int, int]]]:
    """Run two hub processes over the same changes at once; return what each sent."""
    with SyncStore(url):  # migrate once before the race
        pass
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=hub, args=(url, seed, results)) for seed in (1, 2)]
    for process in processes:
        process.start()
    sent = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return sent


def test_two_processes_never_make_an_older_version_win(sync_url: str) -> None:
    """Each key ends at its newest version and content; each process's sends per key only go up."""
    sent = race(sync_url)
    with SyncStore(sync_url) as store:
        final = store.get_many("race", [f"K{k}" for k in range(KEYS)], bodies=True)
    assert {k: (s.version, s.body) for k, s in final.items()} == {
        f"K{k}": (VERSIONS, {"name": f"name-{VERSIONS}"}) for k in range(KEYS)
    }
    for sends in sent.values():
        for key in range(KEYS):
            versions = [v for k, v in sends if k == key]
            assert versions == sorted(set(versions)), (
                f"a process sent an older version of K{key} after a newer"
            )
    # between them, the two sent each key's newest version exactly once
    for key in range(KEYS):
        assert sum((key, VERSIONS) in sends for sends in sent.values()) == 1
