"""The process language: each construct parses, bad input names file:line, keys and schema are stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from pydantic import TypeAdapter, ValidationError

from esb.cli.main import cli
from esb.config.yamlpos import load_yaml
from esb.process.definition import Process, idempotency_key, process_schema, walk
from esb.process.loader import load_processes
from esb.process.steps import (
    AwaitStep,
    CallStep,
    CancelStep,
    ForeachStep,
    GotoStep,
    JoinCount,
    ParallelStep,
    ProcessStep,
    SendStep,
    SetStateStep,
    WaitStep,
)
from tests.unit.test_process_lint import GOOD

STEPS: TypeAdapter[list[Any]] = TypeAdapter(list[ProcessStep])
EXAMPLES = Path(__file__).resolve().parents[2] / "processes"


def parse(step: dict[str, Any]) -> Any:
    """Return one parsed step."""
    return STEPS.validate_python([step])[0]


def test_call_step_defaults() -> None:
    """A call has a 30 s timeout and an exponential retry policy unless told otherwise."""
    step = parse({"name": "reserve", "call": {"endpoint": "rim.reserve", "timeout": "10s"}})
    assert isinstance(step, CallStep)
    assert (step.call.timeout, step.call.retry.max, step.call.retry.backoff) == (10.0, 3, "exponential")


def test_send_step() -> None:
    """A send names its endpoint and request transform."""
    step = parse({"name": "tell", "send": {"endpoint": "iom.status", "request": "iom/status"}})
    assert isinstance(step, SendStep)
    assert step.send.request == "iom/status"


def test_await_step_short_on_timeout() -> None:
    """on_timeout may be written as its action alone; the deadline is a duration."""
    step = parse(
        {
            "name": "result",
            "await": {
                "from": "oss.results",
                "correlate": {"key": "order_id", "match": "body.orderId"},
                "deadline": "30m",
                "on_timeout": "alert",
            },
        }
    )
    assert isinstance(step, AwaitStep)
    assert (step.await_.deadline, step.await_.on_timeout.action) == (1800.0, "alert")


@pytest.mark.parametrize(
    ("on_timeout", "problem"),
    [
        pytest.param({"action": "retry"}, "needs max_retries", id="retry-without-count"),
        pytest.param({"action": "fail", "max_retries": 2}, "belong to on_timeout retry", id="count-on-fail"),
        pytest.param("ignore", "Input should be", id="unknown-action"),
    ],
)
def test_on_timeout_refuses_inconsistent_policies(on_timeout: Any, problem: str) -> None:
    """A retry needs a count, and only a retry has one."""
    raw = {
        "name": "r",
        "await": {"from": "a.b", "correlate": {"key": "k", "match": "x"}, "on_timeout": on_timeout},
    }
    with pytest.raises(ValidationError, match=problem):
        parse(raw)


def test_wait_step_needs_exactly_one_of_for_and_until() -> None:
    """A timer waits for a duration or until a time, never both or neither."""
    assert isinstance(parse({"name": "w", "wait": {"for": "5m"}}), WaitStep)
    assert parse({"name": "w", "wait": {"until": "data.reservation.expiresAt"}}).wait.until is not None
    for spec in ({}, {"for": "5m", "until": "data.t"}):
        with pytest.raises(ValidationError, match="exactly one of for"):
            parse({"name": "w", "wait": spec})


def test_parallel_step_joins() -> None:
    """A parallel step has two or more branches and joins all, any or a count."""
    branches = [{"name": n, "steps": [{"name": f"{n}1", "set_state": "inProgress"}]} for n in ("a", "b")]
    step = parse(
        {"name": "p", "parallel": {"branches": branches, "join": {"count": 1}, "on_partial": "compensate"}}
    )
    assert isinstance(step, ParallelStep)
    assert step.parallel.join == JoinCount(count=1)
    assert parse({"name": "p", "parallel": {"branches": branches, "join": "any"}}).parallel.join == "any"
    with pytest.raises(ValidationError, match="at least 2"):
        parse({"name": "p", "parallel": {"branches": branches[:1]}})


def test_foreach_step() -> None:
    """A foreach runs its steps per item, with a key and a sub-order machine."""
    step = parse(
        {
            "name": "components",
            "foreach": {
                "items": "data.components",
                "key": "item.id",
                "machine": "service_order",
                "on_partial": "complete",
                "steps": [{"name": "go", "set_state": "acknowledged"}],
            },
        }
    )
    assert isinstance(step, ForeachStep)
    assert (step.foreach.join, step.foreach.on_partial, step.foreach.machine) == (
        "all",
        "complete",
        "service_order",
    )


def test_short_forms_of_set_state_and_goto() -> None:
    """set_state: X and goto: X are short for {state: X} and {step: X}."""
    state = parse({"name": "s", "set_state": "inProgress"})
    jump = parse({"name": "g", "goto": "s"})
    assert isinstance(state, SetStateStep)
    assert state.set_state.state == "inProgress"
    assert isinstance(jump, GotoStep)
    assert (jump.goto.step, jump.goto.when) == ("s", None)


def test_cancel_step() -> None:
    """A cancel names the process, its key and where the answer goes."""
    step = parse(
        {
            "name": "c",
            "cancel": {"process": "order_to_activation", "key": "order_id", "value": "data.o", "into": "r"},
        }
    )
    assert isinstance(step, CancelStep)


def test_unknown_machine_is_refused() -> None:
    """A process's machine must be one of esb.model.states, with a suggestion."""
    raw = {
        "process": "p",
        "version": 1,
        "machine": "product_ordr",
        "trigger": {"from": "a.b"},
        "business_keys": {"k": "data.id"},
        "steps": [{"name": "s", "set_state": "inProgress"}],
    }
    with pytest.raises(ValidationError, match="did you mean 'product_order'"):
        Process.model_validate(raw)


def write(root: Path, name: str, text: str) -> None:
    """Write ``text`` as processes/<name>."""
    path = root / "processes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_unknown_key_is_a_finding_with_its_line(tmp_path: Path) -> None:
    """A misspelt key is reported at its line, with a suggestion, and the file is left out."""
    write(tmp_path, "p.yaml", GOOD.replace("    compensate: release", "    compensat: release"))
    catalog = load_processes(tmp_path)
    assert catalog.names() == []
    assert catalog.findings == [
        "processes/p.yaml:12: steps[1].compensat: unknown key 'compensat' (did you mean 'compensate'?): "
        "remove it or fix its spelling"
    ]


def test_unknown_step_kind_is_a_finding(tmp_path: Path) -> None:
    """A step with no kind key is reported with the list of kinds."""
    write(tmp_path, "p.yaml", GOOD.replace("    set_state: completed", "    set_sate: completed"))
    assert load_processes(tmp_path).findings == [
        "processes/p.yaml:13: steps[2]: not a process step: a step has one of the keys call, send, await, "
        "wait, parallel, foreach, set_state, goto, cancel"
    ]


def test_invalid_yaml_is_a_finding(tmp_path: Path) -> None:
    """A file that is not YAML is reported at the line of the error."""
    write(tmp_path, "p.yaml", "process: p\nsteps: [\n")
    (finding,) = load_processes(tmp_path).findings
    assert finding.startswith("processes/p.yaml:3: invalid YAML")


def test_step_paths_and_idempotency_keys() -> None:
    """Step paths name the branches; an idempotency key fills each foreach item and has no attempt."""
    raw = load_yaml(EXAMPLES / "order_to_activation.yaml").data
    process = Process.model_validate(raw)
    paths = [path for path, _ in walk(process.steps)]
    assert "components[*].reserve" in paths
    assert paths.index("components") < paths.index("components[*].reserve") < paths.index("finish")
    assert idempotency_key("o-1", "components[*].reserve", ["C1"]) == "o-1:components[C1].reserve"
    assert idempotency_key("o-1", "start") == "o-1:start"
    assert (
        idempotency_key("o-1", "components[*].reserve", ["C1"], undo=True)
        == "o-1:components[C1].reserve:compensate"
    )
    with pytest.raises(ValueError, match="1 foreach item"):
        idempotency_key("o-1", "components[*].reserve")


def test_parallel_branch_paths() -> None:
    """A step inside a parallel branch has the path <parallel>.<branch>.<step>."""
    branches = [{"name": n, "steps": [{"name": f"{n}1", "set_state": "inProgress"}]} for n in ("a", "b")]
    steps = STEPS.validate_python([{"name": "p", "parallel": {"branches": branches}}])
    assert [path for path, _ in walk(steps)] == ["p", "p.a.a1", "p.b.b1"]


def test_json_schema_accepts_the_examples_and_refuses_unknown_keys() -> None:
    """The JSON Schema validates the shipped examples and rejects a misspelt step key."""
    schema = process_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        validator.validate(load_yaml(path).data)
    bad = load_yaml(EXAMPLES / "order_to_activation.yaml").data
    bad["steps"][0]["set_stat"] = bad["steps"][0].pop("set_state")
    assert not validator.is_valid(bad)


def test_schema_command_prints_processes() -> None:
    """esb schema processes prints the process file's JSON Schema."""
    result = CliRunner().invoke(cli, ["schema", "processes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["title"] == "Process"
