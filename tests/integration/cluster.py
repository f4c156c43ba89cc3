"""Hub processes in production mode (`esb run --env production`) on the tests' RabbitMQ and PostgreSQL.

:class:`ProductionHub` is an `esb run` subprocess whose broker and journal URLs come from the
environment (``ESB_BROKER__URL``, ``ESB_JOURNAL__URL``) or from secret files, exactly as an operator
sets them; :func:`production_project` loads the same project in the test process (to publish and read).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from esb.project import Project
from tests.e2e.hub_process import ROOT, HubProcess, hub_environ


def production_environ(data_dir: Path, broker_url: str, journal_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production hub: URLs from the environment, quick polling, no fixed ports."""
    env = hub_environ(data_dir)
    env.pop("ESB_BROKER__TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT", None)
    env.update(
        {
            "ESB_ENV": "production",
            "ESB_BROKER__URL": broker_url,
            "ESB_JOURNAL__URL": journal_url,
            "ESB_MONITORING__ENABLED": "false",
            "ESB_RUNTIME__WATCH_PROJECT": "false",
            "ESB_BROKER__RECONNECT_TIMEOUT": "90s",
        }
    )
    env.update(extra)
    return env


def production_project(environ: dict[str, str], root: Path = ROOT) -> Project:
    """The project at ``root`` (the repository's by default) with the production settings of ``environ``."""
    return Project.load(root, "production", environ=environ)


class ProductionHub(HubProcess):
    """`esb run` with ``--env production`` and the given environment; SIGKILL and restart as needed."""

    def __init__(
        self, environ: dict[str, str], log: Path, routes: tuple[str, ...] = ("crm-order-to-iom",),
        root: Path = ROOT,
    ) -> None:  # fmt: skip
        super().__init__(Path(environ["ESB_DATA_DIR"]), log, routes)
        self.environ = environ
        self.root = root

    def start(self) -> None:
        """Start the hub process."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "esb.cli", "--project", str(self.root), "--env", "production", "run",
                 *[arg for route in self.routes for arg in ("--route", route)]],
                env=self.environ, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
