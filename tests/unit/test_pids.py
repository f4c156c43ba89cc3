"""esb.pids: whether a process id names a live process."""

from __future__ import annotations

import os
import subprocess
import sys

from esb.pids import pid_alive


def test_this_process_is_alive_and_a_reaped_child_is_not() -> None:
    """pid_alive is True for this process and False for a child that ended and was waited for."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert pid_alive(os.getpid())
    assert not pid_alive(child.pid)
