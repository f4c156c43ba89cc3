"""The ``esb`` command group. Each command lives in its own module and is imported only when used."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from esb.exceptions import EsbError
from esb.registry import ADAPTERS, resolve_adapter
from esb.startup import defer_collection
from esb.typing import CommandProvider, capability

#: command name -> "module:attribute" of its click command, imported lazily so `esb --help` stays fast.
COMMANDS: dict[str, str] = {
    "run": "esb.cli.run_cmd:run",
    "demo": "simulators.demo_cmd:demo",
    "lint": "esb.cli.lint_cmd:lint",
    "test": "esb.cli.test_cmd:test",
    "transform": "esb.cli.transform_cmd:transform",
    "decide": "esb.cli.decide_cmd:decide",
    "send": "esb.cli.send_cmd:send",
    "schema": "esb.cli.schema_cmd:schema",
    "model": "esb.cli.model_cmd:model",
    "health": "esb.cli.health_cmd:health",
    "replay": "esb.cli.replay_cmd:replay",
    "dlq": "esb.cli.dlq_cmd:dlq",
    "trace": "esb.cli.trace_cmd:trace",
    "stats": "esb.cli.stats_cmd:stats",
    "route": "esb.cli.route_cmd:route",
    "receive": "esb.cli.receive_cmd:receive",
    "new": "esb.cli.new_cmd:new",
    "process": "esb.cli.process_cmd:process",
    "full-file": "esb.cli.full_file_cmd:full_file",
    "sync": "esb.cli.sync_cmd:sync",
    "console": "esb.cli.console_cmd:console",
    "journal": "esb.cli.journal_cmd:journal",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use.

    Besides the engine's own (:data:`COMMANDS`), an adapter that offers the ``CommandProvider`` capability
    adds its group under its own name (``esb soap operations WSDL``); adapters are imported for that only
    when such a command is asked for (or the command list is shown).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every known command name: the engine's and the adapters' groups."""
        return sorted({*COMMANDS, *(name for name in ADAPTERS if _adapter_command(name) is not None)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the command ``cmd_name``."""
        path = COMMANDS.get(cmd_name)
        if path is None:
            return _adapter_command(cmd_name) if cmd_name in ADAPTERS else None
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: click.Command = getattr(module, attr)
        return command


def _adapter_command(name: str) -> click.Command | None:
    """The command group called ``name`` of the adapter registered under ``name``, if it offers one."""
    try:
        provider = capability(resolve_adapter(name), CommandProvider)
    except EsbError:
        return None
    if provider is None:
        return None
    return next((c for c in provider.commands() if getattr(c, "name", None) == name), None)


class Obj:
    """What the group passes to each command: the project directory and the environment name."""

    def __init__(self, project: Path, env: str | None) -> None:
        self.project = project
        self.env = env


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="ESB_PROJECT",
    help="The integration project (routes.yaml, config/, transforms/, canonical_model/). Default: here.",
)
@click.option("--env", default=None, envvar="ESB_ENV", help="Settings environment (settings.<env>.yaml).")
@click.version_option(package_name="esb")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, env: str | None) -> None:
    """esb: the integration hub between the CRM and the operator's BSS systems."""
    ctx.obj = Obj((project or Path.cwd()).resolve(), env)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``esb`` console script: EsbErrors become clean messages and exit codes."""
    defer_collection()  # until the project is loaded: see esb/startup.py
    try:
        return cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except EsbError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
