"""A copy of the repository's project in a temp folder, and `esb run` on it in a subprocess.

The copy lets tests edit routes.yaml (hot reload) without touching the repository. The hub serves
monitoring on a free loopback port (written to ``{data_dir}/monitoring.json``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner, Result

from esb.cli.main import cli
from esb.journal import Journal
from esb.project import Project
from tests.e2e.hub_process import ROOT, hub_environ

COPIED = ("routes.yaml", "config", "transforms", "canonical_model", "processes")


def copy_project(target: Path) -> Path:
    """Copy the project files of the repository into ``target``; return it."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def ops_environ(data_dir: Path) -> dict[str, str]:
    """The hub's environment: its data dir, fast polling (monitoring on any free port: hub_environ)."""
    return hub_environ(
        data_dir,
        ESB_RUNTIME__CONTROL_INTERVAL="0.2s",
        ESB_RUNTIME__WATCH_PROJECT="false",
    )


class OpsHub:
    """The hub on a project copy, with helpers to run CLI commands against it."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.data_dir = data_dir
        self.environ = ops_environ(data_dir)
        self.project = Project.load(root, environ=self.environ)
        self.proc: subprocess.Popen[bytes] | None = None
        self.journal = Journal(self.project.settings.journal.url)

    def start(self, log: Path, routes: tuple[str, ...]) -> None:
        """Start `esb run --route ...` and wait until it serves monitoring."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        selected = [arg for route in routes for arg in ("--route", route)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "esb.cli", "--project", str(self.root), "run", *selected],
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
            )
        self.journal.connect()
        deadline = time.monotonic() + 30
        while not (self.data_dir / "monitoring.json").exists():
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)

    def monitoring(self) -> dict[str, Any]:
        """The running hub's monitoring URL and token."""
        info: dict[str, Any] = orjson.loads((self.data_dir / "monitoring.json").read_bytes())
        return info

    def hup(self) -> None:
        """Ask the hub to reload its project."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def esb(self, *args: str, input: str | None = None) -> Result:
        """Run an esb command in this process against the hub's project and data."""
        env = {k: None for k in os.environ if k.startswith("ESB_")}
        env.update(self.environ)
        return CliRunner().invoke(
            cli, ["--project", str(self.root), *args], env=env, input=input, catch_exceptions=False
        )

    def stop(self) -> int | None:
        """SIGTERM the hub; return its exit code."""
        self.journal.close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)
