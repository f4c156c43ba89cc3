"""Message data is readable by the hub's account only: every file the hub leaves is 0600 in 0700 folders."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_leaves_only_private_files_under_a_loose_umask(tmp_path: Path) -> None:
    """`esb demo` (every route: queues, SOAP, batch files) started with umask 022 leaves its journal,
    queues, batch state, staging, replies and outbox 0600 in 0700 folders: nothing another account reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESB_")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "esb.cli",
            "--project",
            str(ROOT),
            "demo",
            "--messages",
            "20",
            "--orders",
            "10",
            "--faults",
            "0",
            "--timeout",
            "120",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),  # the child only sets its umask
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (data_dir,) = [p.parent for p in tmp_path.glob("esb-demo-*/journal.db")]
    seen: dict[str, int] = {}
    for folder, dirs, names in os.walk(data_dir):
        for name in dirs + names:
            path = Path(folder, name)
            seen[str(path.relative_to(data_dir))] = stat.S_IMODE(os.lstat(path).st_mode)
    assert "journal.db" in seen
    assert "queues.db" in seen
    assert any(name.startswith("batch/") and name.endswith("state.db") for name in seen)
    loose = {
        name: oct(mode)
        for name, mode in seen.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert loose == {}
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
