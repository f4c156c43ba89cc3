"""DBOS, requirement 5: compensation in reverse order; a failing undo is retried, then visible.

python bench/process_eval/dbos_compensation.py [--pg]
"""

from __future__ import annotations

import dbos_driver as drv
from common import Database, Report, load_definition, open_database, parse_args
from dbos import DBOS


def run(db: Database, report: Report) -> None:
    """Fail Billing, make the OSS undo fail for good, and look at what is left to see."""
    drv.configure(db.url)
    drv.launch()
    definition = load_definition()
    del definition["steps"][1]["await"]
    assert drv.ENDPOINTS is not None
    drv.ENDPOINTS.faults = {"billing.create": "fail", "oss.deactivate": "fail_once"}
    result = drv.start(definition, "c1").get_result()
    undos = [r.step for r in drv.ENDPOINTS.calls() if r.instance == "order-c1" and r.step.startswith("undo:")]
    report.check(
        "5a undo in reverse order, a failing undo retried",
        result["state"] == "failed" and undos == ["undo:activate", "undo:activate", "undo:reserve"],
        f"{result['state']}; undo calls in order {undos} (deactivate failed once, retried)",
    )
    drv.ENDPOINTS.faults = {"billing.create": "fail", "oss.deactivate": "fail"}
    result = drv.start(definition, "c2").get_result()
    alert = DBOS.get_event("order-c2", "alert", timeout_seconds=0)
    status = DBOS.get_workflow_status("order-c2")
    n = drv.ENDPOINTS.count("order-c2", "oss.deactivate")
    report.check(
        "5b an undo that keeps failing is visible",
        result["state"] == "compensation_failed" and bool(alert),
        f"{result['state']} after {n} deactivate attempts; alert event {alert}; DBOS status"
        f" {status.status if status else None} (the library's own status says SUCCESS: the driver must"
        " surface the alert)",
    )
    steps = DBOS.list_workflow_steps("order-c2")
    errors = [s["function_name"] for s in steps if s.get("error") is not None]
    report.figure("steps recorded with an error (list_workflow_steps)", str(errors))
    DBOS.destroy()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS compensation on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
