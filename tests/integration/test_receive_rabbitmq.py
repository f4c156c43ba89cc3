"""`esb receive` on a RabbitMQ queue endpoint (the production settings): peek keeps, receive takes."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner, Result

from esb.cli.main import cli
from esb.message import Message
from tests.integration.cluster import ROOT, production_environ, production_project
from tests.integration.rabbit_server import RabbitServer

ENDPOINT = "iom.orders_in"


def esb(environ: dict[str, str], *args: str) -> Result:
    """Run an esb command on the shipped project in its production environment."""
    return CliRunner().invoke(cli, ["--project", str(ROOT), "--env", "production", *args], env=environ)


def ids(result: Result) -> list[str]:
    """The message ids of a --json run, in the order printed."""
    return [str(orjson.loads(line)["id"]) for line in result.stdout.splitlines() if line.strip()]


def test_receive_peeks_then_takes_messages_from_rabbitmq(
    rabbit_server: RabbitServer,
    tmp_path: Path,
) -> None:
    """--peek shows RabbitMQ's waiting messages and leaves them; receive --count 2 takes the two oldest."""
    environ = production_environ(tmp_path / "var", rabbit_server.create_vhost("receive"), "sqlite://")
    environ["ESB_JOURNAL__URL"] = f"sqlite:///{tmp_path / 'journal.db'}"
    project = production_project(environ)
    sink = project.adapter_for(ENDPOINT).sink(project.endpoint(ENDPOINT), project.context(ENDPOINT))
    with sink:
        for i in range(3):
            sink.write(Message(body=f'{{"n": {i}}}'.encode(), id=f"r{i}"))

    looked = esb(environ, "receive", ENDPOINT, "--peek", "--count", "10", "--json")
    assert looked.exit_code == 0, looked.output
    assert ids(looked) == ["r0", "r1", "r2"]
    taken = esb(environ, "receive", ENDPOINT, "--count", "2", "--json", "--wait", "5")
    assert taken.exit_code == 0, taken.output
    assert ids(taken) == ["r0", "r1"]
    left = esb(environ, "receive", ENDPOINT, "--count", "10", "--json", "--wait", "2")
    assert ids(left) == ["r2"]
    empty = esb(environ, "receive", ENDPOINT, "--wait", "0.5")
    assert empty.exit_code == 1
