"""DBOS, requirements 3 and 4: durable timers across SIGKILL, and database restarts (PostgreSQL).

3. Worker 1 starts instances that await the OSS reply with a deadline, and is SIGKILLed. (a) It stays
   down past the deadline, then worker 2 starts: the deadline must fire at once. (b) Worker 2's own
   instances: it is killed and restarted within the deadline: the deadline must fire at the original
   time, not a full deadline after the restart. No step may be redone.
4. (--pg only) PostgreSQL is stopped for 5 s while instances wait, again while a restarted worker's
   startup recovery runs, and again (for 3 s, 50 ms in) while a live worker recovers a dead executor's
   200 instances with ``DBOS._recover_pending_workflows`` (dbos-transact-py issue #716 stranded those in
   PENDING on 2.23): every instance must still end (deadline fired, compensation done), none stuck.

    python bench/process_eval/dbos_durability.py [--pg]
"""

from __future__ import annotations

import time

from common import Database, Endpoints, Report, open_database, parse_args, wait_until
from dbos import DBOSClient
from workers import Worker

SCRIPT = "dbos_driver.py"


def ended(client: DBOSClient, ids: list[str]) -> dict[str, str | None]:
    """Return each instance's end state (None while it runs); tolerate a database that is down."""
    out: dict[str, str | None] = {}
    for wid in ids:
        try:
            out[wid] = client.get_event(wid, "state", timeout_seconds=0)
        except Exception:
            out[wid] = None
    return out


def waiting(client: DBOSClient, ids: list[str]) -> bool:
    """Return True when every instance has reached the awaiting step."""
    try:
        return all(
            client.get_event(w, "closed:activate:oss.result", timeout_seconds=0) is None
            and client.get_event(w, "await:activate:oss.result", timeout_seconds=0)
            for w in ids
        )
    except Exception:
        return False


def fire_delay(calls: Endpoints, wid: str) -> float:
    """Seconds from the end of the instance's activate call to the start of its compensation."""
    rows = [r for r in calls.calls() if r.instance == wid]
    activated = max(r.ended or 0 for r in rows if r.step == "activate")
    released = min((r.started for r in rows if r.step == "undo:activate"), default=float("nan"))
    return released - activated


def timers(db: Database, report: Report, client: DBOSClient, calls: Endpoints) -> None:
    """Requirement 3 on ``db``."""
    folder = db.folder
    assert folder is not None
    a_ids = [f"order-a{i}" for i in range(3)]
    w1 = Worker(SCRIPT, db.url, folder, "w1", "--start", "3", "--prefix", "a", "--deadline", "4")
    w1.ready()
    wait_until(lambda: waiting(client, a_ids), 20)
    w1.kill()
    killed_at = time.time()
    time.sleep(6)  # down past the 4 s deadline
    b_ids = [f"order-b{i}" for i in range(3)]
    w2 = Worker(SCRIPT, db.url, folder, "w2", "--start", "3", "--prefix", "b", "--deadline", "8")
    w2.ready()
    restarted = time.time()
    done = wait_until(lambda: all(ended(client, a_ids).values()), 30)
    after = (
        max(
            min(r.started for r in calls.calls() if r.instance == w and r.step == "undo:activate")
            for w in a_ids
        )
        - restarted
        if done
        else float("nan")
    )
    report.check(
        "3a deadline passed while down fires on restart",
        done and set(ended(client, a_ids).values()) == {"failed"},
        f"states {ended(client, a_ids)}; compensation began {after:.2f} s after the restart"
        f" (down {restarted - killed_at:.1f} s)",
    )
    wait_until(lambda: waiting(client, b_ids), 20)
    w2.kill()
    time.sleep(1.0)
    w3 = Worker(SCRIPT, db.url, folder, "w3")
    w3.ready()
    done = wait_until(lambda: all(ended(client, b_ids).values()), 30)
    delays = [fire_delay(calls, w) for w in b_ids]
    report.check(
        "3b deadline within the downtime keeps its original time",
        done and all(7.0 <= d <= 10.5 for d in delays),
        f"states {ended(client, b_ids)}; fired {', '.join(f'{d:.2f}' for d in delays)} s after activate"
        " (deadline 8 s, killed and restarted in between)",
    )
    dups = [d for d in calls.duplicates() if not d[1].startswith("undo:")]
    report.check("3c no step redone after SIGKILL", not dups, f"steps called twice: {dups}")
    w3.kill()


def db_restarts(db: Database, report: Report, client: DBOSClient, calls: Endpoints) -> None:
    """Requirement 4 on PostgreSQL: stop/start the server while waiting and while recovery runs."""
    folder = db.folder
    assert folder is not None
    assert db.server is not None
    c_ids = [f"order-c{i}" for i in range(5)]
    w4 = Worker(SCRIPT, db.url, folder, "w4", "--start", "5", "--prefix", "c", "--deadline", "6")
    w4.ready()
    wait_until(lambda: waiting(client, c_ids), 20)
    port = db.server.port
    db.server.stop()
    time.sleep(5)
    db.server.start(port)
    done = wait_until(lambda: all(ended(client, c_ids).values()), 40)
    report.check(
        "4a PostgreSQL restarted while instances wait: none stuck",
        done and set(ended(client, c_ids).values()) == {"failed"},
        f"states {ended(client, c_ids)}",
    )
    e_ids = [f"order-e{i}" for i in range(20)]
    w5 = Worker(SCRIPT, db.url, folder, "w5", "--start", "20", "--prefix", "e", "--deadline", "10")
    w5.ready()
    w4.kill()
    wait_until(lambda: waiting(client, e_ids), 30)
    w5.kill()
    w6 = Worker(SCRIPT, db.url, folder, "w6", env={"ESB_EVAL_LOG": "INFO"})
    in_recovery = wait_until(
        lambda: "Recovering 20 workflows" in w6.log.read_text(errors="replace"), 30, 0.01
    )
    db.server.stop()  # the moment w6 logs that its recovery starts
    time.sleep(5)
    db.server.start(port)
    w6_alive = w6.proc.poll() is None
    if not w6_alive:
        w6 = Worker(SCRIPT, db.url, folder, "w7")  # a supervisor would restart it; so do we
        w6.ready()
    done = wait_until(lambda: all(ended(client, e_ids).values()), 60)
    text = w6.log.read_text(errors="replace")
    report.figure(
        "recovering worker's log during the outage",
        f"{text.count('when recovering workflow')} 'Exception encountered when recovering workflow',"
        f" {text.count('OperationalError')} OperationalError lines",
    )
    states = ended(client, e_ids)
    stuck = [w for w, s in states.items() if s is None]
    report.check(
        "4b PostgreSQL restarted during recovery: none stuck",
        done and not stuck,
        f"{len(e_ids) - len(stuck)}/{len(e_ids)} ended; stuck {stuck};"
        " database stopped at the recovery log line:"
        f" {in_recovery}; recovering worker survived the outage: {w6_alive}",
    )
    if stuck:
        print(w6.tail(), flush=True)
    dups = [d for d in calls.duplicates() if not d[1].startswith("undo:")]
    report.check("4c no step redone across the restarts", not dups, f"steps called twice: {dups}")
    w6.kill()
    explicit_recovery(db, report, client, calls)


def explicit_recovery(db: Database, report: Report, client: DBOSClient, calls: Endpoints) -> None:
    """Stop PostgreSQL 50 ms into a live worker's recovery of a dead executor's 200 instances."""
    import threading

    import dbos_driver as drv
    from dbos import DBOS

    assert db.folder is not None
    assert db.server is not None
    ids = [f"order-x{i}" for i in range(200)]
    wx = Worker(
        SCRIPT,
        db.url,
        db.folder,
        "wx",
        "--executor",
        "X",
        "--start",
        "200",
        "--prefix",
        "x",
        "--deadline",
        "20",
    )
    wx.ready(120)
    wait_until(lambda: waiting(client, ids), 60, 0.5)
    wx.kill()
    drv.configure(db.url, executor_id="Z")
    drv.launch()
    port = db.server.port

    def outage() -> None:
        time.sleep(0.05)
        db.server.stop()
        time.sleep(3)
        db.server.start(port)

    stopper = threading.Thread(target=outage)
    stopper.start()
    error = ""
    began = time.monotonic()
    try:
        handles = DBOS._recover_pending_workflows(["X"])
    except Exception as exc:
        handles, error = [], f"{type(exc).__name__}: {str(exc)[:120]}"
    took = time.monotonic() - began
    stopper.join()
    wait_until(lambda: all(ended(client, ids).values()), 90, 1.0)
    states = ended(client, ids)
    stuck = [w for w, s in states.items() if s is None]
    pending_x = client.list_workflows(
        workflow_id_prefix="order-x", status="PENDING", executor_id="X", load_input=False
    )
    report.check(
        "4d PostgreSQL restarted during the recovery of a dead executor: none stuck",
        not stuck,
        f"{len(ids) - len(stuck)}/{len(ids)} ended; the recovery call took {took:.1f} s"
        " (the 3 s outage began 50 ms in)"
        f" and returned {len(handles)} handles{'; raised ' + error if error else ''};"
        f" still PENDING on the dead executor: {len(pending_x)}",
    )
    if stuck and not error:
        retry = DBOS._recover_pending_workflows(["X"])
        again = wait_until(lambda: all(ended(client, ids).values()), 90, 1.0)
        report.figure("a second recovery call", f"{len(retry)} handles; all ended after it: {again}")
    DBOS.destroy()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS durability on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        client = DBOSClient(system_database_url=db.url)
        calls = Endpoints(db.url)
        Worker(SCRIPT, db.url, db.folder, "w0", "--hold", "0").proc.wait()  # create the DBOS schema once
        timers(db, report, client, calls)
        if args.pg:
            db_restarts(db, report, client, calls)
        else:
            print(
                "      requirement 4 (database restart) runs with --pg only: SQLite is a file, not a server"
            )
        client.destroy()
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
