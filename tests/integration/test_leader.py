"""One leader across processes (PostgreSQL advisory lock, file lock); another takes over when it dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WORKER = str(Path(__file__).with_name("leader_process.py"))


class Campaigner:
    """A leader_process.py subprocess and the lines it printed (read by a thread)."""

    def __init__(self, journal_url: str, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, "batch:test", journal_url, str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def leads(self) -> bool:
        """True once the process said it was elected."""
        return "leader" in self.lines

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _failover(journal_url: str, data_dir: Path) -> None:
    alive = [Campaigner(journal_url, data_dir) for _ in range(3)]
    everyone = list(alive)
    try:
        for _ in range(2):  # kill the leader twice: each time exactly one of the others takes over
            _wait(lambda: all("ready" in c.lines for c in alive) and any(c.leads() for c in alive), 20)
            time.sleep(1.0)  # time for a second (wrong) leader to appear
            leaders = [c for c in alive if c.leads()]
            assert len(leaders) == 1
            leaders[0].kill()
            alive.remove(leaders[0])
        _wait(lambda: alive[0].leads(), 10)
        assert alive[0].leads()
    finally:
        for campaigner in everyone:
            if campaigner.proc.poll() is None:
                campaigner.kill()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", id="postgres-advisory-lock"), pytest.param("file", id="file-lock")]
)
def test_one_leader_and_failover(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Of three processes one leads; SIGKILL it and exactly one other takes over, twice."""
    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").create_database("leader")
    else:
        url = f"sqlite:///{tmp_path}/journal.db"
    _failover(url, tmp_path)
