"""SpiffWorkflow, requirement 2: parallel branches with a join (all, any, a count of N).

python bench/process_eval/spiff_parallel.py [--pg]
"""

from __future__ import annotations

import time

from common import Database, Report, load_definition, open_database, parse_args
from spiff_driver import Driver, UnsupportedError


def run(db: Database, report: Report) -> None:
    """Run the join cases on ``db``."""
    definition = load_definition("parallel_process.yaml")
    driver = Driver(db.url, definition)
    driver.endpoints.faults = {
        "oss.activate_broadband": "slow:0.5",
        "oss.activate_mobile": "slow:0.5",
        "oss.activate_iptv": "slow:0.5",
    }
    began = time.perf_counter()
    driver.start("all")
    took = time.perf_counter() - began
    report.check(
        "2a join all",
        driver.status("order-all") == "completed",
        f"{driver.status('order-all')}; 3 branches of 0.5 s took {took:.2f} s: Spiff runs parallel"
        " branches one after the other in the calling thread (concurrent calls would need service"
        " tasks run by the driver)",
    )
    driver.endpoints.faults = {"oss.activate_iptv": "fail"}
    driver.start("partial")
    undone = sorted(
        r.step
        for r in driver.endpoints.calls()
        if r.instance == "order-partial" and r.step.startswith("undo:")
    )
    report.check(
        "2b join all with one failed branch: the done branches are undone",
        driver.status("order-partial") == "failed" and undone == ["undo:broadband", "undo:mobile"],
        f"{driver.status('order-partial')}; undone {undone}",
    )
    for join in ("any", "2"):
        definition["steps"][0]["parallel"]["join"] = join
        try:
            Driver(db.url, definition)
            verdict, detail = True, "translated"
        except UnsupportedError as error:
            verdict, detail = False, str(error)
        report.check(
            f"2c join {join}",
            verdict,
            detail + " (inclusive gateway joins all activated branches; no"
            " completionCondition across different branches)",
        )


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"SpiffWorkflow parallel join on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
