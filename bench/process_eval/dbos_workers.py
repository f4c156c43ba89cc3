"""DBOS, requirement 6: two worker processes on one database never run the same instance at once, and
the instances of a dead worker are taken over.

a. Two workers with their own executor ids share a queue of 30 instances (3 steps of 0.2 s each).
b. The trap: a second worker started with the default executor id ("local") while the first one runs.
c. A worker is SIGKILLed mid-flight: does the other (alive) worker take its instances over by itself?
   Then the takeover the library leaves to us: ``DBOS._recover_pending_workflows([dead_executor])``.

    python bench/process_eval/dbos_workers.py [--pg]
"""

from __future__ import annotations

import time

from common import Database, Endpoints, Report, open_database, parse_args, wait_until
from dbos import DBOSClient
from workers import Worker

SCRIPT = "dbos_driver.py"
QUICK = ("--definition", "quick_process.yaml")
SLOW = {
    "ESB_EVAL_FAULTS": '{"rim.reserve": "slow:0.2", "oss.activate": "slow:0.2", "billing.create": "slow:0.2"}'
}


def statuses(client: DBOSClient, prefix: str) -> dict[str, int]:
    """Return the count of instances per DBOS status whose id starts with ``prefix``."""
    out: dict[str, int] = {}
    for w in client.list_workflows(
        workflow_id_prefix=prefix, name="run_process", load_input=False, load_output=False
    ):
        out[w.status] = out.get(w.status, 0) + 1
    return out


def run(db: Database, report: Report, client: DBOSClient, calls: Endpoints) -> None:
    """Run the three cases on ``db``."""
    folder = db.folder
    assert folder is not None
    wa = Worker(SCRIPT, db.url, folder, "wa", "--executor", "A", *QUICK, env=SLOW)
    wb = Worker(SCRIPT, db.url, folder, "wb", "--executor", "B", *QUICK, env=SLOW)
    wa.ready(), wb.ready()
    feeder = Worker(SCRIPT, db.url, folder, "feed", "--executor", "F", "--start", "30", "--prefix", "q",
                    "--queued", "--hold", "0", *QUICK)  # fmt: skip
    feeder.proc.wait()
    done = wait_until(lambda: statuses(client, "order-q").get("SUCCESS") == 30, 90)
    pids = {r.pid for r in calls.calls() if r.instance.startswith("order-q")}
    by = {
        pid: len({r.instance for r in calls.calls() if r.pid == pid and r.instance.startswith("order-q")})
        for pid in pids
    }
    report.check(
        "6a two workers, one queue: no instance run twice",
        done and not calls.overlaps() and not calls.duplicates(),
        f"{statuses(client, 'order-q')}; instances per worker pid {by}; overlapping calls {calls.overlaps()};"
        f" duplicate calls {calls.duplicates()}",
    )
    wa.kill(), wb.kill()

    slow = {"ESB_EVAL_FAULTS": '{"rim.reserve": "slow:3"}'}
    w1 = Worker(SCRIPT, db.url, folder, "w1", "--start", "5", "--prefix", "l", *QUICK, env=slow)
    w1.ready()
    time.sleep(0.5)
    w2 = Worker(SCRIPT, db.url, folder, "w2", *QUICK, env=slow)  # same default executor id "local"
    w2.ready()
    wait_until(
        lambda: (
            statuses(client, "order-l").get("SUCCESS", 0) + statuses(client, "order-l").get("ERROR", 0) == 5
        ),
        40,
    )
    twice = [d for d in calls.duplicates() if d[0].startswith("order-l")]
    overlap = [o for o in calls.overlaps() if o[0].startswith("order-l")]
    report.check(
        "6b a second worker with the same executor id does not re-run live instances",
        not twice and not overlap,
        f"steps called twice {twice}; concurrently {overlap}; statuses {statuses(client, 'order-l')}",
    )
    w1.kill(), w2.kill()

    wx = Worker(
        SCRIPT, db.url, folder, "wx", "--executor", "X", "--start", "5", "--prefix", "t", *QUICK, env=slow
    )
    wy = Worker(SCRIPT, db.url, folder, "wy", "--executor", "Y", *QUICK, env=slow)
    wx.ready(), wy.ready()
    time.sleep(1.0)
    wx.kill()
    taken = wait_until(lambda: statuses(client, "order-t").get("SUCCESS") == 5, 15)
    report.check(
        "6c an alive worker takes over a dead worker's instances by itself",
        taken,
        f"15 s after SIGKILL of executor X: {statuses(client, 'order-t')}"
        " (no heartbeat or lease in the library;"
        " recovery is per executor id, at its own restart or by Conductor)",
    )
    wz = Worker(SCRIPT, db.url, folder, "wz", "--executor", "Z", "--recover", "X", *QUICK)
    wz.ready()
    taken = wait_until(lambda: statuses(client, "order-t").get("SUCCESS") == 5, 30)
    twice = [d for d in calls.duplicates() if d[0].startswith("order-t")]
    report.check(
        "6d takeover by an explicit recovery of the dead executor",
        taken and not [o for o in calls.overlaps() if o[0].startswith("order-t")],
        f"{statuses(client, 'order-t')}; the step running at the kill was redone (at-least-once): {twice}",
    )
    wy.kill(), wz.kill()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS two workers on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        Worker(SCRIPT, db.url, db.folder, "w0", "--hold", "0").proc.wait()  # create the DBOS schema once
        client = DBOSClient(system_database_url=db.url)
        run(db, report, client, Endpoints(db.url))
        client.destroy()
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
