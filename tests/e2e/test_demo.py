"""`esb demo`: the hub with the simulated systems; every message and every order ends as planned, and
every file it leaves is private.

One demo run (a subprocess started under a loose umask, as an operator's shell may be) serves both tests:
the demo's report, and the modes of what it left in its data folder.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("completed", "rim-refusal", "oss-timeout", "cancelled", "cancel-refused")
FAULTS = ("resolved", "reject", "silent", "late", "complaint")


@pytest.fixture(scope="module")
def demo_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's TMPDIR: its data folder is created under it."""
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo(demo_tmp: Path) -> subprocess.CompletedProcess[str]:
    """``esb demo`` run once with every scenario forced in, under umask 022, without ESB_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESB_")}
    env["TMPDIR"] = str(demo_tmp)
    return subprocess.run(
        [
            sys.executable, "-m", "esb.cli", "--project", str(ROOT), "demo", "--messages", "100",
            "--orders", "40", "--rim-refusals", "0.1", "--oss-timeouts", "0.1", "--cancellations", "0.1",
            "--faults", "20", "--timeout", "900",  # a guard: the demo returns as soon as all ended
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        preexec_fn=lambda: os.umask(0o022),  # the child only sets its umask
        check=False,
    )  # fmt: skip


def test_demo_reports_every_route_and_every_order_scenario_ok(demo: subprocess.CompletedProcess[str]) -> None:
    """100 messages through the CRM order route end as planned, 40 orders with every scenario forced in
    (RIM refusals, OSS timeouts, cancels in flight and too late) each end as their scenario expects, and
    20 112 faults (a rejection, a silent technician, a late repair) and two 10000 complaints are each
    resolved as planned, and the hotline's ticket query finds each resolved; 100 CRM subscribers reach 114
    and the phone directory as planned (no unlisted number in any file, every ack picked up)."""
    result = demo
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith("crm-order-to-iom"))
    assert row.split()[1:5] == ["100", "76/76", "4/4", "20/20"]
    assert row.endswith("OK")
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in SCENARIOS}
    assert sorted(rows) == sorted(SCENARIOS)
    assert all(row.endswith("OK") for row in rows.values()), result.stdout
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
    assert sorted(faults) == sorted(FAULTS), result.stdout
    assert all(row.endswith("OK") for row in faults.values()), result.stdout
    assert faults["late"].split()[1:3] == ["1", "1/1"]  # escalated, then resolved
    assert faults["silent"].split()[1:3] == ["2", "2/2"]  # recalled and reassigned at the deadline
    assert faults["complaint"].split()[1:3] == ["2", "2/2"]
    assert "ticket status queries (10000, by ticket id): 22 answered as expected, 0 not" in lines
    # credit control: Billing's late and repeated events filtered, each subscriber's OSS and CRM state
    # its last event's (the row is OK only then: CreditControlScenario.problems)
    credit = next(line for line in lines if line.startswith("billing-credit-control"))
    assert credit.endswith("OK"), result.stdout
    assert credit.split()[3].split("/")[0] != "0"  # some events were filtered (late, repeated, reminders)
    # the directory flow: 100 CRM subscribers to 114 and the phone directory, acks back, no unlisted number
    directory = next(line for line in lines if line.startswith("crm-subscriber-to-hub"))
    assert directory.split()[1:3] == ["100", "100/100"]
    assert directory.endswith("OK"), result.stdout


def test_demo_leaves_only_private_files_under_a_loose_umask(
    demo: subprocess.CompletedProcess[str], demo_tmp: Path
) -> None:
    """`esb demo` (every route: queues, SOAP, batch files) started with umask 022 leaves its journal,
    queues, batch state, staging, replies and outbox 0600 in 0700 folders: nothing another account reads."""
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (data_dir,) = [p.parent for p in demo_tmp.glob("esb-demo-*/journal.db")]
    seen: dict[str, int] = {}
    for folder, dirs, names in os.walk(data_dir):
        for name in dirs + names:
            path = Path(folder, name)
            seen[str(path.relative_to(data_dir))] = stat.S_IMODE(os.lstat(path).st_mode)
    assert "journal.db" in seen
    assert "queues.db" in seen
    assert any(name.startswith("batch/") and name.endswith("state.db") for name in seen)
    loose = {
        name: oct(mode)
        for name, mode in seen.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert loose == {}
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
