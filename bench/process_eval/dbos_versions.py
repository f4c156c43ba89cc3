"""DBOS, requirement 7: a changed definition (and a new hub build) does not break running instances.

a. The trap: instances started under application version v1; the worker is SIGKILLed and restarted as
   v2 (a new deploy: DBOS's default version is a hash of the workflow functions' source). Are they
   recovered?
b. The same with DBOS's ``auto_upgrade`` option.
c. The pin we would use: a constant application version for the generic driver, the definition as the
   instance's input. Restarted with order_process_v2.yaml (one more step): the running instance ends on
   v1's steps, a new one runs v2's.

    python bench/process_eval/dbos_versions.py [--pg]
"""

from __future__ import annotations

import time

import dbos_driver as drv
from common import Database, Endpoints, Report, open_database, parse_args, wait_until
from dbos import DBOSClient
from workers import Worker

SCRIPT = "dbos_driver.py"


def states(client: DBOSClient, ids: list[str]) -> dict[str, str]:
    """Return each instance's DBOS status and end state."""
    out = {}
    for wid in ids:
        rows = client.list_workflows(workflow_ids=[wid], load_input=False, load_output=False)
        out[wid] = (
            f"{rows[0].status}/{rows[0].app_version}/{client.get_event(wid, 'state', timeout_seconds=0)}"
        )
    return out


def wait_await(client: DBOSClient, ids: list[str]) -> bool:
    """Wait until every instance awaits the OSS reply."""
    return wait_until(
        lambda: all(client.get_event(w, "await:activate:oss.result", timeout_seconds=0) for w in ids), 20
    )


def run(db: Database, report: Report, client: DBOSClient, calls: Endpoints) -> None:
    """Run the three cases on ``db``."""
    folder = db.folder
    assert folder is not None
    for case, flags in (("a", ()), ("b", ("--auto-upgrade",))):
        ids = [f"order-{case}{i}" for i in range(3)]
        w1 = Worker(
            SCRIPT,
            db.url,
            folder,
            f"{case}1",
            "--app-version",
            f"{case}-v1",
            "--start",
            "3",
            "--prefix",
            case,
            "--deadline",
            "5",
        )
        w1.ready()
        wait_await(client, ids)
        w1.kill()
        w2 = Worker(SCRIPT, db.url, folder, f"{case}2", "--app-version", f"{case}-v2", *flags)
        started = w2.ready()
        ok = wait_until(lambda ids=ids: all(s.endswith("failed") for s in states(client, ids).values()), 15)
        report.check(
            f"7{case} instances of v1 recovered by a v2 worker{' (auto_upgrade)' if flags else ''}",
            ok,
            f"15 s later (deadline 5 s): {states(client, ids)}"
            + ("" if started else f"; the v2 worker did not start: {w2.tail(1)}"),
        )
        w2.kill()

    old = ["order-c0"]
    w1 = Worker(
        SCRIPT,
        db.url,
        folder,
        "c1",
        "--app-version",
        "esb-process-1",
        "--start",
        "1",
        "--prefix",
        "c",
        "--deadline",
        "30",
    )
    w1.ready()
    wait_await(client, old)
    w1.kill()
    w2 = Worker(SCRIPT, db.url, folder, "c2", "--app-version", "esb-process-1", "--start", "1",
                "--prefix", "n",
                "--definition", "order_process_v2.yaml", "--deadline", "30")  # fmt: skip
    w2.ready()
    time.sleep(1.0)
    for key in ("c0", "n0"):
        wait_await(client, [drv.instance_id(key)])
        drv.deliver_reply(client, key, "activate:oss.result", {"status": "ok"})
    ok = wait_until(
        lambda: all(s.endswith("completed") for s in states(client, ["order-c0", "order-n0"]).values()), 20
    )
    old_notify, new_notify = calls.count("order-c0", "iom.notify"), calls.count("order-n0", "iom.notify")
    report.check(
        "7c pinned driver version, definition as input: old instance keeps v1, new one runs v2",
        ok and old_notify == 0 and new_notify == 1,
        f"{states(client, ['order-c0', 'order-n0'])}; iom.notify calls old {old_notify}, new {new_notify}",
    )
    w2.kill()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS versions on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        Worker(SCRIPT, db.url, db.folder, "w0", "--hold", "0").proc.wait()  # create the DBOS schema once
        client = DBOSClient(system_database_url=db.url)
        run(db, report, client, Endpoints(db.url))
        client.destroy()
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
