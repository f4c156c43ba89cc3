"""`esb demo`: the hub with the simulated systems; every message ends as planned."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from esb.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_demo_reports_every_route_ok() -> None:
    """100 messages through the CRM order route: delivered, filtered and dead-lettered counts as planned."""
    result = CliRunner().invoke(
        cli, ["--project", str(ROOT), "demo", "--messages", "100", "--timeout", "120"]
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("crm-order-to-iom"))
    assert row.split()[1:5] == ["100", "76/76", "4/4", "20/20"]
    assert row.endswith("OK")
