"""The REST listener's guarantees across processes, on loopback: a second POST of an order to another
listener process on the same store is a 409, an order answered 201 is in the store even when its
listener process is killed (SIGKILL) right after the answer, and an order whose hub is killed before the
route accepted it is routed, once, by the next hub on the store. The store's prune job runs in one
process of those sharing the store, and orders POSTed while it prunes are answered and kept."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from adapters.rest.store import ResourceStore
from simulators.channel import tmf_order, to_json
from tests.integration.rest_listener_process import PASSWORD_ENV, READY, STORE_ENV

REPO = Path(__file__).resolve().parents[2]
AUTH = ("channel", "channel-secret")
JSON = {"Content-Type": "application/json"}
STORE = Path("rest") / "channel.rest_orders.db"


def start(
    data_dir: Path, mode: str = "ack", store: dict[str, Any] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """A listener process on ``data_dir``'s store (its route acks, or hangs; ``store``: the endpoint's
    store options); returns it and its resources' base URL."""
    env = {
        **os.environ,
        PASSWORD_ENV: AUTH[1],
        "PYTHONPATH": str(REPO),
        STORE_ENV: orjson.dumps(store or {}).decode(),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.rest_listener_process", str(data_dir), mode],
        cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # its log lines come first
        if line.startswith(READY + " "):
            return proc, line.split(" ", 1)[1].strip()
    proc.kill()
    proc.wait(10)
    raise AssertionError("the listener process did not start")


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """Two listener processes serving the same endpoint's store."""
    started = [start(tmp_path)]
    try:
        started.append(start(tmp_path))
        yield started
    finally:
        stop(started)


def stop(started: list[tuple[subprocess.Popen[str], str]]) -> None:
    """End the listener processes still running (closing stdin stops one cleanly)."""
    for proc, _ in started:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()
        proc.wait(15)
        proc.stdout.close()


def order(index: int) -> tuple[str, bytes]:
    """A clean TMF622 order: its id and its bytes."""
    doc = tmf_order(index, random.Random(index))
    return str(doc["id"]), to_json(doc)


def test_a_second_post_to_another_process_is_a_conflict(
    listeners: list[tuple[subprocess.Popen[str], str]],
) -> None:
    """The order id taken by one listener process is a 409 on the other, which GETs the order."""
    (_, first), (_, second) = listeners
    ident, body = order(1)
    assert (
        requests.post(f"{first}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10).status_code
        == 201
    )
    again = requests.post(f"{second}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
    assert again.status_code == 409
    assert again.json()["status"] == "409"
    assert requests.get(f"{second}/productOrder/{ident}", auth=AUTH, timeout=10).json()["id"] == ident


def test_an_order_answered_201_survives_sigkill(
    listeners: list[tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    """SIGKILL of the listener right after its 201: the order is in the store, the other process GETs
    it, and a second POST of it is still a 409."""
    (victim, first), (_, second) = listeners
    ident, body = order(2)
    answer = requests.post(f"{first}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert answer.status_code == 201
    store = ResourceStore(tmp_path / STORE).open()
    try:
        assert store.get("productOrder", ident) == answer.json()
    finally:
        store.close()
    assert requests.get(f"{second}/productOrder/{ident}", auth=AUTH, timeout=10).json() == answer.json()
    again = requests.post(f"{second}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
    assert again.status_code == 409


def routed_lines(proc: subprocess.Popen[str]) -> list[str]:
    """Collect the ``ROUTED <id> <count>`` lines the process prints, as they come (a reader thread)."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ROUTED "):
                lines.append(line.strip())

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_an_order_stored_before_a_sigkill_is_routed_by_the_next_hub(tmp_path: Path) -> None:
    """The hub's route took the order but had not accepted it when the hub was SIGKILLed: the caller
    had its 201, and the next hub on the store routes the order (delivery count 2), exactly once."""
    victim, url = start(tmp_path, "hang")
    ident, body = order(3)
    try:
        answer = requests.post(f"{url}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        assert victim.stdout is not None
        assert victim.stdin is not None
        victim.stdout.close()
        victim.stdin.close()
    assert answer.status_code == 201
    heir = start(tmp_path)
    try:
        routed = routed_lines(heir[0])
        deadline = time.monotonic() + 10
        while not routed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second hand-out would come within the route's polls
        assert routed == [f"ROUTED {ident} 2"]
        store = ResourceStore(tmp_path / STORE).open()
        try:
            assert store.inbox() == []  # settled with the route's next claim
        finally:
            store.close()
    finally:
        stop([heir])


#: A prune every half second of everything settled a second ago (the tests' retention).
PRUNING = {"events_keep": "1s", "resources_keep": "1s", "prune_every": "500ms"}


def prune_runs(data_dir: Path) -> list[dict[str, Any]]:
    """The prune runs recorded in the store, one row per process that ran it."""
    store = ResourceStore(data_dir / STORE).open()
    try:
        return store.runs("prune")
    finally:
        store.close()


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    """Poll ``check()`` until it returns something true (returned) or ``timeout`` (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not seen within {timeout}s")


def test_the_prune_runs_on_one_process_and_moves_when_it_ends(tmp_path: Path) -> None:
    """Of two listener processes on one store only the elected one prunes; once it ends, the other does."""
    started = [start(tmp_path, store=PRUNING)]
    try:
        started.append(start(tmp_path, store=PRUNING))
        for proc, _ in started:
            routed_lines(proc)
        both = sum(r["runs"] for r in prune_runs(tmp_path))  # both processes are scheduling from now on
        wait_for(lambda: sum(r["runs"] for r in prune_runs(tmp_path)) >= both + 4)
        (leader,) = prune_runs(tmp_path)  # four runs (two seconds) since, all by one process
        first = next(p for p, _ in started if leader["owner"].endswith(f":{p.pid}"))
        stop([s for s in started if s[0] is first])
        started = [s for s in started if s[0] is not first]
        (heir,) = wait_for(lambda: [r for r in prune_runs(tmp_path) if r["owner"] != leader["owner"]])
        assert heir["owner"].endswith(f":{started[0][0].pid}")
    finally:
        stop(started)


def fill(data_dir: Path, count: int) -> None:
    """``count`` orders that ended two days ago, each with an event delivered then: all prunable."""
    store = ResourceStore(data_dir / STORE).open()
    old = time.time() - 2 * 86400
    try:
        store._run("BEGIN IMMEDIATE")
        assert store._db is not None
        store._db.executemany(
            "INSERT INTO resources (kind, id, status, created, doc, settled) "
            "VALUES ('productOrder', ?, 'created', ?, ?, ?)",
            ((f"OLD-{i}", old, f'{{"id": "OLD-{i}", "state": "completed"}}', old) for i in range(count)),
        )
        store._db.executemany(
            "INSERT INTO events (event_id, listener_id, callback, body, resource_id, due, status) "
            "VALUES (?, 'L', 'http://127.0.0.1:9/', '{}', ?, ?, 'delivered')",
            ((f"E-OLD-{i}", f"OLD-{i}", old) for i in range(count)),
        )
        store._run("COMMIT")
    finally:
        store.close()


def test_posts_during_a_prune_are_answered_and_kept(tmp_path: Path) -> None:
    """Orders POSTed to both processes while one prunes 60,000 old orders and events are all answered
    201 and stored; the prune removes exactly the old rows (its run overlaps the POSTs)."""
    count = 60_000
    fill(tmp_path, count)
    options = {**PRUNING, "prune_every": "1s", "resources_keep": "1d", "events_keep": "1d"}
    started = [start(tmp_path, store=options)]
    answers: list[tuple[float, int, str]] = []
    try:
        started.append(start(tmp_path, store=options))
        for proc, _ in started:
            routed_lines(proc)
        index = 100
        first: list[dict[str, Any]] = []  # the first prune run, as first seen (a later run rewrites its row)
        while not first or len(answers) < 50:
            ident, body = order(index)
            url = started[index % 2][1]
            answer = requests.post(f"{url}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=30)
            answers.append((time.time(), answer.status_code, ident))
            index += 1
            first = first or prune_runs(tmp_path)
        (run,) = first
        assert run["detail"].startswith(f"{count} events, {count} resources")
        assert {status for _, status, _ in answers} == {201}
        during = [ident for at, _, ident in answers if run["started"] <= at <= run["last_run"]]
        assert during, "no POST was answered while the prune ran"
        store = ResourceStore(tmp_path / STORE).open()
        try:
            assert [store.get("productOrder", ident) is not None for _, _, ident in answers] == [True] * len(
                answers
            )
            assert store._run("SELECT count(*) FROM resources WHERE id LIKE 'OLD-%'") == [(0,)]
        finally:
            store.close()
    finally:
        stop(started)


def test_an_ended_order_is_answered_within_retention_and_404_after(tmp_path: Path) -> None:
    """GET answers an order that ended within resources_keep; once it ended longer ago the next prune
    removes it and GET answers 404 with TMF's error body."""
    proc, url = start(tmp_path, store={"resources_keep": "1h", "events_keep": "1h", "prune_every": "300ms"})
    try:
        routed = routed_lines(proc)
        idents = []
        for index in (7, 8):
            ident, body = order(index)
            answer = requests.post(f"{url}/productOrder", data=body, headers=JSON, auth=AUTH, timeout=10)
            assert answer.status_code == 201
            idents.append(ident)
        wait_for(lambda: len(routed) == 2)
        old, recent = idents
        store = ResourceStore(tmp_path / STORE).open()
        try:
            wait_for(lambda: store.inbox() == [])  # the route's acceptance is settled in the store
            for ident in idents:
                store.change("productOrder", ident, {"state": "completed"})
            store._run("UPDATE resources SET settled = ? WHERE id = ?", (time.time() - 7200, old))
            marked = time.time()
            wait_for(lambda: [r for r in store.runs("prune") if r["started"] > marked])
        finally:
            store.close()
        gone = requests.get(f"{url}/productOrder/{old}", auth=AUTH, timeout=10)
        assert (gone.status_code, gone.json()["status"]) == (404, "404")
        kept = requests.get(f"{url}/productOrder/{recent}", auth=AUTH, timeout=10)
        assert (kept.status_code, kept.json()["state"]) == (200, "completed")
    finally:
        stop([(proc, url)])
