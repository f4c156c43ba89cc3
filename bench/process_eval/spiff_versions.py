"""SpiffWorkflow, requirements 7 and 8: versions of a definition; operators' list / show / cancel / retry.

7. An instance started on order_process.yaml v1 waits; a driver loaded with v2 (one more step) delivers
   its reply: the serialized workflow carries its own spec, so it must end on v1's steps; a new
   instance runs v2.
8. What the library offers operators: nothing persistent (list / show are queries on the driver's
   table); ``BpmnWorkflow.cancel()`` and ``reset_from_task_id()`` (retry from a task) on a loaded instance.

    python bench/process_eval/spiff_versions.py [--pg]
"""

from __future__ import annotations

import sqlalchemy as sa
from common import Database, Report, load_definition, open_database, parse_args
from spiff_driver import INSTANCES, Driver
from SpiffWorkflow.task import TaskState


def run(db: Database, report: Report) -> None:
    """Run the version and operator checks on ``db``."""
    v1 = Driver(db.url, load_definition())
    v1.start("old")
    size = len(v1.row("order-old").state)
    v2 = Driver(db.url, load_definition("order_process_v2.yaml"))
    outcome = v2.deliver("old", "oss.result", {"status": "ok"})
    v2.start("new")
    v2.deliver("new", "oss.result", {"status": "ok"})
    old_notify, new_notify = (
        v2.endpoints.count("order-old", "iom.notify"),
        v2.endpoints.count("order-new", "iom.notify"),
    )
    report.check(
        "7a a running v1 instance ends on v1 under a v2 driver; a new one runs v2",
        v2.status("order-old") == "completed" and old_notify == 0 and new_notify == 1,
        f"old: {outcome}, {v2.status('order-old')}, iom.notify {old_notify}; new: {v2.status('order-new')},"
        f" iom.notify {new_notify} (the serialized instance embeds its spec:"
        f" {size} bytes for a 3-step process)",
    )

    with v1.engine.connect() as conn:
        listed = conn.execute(sa.select(INSTANCES.c.id, INSTANCES.c.status)).all()
    report.check(
        "8a list (driver's table; the library has no store)",
        len(listed) == 2,
        str([tuple(r) for r in listed]),
    )
    v1.start("cancel")
    wf = v1._load("order-cancel")
    shown = [
        (t.task_spec.name, TaskState.get_name(t.state))
        for t in wf.get_tasks()
        if t.task_spec.name in ("reserve", "activate", "activate_wait", "bill")
    ]
    report.check(
        "8b show an instance's tasks (deserialize + get_tasks)",
        ("activate_wait", "WAITING") in shown,
        str(shown),
    )
    wf.cancel()
    v1._claim("order-cancel")
    v1._save("order-cancel", wf, "cancelled", release=True)
    released = v1.endpoints.count("order-cancel", "rim.release")
    report.check(
        "8c cancel (BpmnWorkflow.cancel) undoes the done steps",
        released == 1,
        f"status {v1.status('order-cancel')}, rim.release calls {released}"
        " (cancel only cancels the task tree:"
        " the driver must compensate)",
    )
    v1.start("retry")
    wf = v1._load("order-retry")
    activate = next(t for t in wf.get_tasks() if t.task_spec.name == "activate")
    wf.reset_from_task_id(activate.id)
    v1._claim("order-retry")
    v1._run("order-retry", wf)
    report.check(
        "8d retry from a task (reset_from_task_id)",
        v1.endpoints.count("order-retry", "oss.activate") == 2 and v1.status("order-retry") == "waiting",
        f"oss.activate calls {v1.endpoints.count('order-retry', 'oss.activate')},"
        f" status {v1.status('order-retry')}",
    )


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"SpiffWorkflow versions and operators on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
