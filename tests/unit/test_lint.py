"""esb lint: each kind of finding names file:line and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from esb.cli.main import cli
from esb.config.findings import is_warning
from esb.lint import Linter, lint_project
from esb.project import Project
from tests.unit.routes_fixture import make_project

ENDPOINTS = ["crm.orders_out", "iom.orders_in", "billing.accounts", "dlq.r"]


class FakeModel:
    """A stand-in ModelRegistry knowing one schema."""

    def names(self) -> list[str]:
        """Return the schema names."""
        return ["product_order.v1"]

    def check(self) -> list[str]:
        """No findings."""
        return []


def findings_for(tmp_path: Path, routes: list[dict[str, Any]]) -> list[str]:
    """Return the lint findings of a project with ``routes``."""
    project = make_project(tmp_path, routes, ENDPOINTS, {"crm/siebel_order_to_canonical": lambda b: b})
    project.__dict__["model"] = FakeModel()
    reloaded = Project.load(tmp_path, environ={}, strict=False)
    reloaded.__dict__.update(transforms=project.transforms, model=project.model)
    return Linter(reloaded).run()


def good_route(**extra: Any) -> dict[str, Any]:
    """A route with no findings, updated with ``extra``."""
    route: dict[str, Any] = {
        "id": "r",
        "from": "crm.orders_out",
        "to": "iom.orders_in",
        "on_error": {"dead_letter": "dlq.r"},
    }
    route.update(extra)
    return route


def test_clean_project_has_no_findings(tmp_path: Path) -> None:
    """A correct route produces no finding."""
    assert (
        findings_for(
            tmp_path,
            [
                good_route(
                    steps=[{"transform": "crm/siebel_order_to_canonical"}, {"validate": "product_order.v1"}]
                )
            ],
        )
        == []
    )


def test_unknown_endpoint_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt endpoint is reported with its line and a did-you-mean."""
    [finding] = findings_for(tmp_path, [good_route(to="biling.accounts")])
    assert finding.startswith("routes.yaml:")
    assert "routes[0].to: unknown endpoint 'biling.accounts' (did you mean 'billing.accounts'?)" in finding


def test_unknown_transform_and_schema(tmp_path: Path) -> None:
    """A missing transform and a missing schema are both findings."""
    findings = findings_for(
        tmp_path, [good_route(steps=[{"transform": "crm/siebel_order"}, {"validate": "product_order.v2"}])]
    )
    assert any("unknown transform 'crm/siebel_order'" in f for f in findings)
    assert any("unknown schema 'product_order.v2' (did you mean 'product_order.v1'?)" in f for f in findings)


def test_duplicate_route_ids(tmp_path: Path) -> None:
    """Two routes with one id are a finding on the second."""
    [finding] = findings_for(tmp_path, [good_route(), good_route()])
    assert "routes[1].id: duplicate route id 'r'" in finding


def test_duplicate_when_branches(tmp_path: Path) -> None:
    """Two when branches with the same expression are a finding (the second can never run)."""
    choice = {"choice": [{"when": "body.a == 'x'", "steps": []}, {"when": "body.a  ==  'x'", "steps": []}]}
    [finding] = findings_for(tmp_path, [good_route(steps=[choice])])
    assert "routes[0].steps[0].choice[1].when: duplicate when" in finding


def test_unknown_key_and_unknown_step_with_lines(tmp_path: Path) -> None:
    """Unknown keys and step kinds are reported at their own lines with a suggestion."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text("systems: {}\n")
    (tmp_path / "routes.yaml").write_text(
        "routes:\n"
        "  - id: r\n"
        "    from: crm.orders_out\n"
        "    too: iom.orders_in\n"
        "    steps:\n"
        "      - transfrom: crm/x\n"
    )
    findings = lint_project(tmp_path, None)
    assert any(
        f.startswith("routes.yaml:4: routes[0].too: unknown key 'too' (did you mean 'to'?)") for f in findings
    )
    assert any(
        f.startswith(
            "routes.yaml:6: routes[0].steps[0]: unknown step 'transfrom' (did you mean 'transform'?)"
        )
        for f in findings
    )


def test_missing_dead_letter_and_bad_expression(tmp_path: Path) -> None:
    """A route without dead letter, and an invalid JMESPath filter, are findings."""
    route = good_route(steps=[{"filter": "body.[["}])
    route["on_error"] = {}
    findings = findings_for(tmp_path, [route])
    assert any("no dead-letter endpoint" in f for f in findings)
    assert any("invalid JMESPath expression 'body.[['" in f for f in findings)


def test_unknown_adapter_in_systems(tmp_path: Path) -> None:
    """An endpoint with an unknown adapter is a finding in config/systems.yaml with a suggestion."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text(
        "systems:\n  crm:\n    name: CRM\n    endpoints:\n      out: {adapter: qeue, queue: x}\n"
    )
    (tmp_path / "routes.yaml").write_text("routes: []\n")
    [finding] = lint_project(tmp_path, None)
    assert finding.startswith("config/systems.yaml:5:")
    assert "did you mean 'queue'?" in finding


def test_cli_exits_1_on_findings(tmp_path: Path) -> None:
    """`esb lint` prints the findings and exits 1 when there are any."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text("systems: {}\n")
    (tmp_path / "routes.yaml").write_text("routes:\n  - id: r\n    from: a.b\n")
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "lint"])
    assert result.exit_code == 1
    assert "routes.yaml:3: routes[0].from: unknown endpoint 'a.b'" in result.output


def test_prefetch_below_the_batch_size_is_a_warning(tmp_path: Path) -> None:
    """A broker prefetch below runtime.batch_size is a warning naming both values; an equal one is clean."""
    make_project(tmp_path, [good_route()], ENDPOINTS, {})
    capped = Linter(Project.load(
        tmp_path, environ={"ESB_BROKER__PREFETCH": "150", "ESB_RUNTIME__BATCH_SIZE": "200"}, strict=False
    ))
    capped.check_content()
    found = [f for f in capped.findings if "broker.prefetch" in f]
    assert len(found) == 1
    assert is_warning(found[0])
    assert "(150)" in found[0]
    assert "(200)" in found[0]
    even = Linter(Project.load(
        tmp_path, environ={"ESB_BROKER__PREFETCH": "200", "ESB_RUNTIME__BATCH_SIZE": "200"}, strict=False
    ))
    even.check_content()
    assert not [f for f in even.findings if "broker.prefetch" in f]
