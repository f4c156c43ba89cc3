"""DBOS, requirement 8: list / show / cancel / retry (resume) an instance by id, through the library's API.

Also checks what a library cancel does to compensation (the issue wants done steps undone on cancel).

    python bench/process_eval/dbos_operators.py [--pg]
"""

from __future__ import annotations

import os
import threading
import time

import dbos_driver as drv
from common import Database, Report, load_definition, open_database, parse_args, wait_until
from dbos import DBOS, DBOSClient


def run(db: Database, report: Report) -> None:
    """Start waiting instances, then list, show, cancel and resume them."""
    drv.configure(db.url)
    drv.launch()
    client = DBOSClient(system_database_url=db.url)
    definition = load_definition()
    definition["steps"][1]["await"]["deadline_s"] = 30
    for key in ("o1", "o2", "o3"):
        drv.start(definition, key)
    wait_until(lambda: len(DBOS.list_workflows(status="PENDING", name="run_process")) == 3, 10)
    listed = [w.workflow_id for w in client.list_workflows(status="PENDING", load_input=False)]
    report.check(
        "8a list waiting instances", sorted(listed) == ["order-o1", "order-o2", "order-o3"], str(listed)
    )
    wait_until(lambda: client.get_event("order-o1", "step", timeout_seconds=0) == "activate", 10)
    steps = client.list_workflow_steps("order-o1")
    shown = [s["function_name"] for s in steps]
    report.check("8b show one instance's steps", "activate" in shown and "reserve" in shown, str(shown))

    client.cancel_workflow("order-o1")
    wait_until(lambda: DBOS.get_workflow_status("order-o1").status == "CANCELLED", 10)  # type: ignore[union-attr]
    time.sleep(1.0)
    assert drv.ENDPOINTS is not None
    released = drv.ENDPOINTS.count("order-o1", "rim.release")
    status = DBOS.get_workflow_status("order-o1")
    report.check(
        "8c cancel by id",
        status is not None and status.status == "CANCELLED",
        f"status {status.status if status else None}",
    )
    report.check(
        "8c' cancel undoes the done steps",
        released == 1,
        f"rim.release calls after cancel: {released} (DBOS cancel stops the workflow at its next step;"
        " no code of ours runs, so compensation-on-cancel must be a message the driver handles)",
    )
    client.resume_workflow("order-o1")
    resumed = wait_until(lambda: DBOS.get_workflow_status("order-o1").status == "PENDING", 10)  # type: ignore[union-attr]
    drv.deliver_reply(client, "o1", "activate:oss.result", {"status": "ok"})
    ended = wait_until(lambda: DBOS.get_event("order-o1", "state", timeout_seconds=0) == "completed", 10)
    report.check(
        "8d resume (retry) a cancelled instance by id",
        resumed and ended,
        f"resumed to PENDING: {resumed}; completed after its reply: {ended};"
        f" reserve calls {drv.ENDPOINTS.count('order-o1', 'rim.reserve')} (not redone)",
    )
    forked = client.fork_workflow("order-o2", 1)
    report.figure("fork_workflow(id, step) (retry from a step, new id)", forked.get_workflow_id())
    for key in ("o2", "o3"):
        client.cancel_workflow(drv.instance_id(key))
    client.cancel_workflow(forked.get_workflow_id())
    time.sleep(2.0)
    blocked = [t.name for t in threading.enumerate() if t.name.startswith("dbos-executor")]
    report.figure(
        "executor threads still alive 2 s after every instance was cancelled",
        f"{len(blocked)} (a cancelled workflow blocked in recv keeps its thread until its 30 s timeout)",
    )
    client.destroy()
    DBOS.destroy()
    blocked = [t.name for t in threading.enumerate() if t.name.startswith("dbos-executor")]
    report.figure(
        "executor threads alive after DBOS.destroy()",
        f"{len(blocked)} (with the database then stopped they retry forever and the interpreter cannot exit:"
        " this script ends with os._exit)",
    )


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS operators on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    report.summary()
    os._exit(0)  # see the last figure: DBOS's workflow threads would hold the interpreter


if __name__ == "__main__":
    raise SystemExit(main())
