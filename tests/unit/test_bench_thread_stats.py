"""bench/thread_stats.py: a server process's CPU and switches per request, by thread role."""

from __future__ import annotations

import threading
import time

import pytest

from bench.thread_stats import per_role, role, snapshot, table


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("waitress-7", "waitress workers", id="waitress-worker"),
        pytest.param("soap-127.0.0.1:8080", "waitress I/O loop", id="soap-loop"),
        pytest.param("soap-bare", "waitress I/O loop", id="bare-loop"),
        pytest.param("CP Server Thread-12", "cheroot workers", id="cheroot-worker"),
        pytest.param("rest-127.0.0.1:9000", "cheroot I/O loop", id="rest-loop"),
        pytest.param("rest-bare", "cheroot I/O loop", id="rest-bare-loop"),
        pytest.param("rest-inbox-lease", "rest-inbox-lease", id="not-a-loop"),
        pytest.param("route reader", "route reader", id="own-name"),
    ],
)
def test_role_groups_thread_names(name: str, expected: str) -> None:
    """Threads of one pool share a role; a thread no pattern names keeps its own name."""
    assert role(name) == expected


def test_per_role_counts_a_sleeping_threads_switches_per_request() -> None:
    """A thread that sleeps 20 times shows at least 20 voluntary switches, divided by the requests."""
    go, done = threading.Event(), threading.Event()

    def sleeper() -> None:
        go.wait()
        for _ in range(20):
            time.sleep(0.001)
        done.set()
        time.sleep(0.2)  # still alive when the second snapshot is taken

    thread = threading.Thread(target=sleeper, name="waitress-1", daemon=True)
    thread.start()
    before = snapshot()
    go.set()
    assert done.wait(5)
    rows = per_role(before, snapshot(), answered=10)
    thread.join()
    threads, cpu, voluntary, _ = rows["waitress workers"]
    assert threads == 1
    assert cpu >= 0.0
    assert voluntary >= 2.0  # 20 sleeps over 10 requests
    assert "waitress workers" in table(rows)
