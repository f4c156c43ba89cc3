"""``esb run``: start every route of routes.yaml (optionally with the simulated peripheral systems)."""

from __future__ import annotations

import os

import click

from esb.cli.main import Obj
from esb.files import process_umask
from esb.logging import configure_logging
from esb.project import Project


@click.command()
@click.option("--route", "routes", multiple=True, help="Run only these route ids (repeatable).")
@click.option(
    "--simulate", is_flag=True, help="Also run the simulated peripheral systems (what `make run` does)."
)
@click.option("--interval", default=2.0, show_default=True, help="Seconds between simulated messages.")
@click.option(
    "--log-format", type=click.Choice(["json", "console"]), default=None, help="Override logging.format."
)
@click.pass_obj
def run(
    obj: Obj, routes: tuple[str, ...], simulate: bool, interval: float, log_format: str | None
) -> None:
    """Run the hub until SIGINT/SIGTERM: every enabled route, each with its own workers."""
    from esb.runtime.hub import Hub

    if simulate:
        from simulators.demo import DEMO_ENVIRONMENT

        for name, value in DEMO_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    project = Project.load(obj.project, obj.env)
    process_umask()  # what libraries create on their own is no wider than the data modes (files.mode)
    configure_logging(project.settings.logging.level, log_format or project.settings.logging.format)
    for route_id in routes:
        project.route(route_id)  # unknown ids fail here, with a suggestion
    hub = Hub(project, route_ids=list(routes) or None)
    if not simulate:
        hub.run_forever()
        return
    from simulators.devenv import ensure_credentials
    from simulators.live import LiveSimulation

    made = ensure_credentials(project)
    if made:
        click.echo(f"simulation: throwaway credentials for {', '.join(made)} (set them to choose your own)")
    with LiveSimulation(project, interval=interval, hub_started=hub.started):
        hub.run_forever()
