"""The shipped processes (flows 1 and 2 of issue 15, the assurance flow of issue 16, processes/) lint clean
against the real project (its endpoints in config/systems.yaml, its transforms), and the cross-process
cancel is checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from esb.lint import lint_project
from esb.process.lint import process_findings
from esb.process.loader import load_processes
from esb.project import Project

SHIPPED = Path(__file__).resolve().parents[2] / "processes"
REPO = SHIPPED.parent


def real_project(
    root: Path,
    texts: dict[str, str] | None = None,
    without_system: str | None = None,
) -> Project:
    """The repository's project (config, transforms, canonical model, routes) at ``root`` with ``texts``
    (file name -> text, default: the examples) as its processes/; ``without_system`` is left out of
    config/systems.yaml."""
    shutil.copytree(REPO / "config", root / "config")
    for name in ("transforms", "canonical_model"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copy(REPO / "routes.yaml", root / "routes.yaml")
    if without_system is not None:
        path = root / "config" / "systems.yaml"
        systems = yaml.safe_load(path.read_text(encoding="utf-8"))
        del systems["systems"][without_system]
        path.write_text(yaml.safe_dump(systems, allow_unicode=True), encoding="utf-8")
    if texts is None:
        texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(SHIPPED.glob("*.yaml"))}
    (root / "processes").mkdir()
    for name, text in texts.items():
        (root / "processes" / name).write_text(text, encoding="utf-8")
    return Project.load(root, environ={"ESB_DATA_DIR": str(root / "var")})


def examples_project(root: Path, change: dict[str, tuple[str, str]] | None = None) -> Project:
    """The real project whose processes/ are the examples, each with ``change[name]`` (old, new) replaced."""
    texts = {}
    for path in sorted(SHIPPED.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if change and path.stem in change:
            old, new = change[path.stem]
            assert old in text
            text = text.replace(old, new)
        texts[path.name] = text
    return real_project(root, texts)


def test_examples_are_clean(tmp_path: Path) -> None:
    """The shipped flows load and lint without a finding against the real project's endpoints, transforms."""
    project = examples_project(tmp_path)
    assert load_processes(tmp_path).names() == [
        "fault_to_resolution",
        "order_cancellation",
        "order_to_activation",
    ]
    assert process_findings(project) == []


def test_project_with_the_examples_copied_in_lints_clean(tmp_path: Path) -> None:
    """esb lint of the whole project, the examples copied to processes/, has no finding, no warning."""
    real_project(tmp_path)
    assert lint_project(tmp_path) == []


def test_the_repository_project_runs_both_flows() -> None:
    """The repository's own processes/ holds the order flows and the assurance flow (the hub runs them) and
    they lint clean there."""
    assert load_processes(REPO).names() == [
        "fault_to_resolution",
        "order_cancellation",
        "order_to_activation",
    ]
    assert process_findings(Project.load(REPO, environ={})) == []


def test_examples_without_their_endpoints_are_reported(tmp_path: Path) -> None:
    """Linted against a project that lacks RIM, the example's calls are findings."""
    project = real_project(
        tmp_path,
        {"order_to_activation.yaml": (SHIPPED / "order_to_activation.yaml").read_text(encoding="utf-8")},
        without_system="rim",
    )
    findings = process_findings(project)
    assert [f.split(": ")[1] for f in findings] == [
        "steps[2].foreach.steps[3].call.endpoint",
        "steps[2].foreach.steps[10].call.endpoint",
        "compensations[0].call.endpoint",
    ]


@pytest.mark.parametrize(
    ("old", "new", "finding"),
    [
        pytest.param(
            "process: order_to_activation\n      key",
            "process: order_to_activatio\n      key",
            "processes/order_cancellation.yaml:32: steps[3].cancel.process: unknown process "
            "'order_to_activatio' (did you mean 'order_to_activation'?): add it under processes/",
            id="unknown-process",
        ),
        pytest.param(
            "key: order_id\n      value",
            "key: order_no\n      value",
            "processes/order_cancellation.yaml:33: steps[3].cancel.key: order_to_activation has no business "
            "key 'order_no' (did you mean 'order_id'?): use one of order_id, msisdn",
            id="unknown-key",
        ),
    ],
)
def test_cancel_names_a_process_and_its_key(tmp_path: Path, old: str, new: str, finding: str) -> None:
    """A cancel step names an existing process by one of its business keys."""
    project = examples_project(tmp_path, {"order_cancellation": (old, new)})
    assert process_findings(project) == [finding]


def test_cancel_of_a_process_without_on_cancel(tmp_path: Path) -> None:
    """Cancelling a process that has no on_cancel would always be refused: reported."""
    on_cancel = (
        "on_cancel:\n  point_of_no_return: components       # once every component is activated and billed, "
        "a cancel is refused\n  refuse_reason: the order's services are active; ask for a disconnection "
        "order instead\n"
    )
    project = examples_project(tmp_path, {"order_to_activation": (on_cancel, "")})
    assert process_findings(project) == [
        "processes/order_cancellation.yaml:31: steps[3].cancel: order_to_activation has no on_cancel: every "
        "cancel would be refused; add one to it"
    ]


def test_docs_show_the_example_as_shipped() -> None:
    """docs/processes.md quotes flow 1 exactly as processes/order_to_activation.yaml has it."""
    text = (SHIPPED / "order_to_activation.yaml").read_text(encoding="utf-8")
    quoted = text[text.index("process: order_to_activation") :]
    assert f"```yaml\n{quoted}```" in (REPO / "docs" / "processes.md").read_text(encoding="utf-8")
