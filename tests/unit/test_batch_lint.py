"""`esb lint` on batch endpoints: an outbound endpoint's ack endpoint must be an inbound batch endpoint,
and every layout file must load (a broken one is a finding with its file and line)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from esb.lint import lint_project

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = "config/layouts/dir114_ack.yaml"


def write_project(tmp_path: Path, ack_endpoint: str, layout: str = LAYOUT) -> None:
    """A project with batch endpoints dir.out (outbound, acked by ``ack_endpoint``), dir.acks (inbound,
    reading ``layout``), dir.done (outbound, no acks) and a memory queue dir.queue; no routes."""
    remote = {"protocol": "local", "path": str(tmp_path / "x")}
    out: dict[str, Any] = {
        "adapter": "batch",
        "layout": LAYOUT,
        "remote": remote,
        "outbound": {"file_name": "F_{seq:03d}.dat", "ack": {"endpoint": ack_endpoint, "name": "ACK_{file}"}},
    }
    acks = {"adapter": "batch", "layout": layout, "remote": remote, "inbound": {"pattern": "ACK_*"}}
    done = {"adapter": "batch", "layout": LAYOUT, "remote": remote, "outbound": {"file_name": "D.dat"}}
    systems = {
        "dir": {
            "name": "dir",
            "endpoints": {"out": out, "acks": acks, "done": done, "queue": {"adapter": "memory"}},
        }
    }
    (tmp_path / "config" / "layouts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / LAYOUT, tmp_path / LAYOUT)
    (tmp_path / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}, sort_keys=False))
    (tmp_path / "config" / "settings.yaml").write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump({"routes": []}))


def batch_findings(tmp_path: Path) -> list[str]:
    """The lint findings about the batch endpoints of the project at ``tmp_path``."""
    return [f for f in lint_project(tmp_path) if "dir." in f]


def test_a_right_ack_endpoint_and_layout_give_no_finding(tmp_path: Path) -> None:
    """dir.out acked by the inbound batch endpoint dir.acks, every layout valid: nothing to say."""
    write_project(tmp_path, "dir.acks")
    assert batch_findings(tmp_path) == []


def test_an_unknown_ack_endpoint_is_named_with_its_line(tmp_path: Path) -> None:
    """outbound.ack.endpoint naming no endpoint is a finding at its line in config/systems.yaml."""
    write_project(tmp_path, "dir.akcs")
    [finding] = batch_findings(tmp_path)
    assert finding.startswith("config/systems.yaml:")
    assert "dir.out.outbound.ack.endpoint: unknown endpoint 'dir.akcs'" in finding


def test_an_ack_endpoint_that_does_not_pick_files_up_is_a_finding(tmp_path: Path) -> None:
    """An outbound batch endpoint or a queue named as the ack endpoint is refused, saying what it is."""
    write_project(tmp_path, "dir.done")
    [finding] = batch_findings(tmp_path)
    assert "dir.out.outbound.ack.endpoint: dir.done is a batch endpoint without inbound" in finding
    write_project(tmp_path, "dir.queue")
    [finding] = batch_findings(tmp_path)
    assert (
        "dir.queue is an endpoint of adapter memory: acks are picked up by an inbound batch endpoint"
        in finding
    )


def test_an_invalid_layout_is_a_finding_with_the_layouts_file_and_line(tmp_path: Path) -> None:
    """A layout field whose start is no number is named with the layout file's line, at lint, not at start."""
    broken = "config/layouts/broken.yaml"
    write_project(tmp_path, "dir.acks", layout=broken)
    lines = (ROOT / LAYOUT).read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "name: received" in line)
    lines[at] = lines[at].replace("start: 43", "start: forty-three")
    (tmp_path / broken).write_text("\n".join(lines) + "\n", encoding="utf-8")
    findings = batch_findings(tmp_path)
    assert any(
        f"dir.acks.layout: {broken}:{at + 1}: header.fields.2.start: Input should be a valid integer" in f
        for f in findings
    ), findings


def test_a_missing_layout_file_is_a_finding(tmp_path: Path) -> None:
    """A layout path that names no file is a finding of the endpoint's layout."""
    write_project(tmp_path, "dir.acks", layout="config/layouts/none.yaml")
    findings = batch_findings(tmp_path)
    assert any("dir.acks.layout: config/layouts/none.yaml: layout file not found" in f for f in findings), (
        findings
    )
