"""The small CLI commands: send, schema, and the error handling of the group."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from esb.cli.main import cli, main
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project

ROOT = Path(__file__).resolve().parents[2]


def test_send_puts_the_file_bytes_and_headers_on_the_endpoint(tmp_path: Path) -> None:
    """`esb send` writes the file's bytes with the given headers and id to the endpoint."""
    make_project(tmp_path, [], ["crm.orders_out"])
    body = tmp_path / "order.xml"
    body.write_bytes("<SiebelMessage>张三</SiebelMessage>".encode())
    result = CliRunner().invoke(
        cli,
        [
            "--project",
            str(tmp_path),
            "send",
            "crm.orders_out",
            "--body",
            str(body),
            "--header",
            "priority=high",
            "--id",
            "m-1",
        ],
    )
    assert result.exit_code == 0, result.output
    [sent] = BROKER.written("crm.orders_out")
    assert (sent.id, sent.body, sent.headers) == ("m-1", body.read_bytes(), {"priority": "high"})


def test_send_to_unknown_endpoint_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt endpoint is refused with a did-you-mean and exit code 2."""
    make_project(tmp_path, [], ["crm.orders_out"])
    body = tmp_path / "b"
    body.write_bytes(b"x")
    result = CliRunner().invoke(
        cli, ["--project", str(tmp_path), "send", "crm.order_out", "--body", str(body)]
    )
    assert getattr(result.exception, "exit_code", None) == 2
    assert "did you mean 'crm.orders_out'" in str(result.exception)


def test_send_refuses_a_header_without_equals(tmp_path: Path) -> None:
    """--header must be K=V."""
    make_project(tmp_path, [], ["crm.orders_out"])
    body = tmp_path / "b"
    body.write_bytes(b"x")
    result = CliRunner().invoke(
        cli, ["--project", str(tmp_path), "send", "crm.orders_out", "--body", str(body), "--header", "oops"]
    )
    assert result.exit_code == 2
    assert "is not K=V" in result.output


def test_schema_routes_validates_the_projects_routes_file() -> None:
    """`esb schema routes` prints a JSON Schema that accepts this project's routes.yaml."""
    result = CliRunner().invoke(cli, ["schema", "routes"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    routes = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(routes)
    bad = {"routes": [{"id": "r", "from": "a.b", "too": "c.d"}]}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


def test_main_turns_config_errors_into_exit_code_2(tmp_path: Path, capsys: object) -> None:
    """A project problem ends the command with exit code 2 and a one-line error, no traceback."""
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(tmp_path), "run"])
    assert exited.value.code == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.startswith("error: ")
    assert "no routes.yaml" in err
    assert "Traceback" not in err



def test_python_m_esb_cli_exits_with_the_commands_exit_code(tmp_path: Path) -> None:
    """`python -m esb.cli` ends with the command's exit code, like `esb` (trace of an unknown key: 1)."""
    import subprocess
    import sys

    make_project(tmp_path, [], ["crm.orders_out"])
    done = subprocess.run(
        [sys.executable, "-m", "esb.cli", "--project", str(tmp_path), "trace", "NO-SUCH-KEY"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
