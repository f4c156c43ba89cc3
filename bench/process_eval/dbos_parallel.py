"""DBOS, requirement 2: parallel branches with a join (all, any, a count of N), compensation of a partial.

Branches are child workflows; each reports to the parent on a join topic; the parent counts reports.

    python bench/process_eval/dbos_parallel.py [--pg]
"""

from __future__ import annotations

import time

import dbos_driver as drv
from common import Database, Report, load_definition, open_database, parse_args
from dbos import DBOS


def run_case(definition: dict, key: str, join: str, faults: dict[str, str]) -> tuple[dict, float]:
    """Run the bundle with ``join`` and ``faults``; return its result and the seconds it took."""
    assert drv.ENDPOINTS is not None
    drv.ENDPOINTS.faults = dict(faults)
    definition["steps"][0]["parallel"]["join"] = join
    began = time.perf_counter()
    result = drv.start(definition, key).get_result()
    return result, time.perf_counter() - began


def run(db: Database, report: Report) -> None:
    """Run the join cases on ``db``."""
    drv.configure(db.url)
    drv.launch()
    definition = load_definition("parallel_process.yaml")
    slow = {
        "oss.activate_broadband": "slow:0.5",
        "oss.activate_mobile": "slow:0.5",
        "oss.activate_iptv": "slow:0.5",
    }
    result, took = run_case(definition, "all", "all", slow)
    report.check(
        "2a join all, branches in parallel",
        result["state"] == "completed" and took < 1.4,
        f"{result['state']}, 3 branches of 0.5 s each took {took:.2f} s (serial would be >= 1.5 s)",
    )
    result, took = run_case(
        definition, "any", "any", {"oss.activate_broadband": "fail", "oss.activate_mobile": "slow:1.0"}
    )
    report.check(
        "2b join any: first success wins",
        result["state"] == "completed",
        f"{result['state']} after {took:.2f} s with broadband failing, mobile slow",
    )
    result, took = run_case(definition, "count", "2", {"oss.activate_iptv": "fail"})
    report.check(
        "2c join 2 of 3 with one branch failed", result["state"] == "completed", f"{result['state']}"
    )
    result, _ = run_case(definition, "partial", "all", {"oss.activate_iptv": "fail"})
    assert drv.ENDPOINTS is not None
    undone = sorted(
        r.step for r in drv.ENDPOINTS.calls() if r.instance == "order-partial" and r.step.startswith("undo:")
    )
    report.check(
        "2d join all with one failed branch: the done branches are undone",
        result["state"] == "failed" and undone == ["undo:broadband", "undo:mobile"],
        f"{result['state']}; undone {undone}",
    )
    time.sleep(1.5)  # let the branches an `any` join left behind finish before DBOS stops
    DBOS.destroy()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS parallel join on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
