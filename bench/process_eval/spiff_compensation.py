"""SpiffWorkflow, requirement 5: compensation in reverse order; a failing undo is retried, then visible.

SpiffWorkflow 3.2.0 parses no compensation events (only its XSD names them): the undo is the driver's.

    python bench/process_eval/spiff_compensation.py [--pg]
"""

from __future__ import annotations

import json
from pathlib import Path

import SpiffWorkflow.bpmn.parser as parser_package
from common import Database, Report, load_definition, open_database, parse_args
from spiff_driver import Driver


def run(db: Database, report: Report) -> None:
    """Fail Billing, make the OSS undo fail, and look at what is left to see."""
    definition = load_definition()
    del definition["steps"][1]["await"]
    driver = Driver(db.url, definition)
    folder = Path(parser_package.__file__).parent
    mentions = [p.name for p in folder.glob("*.py") if "compensat" in p.read_text().lower()]
    report.figure("SpiffWorkflow parser modules that handle compensation events", str(mentions))
    driver.endpoints.faults = {"billing.create": "fail", "oss.deactivate": "fail_once"}
    driver.start("c1")
    undos = [
        r.step for r in driver.endpoints.calls() if r.instance == "order-c1" and r.step.startswith("undo:")
    ]
    report.check(
        "5a undo in reverse order, a failing undo retried (by the driver)",
        driver.status("order-c1") == "failed" and undos == ["undo:activate", "undo:activate", "undo:reserve"],
        f"{driver.status('order-c1')}; undo calls {undos}",
    )
    driver.endpoints.faults = {"billing.create": "fail", "oss.deactivate": "fail"}
    driver.start("c2")
    row = driver.row("order-c2")
    report.check(
        "5b an undo that keeps failing is visible (driver's alert column)",
        row.status == "compensation_failed" and bool(json.loads(row.alert or "[]")),
        f"{row.status}; alert {row.alert}",
    )


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"SpiffWorkflow compensation on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
