"""The decide step, routing to the decided endpoint, `esb decide` and table tests in `esb test`."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from esb.cli.main import cli
from esb.decision.registry import TableRegistry
from esb.exceptions import DecisionError
from esb.expressions import Expression
from esb.message import Message
from esb.processors.decide import Decider
from esb.runtime.routetest import RouteTestFile
from tests.unit.routes_fixture import make_project

PROJECT = Path(__file__).resolve().parents[2]
TABLE = {
    "hit_policy": "first",
    "inputs": [{"name": "region", "type": "string"}, {"name": "hours", "type": "integer"}],
    "outputs": [{"name": "team", "type": "string"}, {"name": "to", "type": "endpoint"}],
    "rules": [["jx, hu", "-", "north-fiber", "wo.north"], ["jh, tz", "<=48", "south-fiber", "wo.south"]],
}


def write_table(root: Path, name: str = "dispatch", spec: dict[str, Any] | None = None) -> None:
    """Write a decision table under ``root``/transforms/tables."""
    folder = root / "transforms" / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec or TABLE, sort_keys=False), encoding="utf-8")


def decider(tmp_path: Path, inputs: Any, *, required: bool = True) -> Decider:
    """A Decider over the test table."""
    write_table(tmp_path)
    return Decider(TableRegistry(tmp_path).get("dispatch"), inputs, "dispatch", required=required)


def test_the_decision_is_written_into_the_body(tmp_path: Path) -> None:
    """Each input is read by its expression and the decision lands at ``into``."""
    step = decider(
        tmp_path, {"region": Expression("body.fault.region"), "hours": Expression("headers.hours")}
    )
    message = Message(body={"fault": {"region": "tz"}}, headers={"hours": "24"}, id="m1")
    [out] = step(message)
    assert out.body == {"fault": {"region": "tz"}, "dispatch": {"team": "south-fiber", "to": "wo.south"}}


def test_one_expression_may_give_every_input(tmp_path: Path) -> None:
    """``input`` as one expression reads the object of inputs."""
    [out] = decider(tmp_path, Expression("body.fault"))(Message(body={"fault": {"region": "hu"}}, id="m1"))
    assert out.body["dispatch"] == {"team": "north-fiber", "to": "wo.north"}


def test_no_match_is_an_error_unless_not_required(tmp_path: Path) -> None:
    """No matching rule dead-letters the message (DecisionError naming the inputs), or writes null."""
    message = Message(body={"fault": {"region": "zs"}}, id="m1")
    with pytest.raises(DecisionError, match=r"no rule matches \{'region': 'zs'\}"):
        decider(tmp_path, Expression("body.fault"))(message)
    [out] = decider(tmp_path, Expression("body.fault"), required=False)(message)
    assert out.body["dispatch"] is None


def test_a_bad_input_is_a_message_error(tmp_path: Path) -> None:
    """An input of the wrong type is a DecisionError (permanent: dead-lettered, not retried)."""
    step = decider(tmp_path, {"region": Expression("body.r"), "hours": Expression("body.h")})
    with pytest.raises(DecisionError, match="input 'hours': expected an integer, got 'soon'") as caught:
        step(Message(body={"r": "tz", "h": "soon"}, id="m1"))
    assert not caught.value.retryable


def routed_project(tmp_path: Path) -> Any:
    """A route that decides the work-order endpoint and sends there through a recipient list."""
    write_table(tmp_path)
    route = {
        "id": "r",
        "from": "fault.in",
        "steps": [
            {"transform": "t/json"},
            {
                "decide": {
                    "table": "dispatch",
                    "input": {"region": "body.region", "hours": "body.hours"},
                    "into": "dispatch",
                }
            },
        ],
        "to": {"recipients": "body.dispatch.to", "allowed": ["wo.north", "wo.south"]},
        "on_error": {"dead_letter": "dlq.r"},
    }
    return make_project(
        tmp_path, [route], ["fault.in", "wo.north", "wo.south", "dlq.r"], {"t/json": orjson.loads}
    )


def test_a_route_sends_to_the_decided_endpoint(tmp_path: Path) -> None:
    """With the recipient list reading the decision, each fault reaches its team's endpoint only."""
    project = routed_project(tmp_path)
    folder = tmp_path / "tests" / "routes"
    folder.mkdir(parents=True)
    (folder / "r_test.yaml").write_text(
        textwrap.dedent("""
        cases:
          - name: south
            input_inline: {region: jh, hours: 12}
            end: delivered
            outputs:
              wo.south: [{checks: [{json_equals: {path: dispatch.team, value: south-fiber}}]}]
          - name: north
            input_inline: {region: hu, hours: 100}
            end: delivered
            outputs:
              wo.north: [{checks: [{json_equals: {path: dispatch.team, value: north-fiber}}]}]
          - name: nobody
            input_inline: {region: jh, hours: 100}
            end: dead_lettered
            error: {type: DecisionError, contains: no rule matches}
    """),
        encoding="utf-8",
    )
    results = RouteTestFile(folder / "r_test.yaml", project).run()
    assert [r.ok for r in results] == [True, True, True], [r.detail for r in results]


def run(project: Path, *args: str) -> Any:
    """Invoke the CLI on ``project``."""
    return CliRunner().invoke(cli, ["--project", str(project), *args])


def test_esb_decide_prints_the_decision_and_its_rule(tmp_path: Path) -> None:
    """`esb decide` prints the decision with the rule's file:line, exit 0."""
    write_table(tmp_path)
    (tmp_path / "in.json").write_text('{"region": "jx"}', encoding="utf-8")
    result = run(tmp_path, "decide", "dispatch", "--input", str(tmp_path / "in.json"))
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {
        "decision": {"team": "north-fiber", "to": "wo.north"},
        "rules": ["transforms/tables/dispatch.yaml:13 (rule 1)"],
    }


@pytest.mark.parametrize(
    ("table", "body", "code", "message"),
    [
        pytest.param("dispatch", '{"region": "jx", "hours": "x"}', 1, "expected an integer", id="bad-input"),
        pytest.param("dispach", '{"region": "jx"}', 2, "did you mean 'dispatch'", id="unknown-table"),
        pytest.param("dispatch", "[1, 2]", 2, "the input is an object", id="not-an-object"),
    ],
)
def test_esb_decide_exit_codes(tmp_path: Path, table: str, body: str, code: int, message: str) -> None:
    """`esb decide` exits 1 on an input it cannot decide, 2 on a broken table or input file."""
    write_table(tmp_path)
    (tmp_path / "in.json").write_text(body, encoding="utf-8")
    result = run(tmp_path, "decide", table, "--input", str(tmp_path / "in.json"))
    assert result.exit_code == code
    assert message in result.output


def test_esb_test_runs_table_tests(tmp_path: Path) -> None:
    """A *_test.yaml beside a table runs its cases; a wrong expectation fails with a diff, exit 1."""
    write_table(tmp_path)
    (tmp_path / "transforms" / "tables" / "dispatch_test.yaml").write_text(
        textwrap.dedent("""
        cases:
          - name: north
            input: {region: hu}
            expect: {team: north-fiber, to: wo.north}
            rule: 1
          - name: wrong
            input: {region: tz, hours: 1}
            expect: {team: north-fiber, to: wo.south}
    """),
        encoding="utf-8",
    )
    result = run(tmp_path, "test")
    assert result.exit_code == 1
    assert "PASS  transforms/tables/dispatch_test.yaml :: north" in result.output
    assert "FAIL  transforms/tables/dispatch_test.yaml :: wrong" in result.output
    assert '-  "team": "north-fiber"' in result.output


def test_a_broken_table_test_file_is_reported_with_its_line(tmp_path: Path) -> None:
    """A case with neither expect nor error is a broken file (exit 2), named with file:line."""
    write_table(tmp_path)
    (tmp_path / "transforms" / "tables" / "dispatch_test.yaml").write_text(
        "cases:\n  - name: x\n    input: {region: hu}\n", encoding="utf-8"
    )
    result = run(tmp_path, "test")
    assert result.exit_code == 2
    assert "transforms/tables/dispatch_test.yaml:2: a case needs exactly one of expect" in result.output


def test_the_project_dispatch_table_tests_pass() -> None:
    """The shipped 112 dispatch table passes its own tests through `esb test`."""
    result = run(PROJECT, "test", str(PROJECT / "transforms" / "tables"))
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output
