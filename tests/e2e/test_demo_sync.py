"""`esb demo`'s sync check: CRM customer changes reach Billing only when they change what it holds."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

from click.testing import CliRunner

from esb.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_demo_checks_that_unchanged_and_late_customer_changes_are_skipped() -> None:
    """25 changes (5 customers: new, unchanged, changed, late, closed) all accounted for: Billing got the
    10 upserts and 5 deletes, the sync skipped the 5 unchanged and the 5 late ones; the row says OK."""
    args = ["--project", str(ROOT), "demo", "--messages", "25", "--orders", "0", "--faults", "0"]
    with mock.patch.dict(os.environ):  # the demo sets its free ports there: not for the worker's next tests
        result = CliRunner().invoke(cli, [*args, "--timeout", "120"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if line.startswith("crm-customer-to-hub"))
    assert row.split()[1:3] == ["25", "25/25"]
    assert row.split()[-2:] == ["25", "OK"]
    sync_row = next(line for line in lines if line.startswith("customer-sync-billing"))
    assert "run beside crm-customer-to-hub, whose row checks it" in sync_row
