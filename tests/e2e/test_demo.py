"""`esb demo`: the hub with the simulated systems; every message and every order ends as planned."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from esb.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("completed", "rim-refusal", "oss-timeout", "cancelled", "cancel-refused")
FAULTS = ("resolved", "reject", "silent", "late", "complaint")


def test_demo_reports_every_route_and_every_order_scenario_ok() -> None:
    """100 messages through the CRM order route end as planned, 40 orders with every scenario forced in
    (RIM refusals, OSS timeouts, cancels in flight and too late) each end as their scenario expects, and
    20 112 faults (a rejection, a silent technician, a late repair) and two 10000 complaints are each
    resolved as planned, and the hotline's ticket query finds each resolved; 100 CRM subscribers reach 114
    and the phone directory as planned (no unlisted number in any file, every ack picked up)."""
    result = CliRunner().invoke(
        cli,
        [
            "--project", str(ROOT), "demo", "--messages", "100", "--orders", "40",
            "--rim-refusals", "0.1", "--oss-timeouts", "0.1", "--cancellations", "0.1", "--faults", "20",
            "--timeout", "240",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if line.startswith("crm-order-to-iom"))
    assert row.split()[1:5] == ["100", "76/76", "4/4", "20/20"]
    assert row.endswith("OK")
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in SCENARIOS}
    assert sorted(rows) == sorted(SCENARIOS)
    assert all(row.endswith("OK") for row in rows.values()), result.output
    assert rows["rim-refusal"].split()[1:3] == ["4", "4/4"]
    assert "cancelled 2" in rows["cancelled"]
    assert rows["cancel-refused"].split()[1:3] == ["2", "2/2"]
    assert "completed 2" in rows["cancel-refused"]
    assert "failed 4" in rows["oss-timeout"]
    assert "failed 4" in rows["rim-refusal"]
    # flow 3: the CRM's and the hotline's clients found each of the 40 orders in the state it ended in
    assert "status queries (CRM and 10000, by order number): 80 answered as expected, 0 not" in lines
    cancel_route = next(line for line in lines if line.startswith("crm-cancel-to-hub"))
    assert "run with the order processes" in cancel_route
    faults = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in FAULTS}
    assert sorted(faults) == sorted(FAULTS), result.output
    assert all(row.endswith("OK") for row in faults.values()), result.output
    assert faults["late"].split()[1:3] == ["1", "1/1"]  # escalated, then resolved
    assert faults["silent"].split()[1:3] == ["2", "2/2"]  # recalled and reassigned at the deadline
    assert faults["complaint"].split()[1:3] == ["2", "2/2"]
    assert "ticket status queries (10000, by ticket id): 22 answered as expected, 0 not" in lines
    # credit control: Billing's late and repeated events filtered, each subscriber's OSS and CRM state
    # its last event's (the row is OK only then: CreditControlScenario.problems)
    credit = next(line for line in lines if line.startswith("billing-credit-control"))
    assert credit.endswith("OK"), result.output
    assert credit.split()[3].split("/")[0] != "0"  # some events were filtered (late, repeated, reminders)
    # the directory flow: 100 CRM subscribers to 114 and the phone directory, acks back, no unlisted number
    directory = next(line for line in lines if line.startswith("crm-subscriber-to-hub"))
    assert directory.split()[1:3] == ["100", "100/100"]
    assert directory.endswith("OK"), result.output
