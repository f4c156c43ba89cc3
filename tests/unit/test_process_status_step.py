"""The route step process_status on SQLite: the status answer written into the message, not found as an
answer, a query naming no key as a BadRequest fault, and its lint (unknown process, not a business key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from esb.config.steps.process_status import (
    BAD_REQUEST,
    FAULT_CODE,
    FAULT_STRING,
    ProcessStatusSpec,
    ProcessStatusStep,
    StatusQuery,
    lint,
)
from esb.exceptions import MappingError
from esb.expressions import validate_expression
from esb.message import Message
from esb.process.engine import ProcessStore
from tests.unit.test_process_engine import Clock
from tests.unit.test_process_status_query import MSISDN, ORDER, waiting_bundle

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "process": "order_to_activation",
    "keys": {"order_id": "body.orderId", "msisdn": "body.msisdn"},
    "product": "productOrderItem.productOffering.name",
    "into": "status",
}


@pytest.fixture
def query(tmp_path: Path) -> Any:
    """A StatusQuery over a SQLite file holding one bundle waiting for OSS."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with ProcessStore(url) as store:
        waiting_bundle(store, Clock())
    step = StatusQuery(ProcessStatusSpec.model_validate(SPEC), url, "route r: process_status")
    yield step
    step.close()


def test_an_order_number_puts_the_order_with_its_components_into_the_body(query: StatusQuery) -> None:
    """By order number: {found, key, value, orders} at into; components carry product, not their item."""
    (out,) = query(Message(body={"orderId": ORDER, "channel": "ivr"}))
    answer = out.body["status"]
    assert (answer["found"], answer["key"], answer["value"]) == (True, "order_id", ORDER)
    (order,) = answer["orders"]
    assert (order["keys"]["order_id"], order["state"], order["step"]) == (ORDER, "inProgress", "components")
    assert [c["product"] for c in order["components"]] == ["好E家 手机成员", "300M光宽带", "天翼高清"]
    assert all("item" not in c for c in order["components"])
    assert out.body["channel"] == "ivr"
    assert FAULT_CODE not in out.headers


def test_the_first_key_with_a_value_is_the_one_looked_up(query: StatusQuery) -> None:
    """An empty order number is skipped: the MSISDN (trimmed) finds the bundle."""
    (out,) = query(Message(body={"orderId": " ", "msisdn": f" {MSISDN} "}))
    answer = out.body["status"]
    assert (answer["found"], answer["key"], answer["value"]) == (True, "msisdn", MSISDN)
    assert answer["orders"][0]["keys"]["order_id"] == ORDER


def test_an_unknown_order_is_an_answer_not_a_fault(query: StatusQuery) -> None:
    """No such order: found false, no orders, no fault headers."""
    (out,) = query(Message(body={"orderId": "PO-NONE"}))
    assert out.body["status"] == {"found": False, "key": "order_id", "value": "PO-NONE", "orders": []}
    assert FAULT_CODE not in out.headers


def test_a_query_naming_no_key_gets_a_bad_request_fault_saying_what_was_expected(query: StatusQuery) -> None:
    """Neither key: the body goes on unchanged with soap-fault-code BadRequest and a text naming both keys."""
    (out,) = query(Message(body={"channel": "ivr"}, headers={"x": "1"}))
    assert out.body == {"channel": "ivr"}
    assert out.headers[FAULT_CODE] == BAD_REQUEST
    assert "order_id (body.orderId) or msisdn (body.msisdn)" in out.headers[FAULT_STRING]
    assert out.headers["x"] == "1"


def test_a_body_that_is_not_an_object_is_a_mapping_error(query: StatusQuery) -> None:
    """Bytes (no transform before the step) are refused, naming what was expected."""
    with pytest.raises(MappingError, match="JSON object"):
        query(Message(body=b"<QueryOrderStatus/>"))


@dataclass
class LintFake:
    """The lint context: the project (its root) and the findings added."""

    project: Any
    found: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)

    def add(self, path: tuple[Any, ...], problem: str) -> None:
        """Record a finding."""
        self.found.append((path, problem))

    def check_expression(self, text: str, path: tuple[Any, ...]) -> None:
        """Record an expression that does not parse."""
        problem = validate_expression(text)
        if problem:
            self.found.append((path, problem))


@dataclass
class FakeProject:
    """A project root."""

    root: Path


def findings(**spec: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Lint a process_status step with SPEC changed by ``spec`` against this repository's processes/."""
    ctx = LintFake(FakeProject(ROOT))
    lint(ProcessStatusStep.model_validate({"process_status": {**SPEC, **spec}}), ("steps", 1), ctx)
    return ctx.found


def test_lint_accepts_the_business_keys_of_a_process_of_the_project() -> None:
    """order_to_activation with order_id and msisdn: no finding."""
    assert findings() == []


def test_lint_names_an_unknown_process_with_a_suggestion() -> None:
    """A process not in processes/ is a finding on process, with did-you-mean."""
    ((path, problem),) = findings(process="order_to_activaton")
    assert path == ("steps", 1, "process_status", "process")
    assert "unknown process 'order_to_activaton'" in problem
    assert "order_to_activation" in problem


def test_lint_names_a_key_that_is_not_a_business_key_of_the_process() -> None:
    """A key the process does not declare is a finding listing the ones it has; a bad expression too."""
    found = findings(keys={"msisd": "body.msisdn"}, product="a[")
    problems = {path[-1]: problem for path, problem in found}
    assert "'msisd' is not a business key of process 'order_to_activation'" in problems["msisd"]
    assert "expected one of order_id, msisdn" in problems["msisd"]
    assert "product" in problems
