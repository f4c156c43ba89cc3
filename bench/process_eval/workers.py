"""Worker processes for the kill / restart experiments: start, wait until ready, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from common import HERE, PYTHON


class Worker:
    """One driver process (``dbos_driver.py`` or ``spiff_driver.py``) with its log in ``folder``."""

    def __init__(
        self, script: str, url: str, folder: Path, name: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.log = folder / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, str(HERE / script), url, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=HERE,
                env={**os.environ, **(env or {})},
            )

    def ready(self, timeout: float = 60.0) -> bool:
        """Wait until the worker printed its ready line (launched, recovery started, instances started)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and json.loads(line).get("ready") == self.proc.pid:
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL the worker and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def tail(self, n: int = 15) -> str:
        """Return the last lines of the worker's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
