"""Step kinds are declarations: a kind registered from one place parses, lints, builds and is documented."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from pydantic import Field, ValidationError

from esb.cli.main import cli
from esb.config.language import Strict
from esb.config.reference import generate
from esb.config.routes import RoutesFile
from esb.config.steps import BUILTIN, StepKind, kinds, register, unregister
from esb.config.steps.choice import ChoiceStep, WhenBranch
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor
from esb.config.steps.log import LogSpec, LogStep
from esb.config.steps.split import SplitSpec, SplitStep
from esb.lint import lint_project
from esb.message import Message
from esb.runtime.pipeline import build_pipeline
from tests.unit.test_lint import findings_for, good_route


class StampStep(Strict):
    """Stamp the message with a header holding the route's id (a kind that exists only in this test)."""

    stamp: str = Field(description="the header that receives the route id")


def build_stamp(step: StampStep, ctx: BuildContext) -> Processor:
    """Return a processor setting the ``stamp`` header to the route id."""
    route_id = ctx.route_id

    def stamp(message: Message) -> list[Message]:
        return [message.replace(headers={**message.headers, step.stamp: route_id})]

    return stamp


def lint_stamp(step: StampStep, path: PathKey, ctx: LintContext) -> None:
    """Header names are lower case."""
    if step.stamp != step.stamp.lower():
        ctx.add((*path, "stamp"), f"header {step.stamp!r} is not lower case: write {step.stamp.lower()!r}")


@pytest.fixture
def stamp_kind() -> Iterator[StepKind[StampStep]]:
    """The throwaway ``stamp`` kind, registered for one test and removed after it."""
    kind = StepKind("stamp", StampStep, build_stamp, lint_stamp)
    register(kind)
    yield kind
    unregister("stamp")


ROUTES_YAML = """
routes:
  - id: stamped
    from: crm.orders_out
    to: iom.orders_in
    on_error: {dead_letter: dlq.r}
    steps:
      - stamp: x-route
      - choice:
          - when: body.vip
            steps:
              - stamp: x-vip
          - otherwise:
              - filter: body.keep
"""


def test_registered_kind_parses_from_yaml_at_top_level_and_in_a_branch(stamp_kind: StepKind[Any]) -> None:
    """routes.yaml may use a registered kind wherever a step stands, a choice branch included."""
    route = RoutesFile.model_validate(yaml.safe_load(ROUTES_YAML)).routes[0]
    assert route.steps[0] == StampStep(stamp="x-route")
    choice = route.steps[1]
    assert isinstance(choice, ChoiceStep)
    assert choice.choice[0] == WhenBranch(when="body.vip", steps=[StampStep(stamp="x-vip")])


def test_kind_is_unknown_again_once_unregistered(stamp_kind: StepKind[Any]) -> None:
    """Removing a kind makes its key an unknown step again, and the error lists the kinds left."""
    unregister("stamp")
    with pytest.raises(ValidationError, match="not a step") as raised:
        RoutesFile.model_validate(yaml.safe_load(ROUTES_YAML))
    assert "stamp" not in raised.value.errors()[0]["msg"]
    register(stamp_kind)
    assert "stamp" in kinds()


def test_registered_kind_is_linted_with_file_and_line(tmp_path: Path, stamp_kind: StepKind[Any]) -> None:
    """esb lint runs the kind's own checks, at top level and inside a branch, and locates the findings."""
    steps = [{"stamp": "X-Route"}, {"choice": [{"when": "body.vip", "steps": [{"stamp": "X-Vip"}]}]}]
    findings = findings_for(tmp_path, [good_route(steps=steps)])
    assert any(
        f.startswith("routes.yaml:")
        and "routes[0].steps[0].stamp: header 'X-Route' is not lower case: write 'x-route'" in f
        for f in findings
    )
    assert any("routes[0].steps[1].choice[0].steps[0].stamp: header 'X-Vip'" in f for f in findings)


def test_misspelt_kind_suggests_the_registered_one(tmp_path: Path, stamp_kind: StepKind[Any]) -> None:
    """An unknown step's did-you-mean draws on registered kinds too."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text("systems: {}\n")
    (tmp_path / "routes.yaml").write_text(
        "routes:\n  - id: r\n    from: a.b\n    steps:\n      - stammp: x\n"
    )
    findings = lint_project(tmp_path, None)
    assert any(
        f.startswith("routes.yaml:5: routes[0].steps[0]: unknown step 'stammp' (did you mean 'stamp'?)")
        and f.endswith(
            "a step is one of transform, validate, filter, choice, split, decompose, aggregate, enrich, "
            "decide, process_status, sync, sync_rejected, sync_target_id, set_header, log, stamp"
        )
        for f in findings
    )


def test_registered_kind_builds_into_the_pipeline(tmp_path: Path, stamp_kind: StepKind[Any]) -> None:
    """The pipeline builder builds the kind through its declaration, in branches too."""
    from tests.unit.routes_fixture import make_project

    routes = yaml.safe_load(ROUTES_YAML)["routes"]
    project = make_project(tmp_path, routes, ["crm.orders_out", "iom.orders_in", "dlq.r"])
    pipeline, aggregator, _ = build_pipeline(project, project.routes[0], lambda name: None)
    assert aggregator is None
    [out] = pipeline(Message(body={"vip": True}, id="m1"))
    assert out.headers["x-route"] == "stamped"
    assert out.headers["x-vip"] == "stamped"
    assert pipeline(Message(body={"vip": False, "keep": False}, id="m2")) == []


def test_registered_kind_is_in_the_routes_schema(stamp_kind: StepKind[Any]) -> None:
    """`esb schema routes` offers the kind, and the schema accepts a route using it."""
    result = CliRunner().invoke(cli, ["schema", "routes"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$defs"]["StampStep"]["properties"]["stamp"]["description"] == (
        "the header that receives the route id"
    )
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(ROUTES_YAML))


def test_registered_kind_is_in_the_reference(stamp_kind: StepKind[Any]) -> None:
    """docs/reference.md, as generated, has a section for the kind with its options."""
    text = generate()
    assert "### `stamp`" in text
    assert "| `stamp` | str | required | the header that receives the route id |" in text


def test_every_step_kind_documents_every_option() -> None:
    """Each built-in kind's model and the models nested in it describe every option."""
    from esb.config.walk import nested_models

    missing = [
        f"{model.__name__}.{name}"
        for kind in BUILTIN
        for model in nested_models(kind.model, into_steps=False)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("step", "where"),
    [
        pytest.param(
            {"set_header": {"k": {"expr": "body.["}}}, "steps[0].set_header.k.expr", id="set_header"
        ),
        pytest.param({"log": {"message": "m", "fields": {"f": "body.["}}}, "steps[0].log.fields.f", id="log"),
        pytest.param({"split": {"expr": "body.items", "keep": "item.["}}, "steps[0].split.keep", id="split"),
    ],
)
def test_kinds_lint_every_expression(tmp_path: Path, step: dict[str, Any], where: str) -> None:
    """An invalid JMESPath anywhere in a step is a lint finding, not a failure at start."""
    findings = findings_for(tmp_path, [good_route(steps=[step])])
    assert any(f"routes[0].{where}: invalid JMESPath expression" in f for f in findings)


def test_builder_refuses_an_object_that_is_no_step(tmp_path: Path) -> None:
    """Building something no kind declares is a ConfigError naming its type."""
    from esb.exceptions import ConfigError
    from esb.runtime.pipeline import StepBuilder

    with pytest.raises(ConfigError, match="unsupported step dict"):
        StepBuilder(None, "r", lambda name: None).step({"nope": 1})


def test_split_and_log_take_a_short_form() -> None:
    """`split: EXPR` and `log: TEXT` read as their long forms."""
    steps = [{"split": "body.items"}, {"log": "seen"}, {"split": {"expr": "body.x", "keep": "item"}}]
    routes = RoutesFile.model_validate({"routes": [{"id": "r", "from": "a.b", "steps": steps}]})
    parsed = routes.routes[0].steps
    assert parsed[0] == SplitStep(split=SplitSpec(expr="body.items"))
    assert parsed[1] == LogStep(log=LogSpec(message="seen"))
    assert parsed[2] == SplitStep(split=SplitSpec(expr="body.x", keep="item"))
