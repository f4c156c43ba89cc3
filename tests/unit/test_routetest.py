"""`esb test`: output-schema checks on mapping cases, several paths, and whole-route tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from esb.cli.main import cli
from esb.exceptions import ConfigError
from esb.model.registry import ModelRegistry
from esb.project import Project
from esb.runtime.routetest import RouteTestFile, is_route_test
from esb.transforms import testrun
from esb.transforms.registry import TransformRegistry
from esb.transforms.testrun import CaseResult
from tests.unit.routes_fixture import make_project

PROJECT = Path(__file__).resolve().parents[2]
ORDER_MAP = """kind: jmespath
output_schema: product_order.v1
rules:
  '@type': {value: ProductOrder}
  id: no
  productOrderItem[0].id: {value: "1"}
  productOrderItem[0].action: action
  productOrderItem[0].productOffering.id: {value: PO-1}
  productOrderItem[0].productOffering.@referredType: {value: ProductOffering}
"""
FAST_RETRY = {"redeliver": {"max": 2, "initial": "1ms", "max_delay": "5ms"}, "dead_letter": "dlq.r"}


# ---------------------------------------------------------------- mapping tests: the output schema
def mapping_test(tmp_path: Path, cases: str) -> testrun.TestFile:
    """A mapping declaring output_schema product_order.v1 and its test file, checked with the real model."""
    folder = tmp_path / "transforms" / "s"
    folder.mkdir(parents=True)
    (folder / "m.yaml").write_text(ORDER_MAP, encoding="utf-8")
    (folder / "m_test.yaml").write_text(cases, encoding="utf-8")
    return testrun.TestFile(
        folder / "m_test.yaml", TransformRegistry(tmp_path), ModelRegistry(PROJECT / "canonical_model")
    )


def test_an_output_breaking_the_output_schema_fails_with_its_json_path(tmp_path: Path) -> None:
    """A case whose output breaks the schema fails naming the schema, the JSON path and the message."""
    suite = mapping_test(
        tmp_path,
        "cases:\n  - name: conforms\n    input_inline: {no: SO1, action: add}\n"
        "  - name: breaks\n    input_inline: {no: SO1, action: upgrade}\n"
        "    checks: [{json_equals: {path: id, value: SO1}}]\n",
    )
    conforms, breaks = suite.run()
    assert conforms.ok, conforms.detail
    assert not breaks.ok
    assert "output breaks its output schema product_order.v1 (1 error(s))" in breaks.detail
    assert "$.productOrderItem[0].action: " in breaks.detail
    assert "upgrade" in breaks.detail


def test_skip_schema_with_a_reason_opts_a_case_out(tmp_path: Path) -> None:
    """skip_schema: <why> lets a deliberately partial output pass its other checks."""
    suite = mapping_test(
        tmp_path,
        "cases:\n  - name: partial\n    input_inline: {no: SO1, action: upgrade}\n"
        "    skip_schema: only the id rule matters here\n"
        "    checks: [{json_equals: {path: id, value: SO1}}]\n",
    )
    assert [r.ok for r in suite.run()] == [True]


def test_skip_schema_without_a_reason_is_refused(tmp_path: Path) -> None:
    """skip_schema: true is a broken test file (the reason must be written), with file:line."""
    with pytest.raises(ConfigError, match=r"m_test.yaml:4: skip_schema says why"):
        mapping_test(
            tmp_path, "cases:\n  - name: partial\n    input_inline: {no: SO1}\n    skip_schema: true\n"
        )


# ---------------------------------------------------------------- several paths, the shipped route tests
def test_esb_test_takes_several_paths() -> None:
    """`esb test A B` runs the files under each path and nothing else."""
    result = CliRunner().invoke(
        cli,
        [
            "--project",
            str(PROJECT),
            "test",
            str(PROJECT / "transforms/crm"),
            str(PROJECT / "tests/routes/hotline-balance-query_test.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PASS  transforms/crm/siebel_order_to_canonical_test.yaml" in result.output
    assert "PASS  tests/routes/hotline-balance-query_test.yaml" in result.output
    assert "transforms/iom" not in result.output
    assert "crm-order-to-iom_test" not in result.output


def test_the_shipped_route_tests_pass_by_default() -> None:
    """`esb test` with no path runs transforms/ and tests/routes/; every shipped route test passes."""
    result = CliRunner().invoke(cli, ["--project", str(PROJECT), "test"])
    assert result.exit_code == 0, result.output
    for route in ("crm-order-to-iom", "hotline-balance-query", "channel-order-to-iom"):
        assert f"PASS  tests/routes/{route}_test.yaml" in result.output
    assert "FAIL" not in result.output


# ---------------------------------------------------------------- whole-route tests on a small project
def small_project(tmp_path: Path, **route: Any) -> Project:
    """A route a.in -> b.out: parse, filter on keep, choice on kind, enrich from e.svc, with fast retries."""
    steps = [
        {"transform": "t/json"},
        {"filter": "body.keep"},
        {
            "choice": [
                {"when": "body.kind == 'x'", "steps": [{"set_header": {"branch": "x"}}]},
                {"otherwise": [{"set_header": {"branch": "other"}}]},
            ]
        },
        {"enrich": {"endpoint": "e.svc", "into": "extra"}},
    ]
    spec = {"id": "r", "from": "a.in", "to": "b.out", "steps": steps, "on_error": FAST_RETRY, **route}
    return make_project(
        tmp_path,
        [spec],
        ["a.in", "b.out", "e.svc", "dlq.r"],
        {"t/json": orjson.loads, "t/parts": lambda b: b},
    )


def run_cases(tmp_path: Path, cases: str, **route: Any) -> list[CaseResult]:
    """Write tests/routes/r_test.yaml with ``cases`` and run it against the small project."""
    project = small_project(tmp_path, **route)
    folder = tmp_path / "tests" / "routes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "r_test.yaml").write_text(textwrap.dedent(cases), encoding="utf-8")
    return RouteTestFile(folder / "r_test.yaml", project).run()


REPLY = "mocks: {e.svc: {reply_inline: {v: 1}}}"


def test_delivered_case_checks_the_sink_output_and_the_choice_branch(tmp_path: Path) -> None:
    """A delivered case passes when the sink got the enriched body with the header the branch set."""
    [result] = run_cases(
        tmp_path,
        f"""
        cases:
          - input_inline: {{keep: true, kind: x}}
            {REPLY}
            end: delivered
            outputs:
              b.out:
                - expect_inline: {{keep: true, kind: x, extra: {{v: 1}}}}
                  checks: [{{header_equals: {{name: branch, value: x}}}}]
              e.svc:
                - checks: [{{json_equals: {{path: kind, value: x}}}}]
    """,
    )
    assert result.ok, result.detail


def test_a_wrong_output_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    """An expected body that differs from what the sink got fails with a unified diff of the two."""
    [result] = run_cases(
        tmp_path,
        f"""
        cases:
          - input_inline: {{keep: true, kind: y}}
            {REPLY}
            end: delivered
            outputs:
              b.out:
                - expect_inline: {{keep: true, kind: x, extra: {{v: 1}}}}
                  checks: [{{header_equals: {{name: branch, value: x}}}}]
    """,
    )
    assert not result.ok
    assert "b.out[0]: output differs:" in result.detail
    assert '-  "kind": "x"' in result.detail
    assert '+  "kind": "y"' in result.detail
    assert '-"x"\n+"other"' in result.detail


def test_filtered_case_passes_and_a_wrong_end_fails(tmp_path: Path) -> None:
    """A filtered message passes `end: filtered`; expecting `delivered` fails naming both ends."""
    results = run_cases(
        tmp_path,
        """
        cases:
          - name: dropped
            input_inline: {keep: false}
            end: filtered
          - name: wrongly expected delivered
            input_inline: {keep: false}
            end: delivered
            outputs: {b.out: [{checks: []}]}
    """,
    )
    assert [r.ok for r in results] == [True, False]
    assert "end: expected delivered, got filtered" in results[1].detail
    assert "b.out: expected 1 message(s), got 0" in results[1].detail


def test_dead_lettered_case_checks_the_error_and_the_dead_letter(tmp_path: Path) -> None:
    """A body that is not JSON is dead-lettered as it came; the error type/contains check is applied."""
    results = run_cases(
        tmp_path,
        """
        cases:
          - name: right error
            input_inline: "not json"
            end: dead_lettered
            error: {type: JSONDecodeError}
            outputs:
              dlq.r: [{checks: [{header_equals: {name: esb-route, value: r}}]}]
          - name: wrong error
            input_inline: "not json"
            end: dead_lettered
            error: {type: MappingError}
    """,
    )
    assert results[0].ok, results[0].detail
    assert not results[1].ok
    assert "expected error {'type': 'MappingError'}, got JSONDecodeError" in results[1].detail


def test_a_failing_enrich_endpoint_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    """A mocked transport error once is retried and delivered; for good it dead-letters; a fault at once."""
    results = run_cases(
        tmp_path,
        """
        cases:
          - name: once
            input_inline: {keep: true}
            mocks: {e.svc: {reply_inline: {v: 2}, error: {message: down}, times: 1}}
            end: delivered
            outputs: {b.out: [{checks: [{json_equals: {path: extra.v, value: 2}}]}]}
          - name: for good
            input_inline: {keep: true}
            mocks: {e.svc: {error: {type: TransportError, message: down}}}
            end: dead_lettered
            error: {type: TransportError, contains: down}
          - name: refused
            input_inline: {keep: true}
            mocks: {e.svc: {error: {type: RemoteError, code: E1, message: no such account}}}
            end: dead_lettered
            error: {type: RemoteError, contains: no such account}
    """,
    )
    assert [r.ok for r in results] == [True, True, True], [r.detail for r in results]


def test_an_unlisted_sink_message_and_an_unmocked_reply_fail(tmp_path: Path) -> None:
    """A sink message the case does not list fails; an enrich endpoint without a reply says so."""
    results = run_cases(
        tmp_path,
        f"""
        cases:
          - name: sink not listed
            input_inline: {{keep: true}}
            {REPLY}
            end: delivered
          - name: no reply given
            input_inline: {{keep: true}}
            end: delivered
    """,
    )
    assert not results[0].ok
    assert "b.out: expected 0 message(s), got 1:" in results[0].detail
    assert '"keep": true' in results[0].detail
    assert not results[1].ok
    assert "e.svc was asked for a reply, but the case's mocks give it none" in results[1].detail
    assert "end: expected delivered, got dead_lettered" in results[1].detail


def test_split_and_aggregate_are_observable(tmp_path: Path) -> None:
    """A split gives one sink message per part; an aggregate is released at the end of the case."""
    steps = [
        {"transform": "t/json"},
        {"split": "body.items"},
        {"aggregate": {"key": "body.g", "size": 5, "timeout": "1h", "into": "parts"}},
    ]
    results = run_cases(
        tmp_path,
        """
        cases:
          - input_inline: {items: [{g: a, n: 1}, {g: a, n: 2}, {g: b, n: 3}]}
            end: delivered
            outputs:
              b.out:
                - checks: [{json_equals: {path: "parts[*].n", value: [1, 2]}}]
                - checks: [{json_equals: {path: "parts[*].n", value: [3]}}]
    """,
        steps=steps,
    )
    assert [r.ok for r in results] == [True], results[0].detail


def test_a_broken_route_test_file_names_the_line(tmp_path: Path) -> None:
    """An unknown end or endpoint is refused with file:line before anything runs."""
    with pytest.raises(ConfigError, match=r"r_test.yaml:4: end is one of delivered, filtered, dead_lettered"):
        run_cases(tmp_path, "cases:\n  - input_inline: {}\n    mocks: {}\n    end: done\n")
    with pytest.raises(ConfigError, match=r"unknown endpoint 'b.outt'.*did you mean 'b.out'"):
        run_cases(tmp_path, "cases:\n  - input_inline: {}\n    end: filtered\n    outputs: {b.outt: []}\n")


def test_route_tests_are_found_by_place_or_by_route_key(tmp_path: Path) -> None:
    """A file under tests/routes/ or one naming route: is a route test; a mapping test is not."""
    other = tmp_path / "x_test.yaml"
    other.write_text("route: r\ncases: []\n")
    mapping = tmp_path / "m_test.yaml"
    mapping.write_text("cases: []\n")
    placed = tmp_path / "tests" / "routes" / "r_test.yaml"
    placed.parent.mkdir(parents=True)
    placed.write_text("cases: []\n")
    assert [is_route_test(p, tmp_path) for p in (other, mapping, placed)] == [True, False, True]


def test_esb_test_runs_a_failing_route_test_with_exit_1(tmp_path: Path) -> None:
    """Through the CLI, a failing route case prints FAIL with the reason and exits 1."""
    small_project(tmp_path, steps=[{"transform": "t/keep"}, {"filter": "body.keep"}])
    (tmp_path / "transforms" / "t").mkdir(parents=True)
    (tmp_path / "transforms" / "t" / "keep.yaml").write_text(
        "kind: jmespath\ninput: json\nrules:\n  keep: keep\n"
    )
    folder = tmp_path / "tests" / "routes"
    folder.mkdir(parents=True)
    (folder / "r_test.yaml").write_text("cases:\n  - name: nope\n    input_inline: 'x'\n    end: filtered\n")
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "test", str(folder)])
    assert result.exit_code == 1, result.output
    assert "FAIL  tests/routes/r_test.yaml :: nope" in result.output
    assert "end: expected filtered, got dead_lettered" in result.output
