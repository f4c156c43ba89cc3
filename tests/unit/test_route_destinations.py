"""A route's ``to`` list item ``{endpoint, transform}``: the model, the outlet, lint, route tests, journal."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from esb.config.routes import Destination, Route
from esb.exceptions import MappingError
from esb.lint import Linter, schema_after
from esb.message import Message
from esb.project import Project
from esb.runtime.routetest import RouteTestFile
from esb.testing import BROKER
from tests.unit.routes_fixture import FakeTransform, FakeTransforms, make_project
from tests.unit.test_worker import run_until_settled

ENDPOINTS = ["a.in", "b.out", "c.out", "dlq.r"]
FAST_RETRY = {"redeliver": {"max": 2, "initial": "1ms", "max_delay": "5ms"}, "dead_letter": "dlq.r"}
TO = [{"endpoint": "b.out", "transform": "t/wrap"}, "c.out"]


def wrap(body: Any) -> Any:
    """The destination's own mapping: wraps the body, refuses one marked bad."""
    if body.get("bad"):
        raise MappingError("t/wrap", "order", "/bad", "a bad order")
    return {"order": body}


def project_with(tmp_path: Path, to: Any = None, **extra: Any) -> Project:
    """A route a.in -> to (default: b.out through t/wrap, c.out as it is), parsing JSON first."""
    spec = {
        "id": "r",
        "from": "a.in",
        "steps": [{"transform": "t/json"}],
        "to": TO if to is None else to,
        "on_error": FAST_RETRY,
        **extra,
    }
    return make_project(tmp_path, [spec], ENDPOINTS, {"t/json": orjson.loads, "t/wrap": wrap})


def test_the_model_takes_strings_and_endpoint_transform_items() -> None:
    """destinations() names every endpoint in order; destination_transforms() only the mapped ones."""
    route = Route.model_validate({"id": "r", "from": "a.in", "to": TO})
    assert route.destinations() == ["b.out", "c.out"]
    assert route.destination_transforms() == {"b.out": "t/wrap"}
    assert isinstance(route.to, list)
    assert isinstance(route.to[0], Destination)


def test_a_destination_item_with_an_unknown_key_or_no_transform_is_refused() -> None:
    """{endpoint, transfrom} and {endpoint} alone are model errors (strict keys, transform required)."""
    with pytest.raises(ValidationError, match="transfrom"):
        Route.model_validate({"id": "r", "from": "a.in", "to": [{"endpoint": "b.out", "transfrom": "t"}]})
    with pytest.raises(ValidationError, match="transform"):
        Route.model_validate({"id": "r", "from": "a.in", "to": [{"endpoint": "b.out"}]})


def test_each_destination_gets_its_own_body_and_the_journal_keeps_each(tmp_path: Path) -> None:
    """b.out gets the body through t/wrap, c.out as the steps left it; each delivered event keeps its body."""
    project = project_with(tmp_path)
    BROKER.feed("a.in", Message(body=b'{"id": "O1"}', id="m1"))
    journal = run_until_settled(project, 1)
    try:
        assert [m.body for m in BROKER.written("b.out")] == [{"order": {"id": "O1"}}]
        assert [m.body for m in BROKER.written("c.out")] == [{"id": "O1"}]
        assert journal.outcome("r", "m1") == "delivered"
        sent = {
            e.endpoint: orjson.loads(journal.event_body(e.id) or b"null")
            for e in journal.history("m1")
            if e.state == "delivered" and e.endpoint
        }
        assert sent == {"b.out": {"order": {"id": "O1"}}, "c.out": {"id": "O1"}}
    finally:
        journal.close()


def test_a_destination_mapping_that_fails_sends_nothing_and_dead_letters(tmp_path: Path) -> None:
    """A MappingError of one destination's transform dead-letters the message before any endpoint gets it."""
    project = project_with(tmp_path, to=["c.out", {"endpoint": "b.out", "transform": "t/wrap"}])
    BROKER.feed("a.in", Message(body=b'{"id": "O2", "bad": true}', id="m1"))
    journal = run_until_settled(project, 1)
    try:
        assert BROKER.written("b.out") == []
        assert BROKER.written("c.out") == []
        [dead] = BROKER.written("dlq.r")
        assert "a bad order" in dead.headers["esb-error"]
        assert journal.outcome("r", "m1") == "dead_lettered"
    finally:
        journal.close()


def test_the_batched_path_applies_each_destination_transform(tmp_path: Path) -> None:
    """With batch_size > 1 every message still reaches b.out mapped and c.out as it is; a refused one
    is dead-lettered alone."""
    project = project_with(tmp_path)
    project.settings.runtime.batch_size = 10
    bodies = [b'{"id": "O%d"}' % i if i != 2 else b'{"id": "O2", "bad": true}' for i in range(6)]
    BROKER.feed("a.in", *[Message(body=b, id=f"m{i}") for i, b in enumerate(bodies)])
    journal = run_until_settled(project, 6)
    try:
        good = [f"O{i}" for i in range(6) if i != 2]
        assert [m.body["order"]["id"] for m in BROKER.written("b.out")] == good
        assert [m.body["id"] for m in BROKER.written("c.out")] == good
        assert journal.outcome("r", "m2") == "dead_lettered"
    finally:
        journal.close()


def test_route_tests_check_each_destination_output(tmp_path: Path) -> None:
    """esb test's route test sees each endpoint's own body; a wrong expectation for one fails naming it."""
    project = project_with(tmp_path)
    folder = tmp_path / "tests" / "routes"
    folder.mkdir(parents=True)
    (folder / "r_test.yaml").write_text(
        textwrap.dedent(
            """
            cases:
              - name: right
                input_inline: {id: O1}
                end: delivered
                outputs:
                  b.out: [{expect_inline: {order: {id: O1}}}]
                  c.out: [{expect_inline: {id: O1}}]
              - name: wrong
                input_inline: {id: O1}
                end: delivered
                outputs:
                  b.out: [{expect_inline: {id: O1}}]
                  c.out: [{expect_inline: {id: O1}}]
            """
        ),
        encoding="utf-8",
    )
    right, wrong = RouteTestFile(folder / "r_test.yaml", project).run()
    assert right.ok, right.detail
    assert not wrong.ok
    assert "b.out[0]: output differs" in wrong.detail
    assert "c.out" not in wrong.detail


class SchemaTransform(FakeTransform):
    """A fake transform declaring the canonical schema it reads."""

    def __init__(self, input_schema: str | None) -> None:
        super().__init__(lambda b: b)
        self.header = type("Header", (), {"input_schema": input_schema})()


class FakeModel:
    """A stand-in ModelRegistry knowing two schemas."""

    def names(self) -> list[str]:
        """Return the schema names."""
        return ["product_order.v1", "customer.v1"]

    def check(self) -> list[str]:
        """No findings."""
        return []


def findings(tmp_path: Path, to: Any, steps: list[Any]) -> list[str]:
    """Lint a one-route project whose transform t/order reads product_order.v1."""
    project_with(tmp_path, to=to, steps=steps)
    transforms = FakeTransforms({"t/json": orjson.loads})
    transforms.transforms["t/order"] = SchemaTransform("product_order.v1")
    reloaded = Project.load(tmp_path, environ={}, strict=False)
    reloaded.__dict__.update(transforms=transforms, model=FakeModel())
    return [f for f in Linter(reloaded).run() if "routes.yaml" in f]


def test_lint_accepts_a_destination_transform_reading_the_validated_schema(tmp_path: Path) -> None:
    """validate product_order.v1 (then a filter) and a destination transform reading it: no finding."""
    steps = [{"transform": "t/json"}, {"validate": "product_order.v1"}, {"filter": "body.id"}]
    assert findings(tmp_path, [{"endpoint": "b.out", "transform": "t/order"}, "c.out"], steps) == []


def test_lint_finds_unknown_transform_repeated_endpoint_and_schema_mismatch(tmp_path: Path) -> None:
    """An unknown destination transform, an endpoint named twice, a transform reading another schema."""
    steps = [{"transform": "t/json"}, {"validate": "customer.v1"}]
    to = [
        {"endpoint": "b.out", "transform": "t/nope"},
        {"endpoint": "c.out", "transform": "t/order"},
        "b.out",
    ]
    found = "\n".join(findings(tmp_path, to, steps))
    assert "routes[0].to[0].transform: unknown transform 't/nope'" in found
    assert (
        "routes[0].to[1].transform: t/order reads product_order.v1, "
        "but the route's steps end with customer.v1" in found
    )
    assert "routes[0].to[2]: b.out is already to[0]: name each endpoint once" in found


def test_schema_after_follows_validate_and_forgets_it_after_a_transform() -> None:
    """The schema is the last validate's, kept by filter/choice of set_header, lost after a transform."""
    route = Route.model_validate(
        {
            "id": "r",
            "from": "a.in",
            "steps": [
                {"validate": "product_order.v1"},
                {"choice": [{"when": "body.x", "steps": [{"set_header": {"p": "h"}}]}, {"otherwise": []}]},
            ],
        }
    )
    assert schema_after(route.steps) == "product_order.v1"
    changed = Route.model_validate(
        {"id": "r", "from": "a.in", "steps": [{"validate": "product_order.v1"}, {"transform": "t/x"}]}
    )
    assert schema_after(changed.steps) is None
