"""SpiffWorkflow, requirements 3, 4 and 6, with the driver's own table, poller and lease.

3. A worker starts instances awaiting the OSS reply with a deadline and is SIGKILLed; restarted after
   the deadline, and (others) within it: the deadline must fire, at its original time.
4. (--pg only) PostgreSQL stopped for 5 s while instances wait: none stuck afterwards.
6. Two workers poll one database: no step run twice concurrently; a worker SIGKILLed in a step: its
   instance is taken over when its lease (3 s here) expires.

Spiff itself has no database, timer service or lease: every verdict here is about the ~150 lines of
spiff_driver.py that provide them, and shows how much a Spiff-based engine must add.

    python bench/process_eval/spiff_durability.py [--pg]
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from common import Database, Endpoints, Report, open_database, parse_args, wait_until
from spiff_driver import INSTANCES
from workers import Worker

SCRIPT = "spiff_driver.py"
LEASE = {"ESB_EVAL_LEASE": "3"}


def statuses(engine: sa.Engine, prefix: str) -> dict[str, str]:
    """Return id -> status of the instances whose id starts with ``prefix``; {} if the database is down."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(INSTANCES.c.id, INSTANCES.c.status).where(INSTANCES.c.id.startswith(prefix))
            )
            return {r.id: r.status for r in rows}
    except Exception:
        return {}


def ended(engine: sa.Engine, prefix: str, n: int) -> bool:
    """Return True when ``n`` instances with ``prefix`` ended."""
    s = statuses(engine, prefix)
    return len(s) == n and all(v in ("completed", "failed", "compensation_failed") for v in s.values())


def fire_delay(calls: Endpoints, wid: str) -> float:
    """Seconds from the end of the activate call to the start of its undo."""
    rows = [r for r in calls.calls() if r.instance == wid]
    activated = max(r.ended or 0 for r in rows if r.step == "activate")
    return min((r.started for r in rows if r.step == "undo:activate"), default=float("nan")) - activated


def run(db: Database, report: Report, pg: bool) -> None:
    """Run the cases on ``db``."""
    folder = db.folder
    assert folder is not None
    engine = db.engine()
    calls = Endpoints(db.url)
    w1 = Worker(SCRIPT, db.url, folder, "s1", "--start", "3", "--prefix", "a", "--deadline", "4", env=LEASE)
    w1.ready()
    w1.kill()
    time.sleep(6)
    restarted = time.time()
    w2 = Worker(SCRIPT, db.url, folder, "s2", "--start", "3", "--prefix", "b", "--deadline", "8", env=LEASE)
    w2.ready()
    done = wait_until(lambda: ended(engine, "order-a", 3), 20)
    first = min(
        (r.started for r in calls.calls() if r.instance.startswith("order-a") and r.step == "undo:activate"),
        default=float("nan"),
    )
    report.check(
        "3a deadline passed while down fires on restart",
        done and set(statuses(engine, "order-a").values()) == {"failed"},
        f"{statuses(engine, 'order-a')}; compensation began {first - restarted:.2f} s"
        " after the worker was restarted" + ("" if done else f"\n{w2.tail()}"),
    )
    w2.kill()
    time.sleep(1.0)
    w3 = Worker(SCRIPT, db.url, folder, "s3", env=LEASE)
    w3.ready()
    done = wait_until(lambda: ended(engine, "order-b", 3), 20)
    delays = [fire_delay(calls, f"order-b{i}") for i in range(3)]
    report.check(
        "3b deadline within the downtime keeps its original time",
        done and all(7.5 <= d <= 10.5 for d in delays),
        f"{statuses(engine, 'order-b')}; fired {', '.join(f'{d:.2f}' for d in delays)} s after activate"
        " (deadline 8 s)",
    )
    dups = [d for d in calls.duplicates() if not d[1].startswith("undo:")]
    report.check(
        "3c no step redone after SIGKILL (instances killed while waiting)",
        not dups,
        f"steps called twice: {dups}",
    )

    if pg:
        assert db.server is not None
        w3b = Worker(
            SCRIPT, db.url, folder, "s3b", "--start", "5", "--prefix", "c", "--deadline", "6", env=LEASE
        )
        w3b.ready()
        port = db.server.port
        db.server.stop()
        time.sleep(5)
        db.server.start(port)
        done = wait_until(lambda: ended(engine, "order-c", 5), 30)
        report.check(
            "4a PostgreSQL restarted while instances wait: none stuck", done, f"{statuses(engine, 'order-c')}"
        )
        w3b.kill()
    w3.kill()

    slow = {
        **LEASE,
        "ESB_EVAL_FAULTS": '{"rim.reserve": "slow:0.2", "oss.activate": "slow:0.2",'
        ' "billing.create": "slow:0.2"}',
    }
    wa = Worker(SCRIPT, db.url, folder, "sa", "--start", "15", "--prefix", "q", "--deadline", "1", env=slow)
    wb = Worker(SCRIPT, db.url, folder, "sb", "--start", "15", "--prefix", "r", "--deadline", "1", env=slow)
    wa.ready(), wb.ready()
    done = wait_until(lambda: ended(engine, "order-q", 15) and ended(engine, "order-r", 15), 60)
    overlaps = [o for o in calls.overlaps() if o[0][:7] in ("order-q", "order-r")]
    dups = [
        d for d in calls.duplicates() if d[0][:7] in ("order-q", "order-r") and not d[1].startswith("undo:")
    ]
    not_ended = {
        k: v
        for k, v in {**statuses(engine, "order-q"), **statuses(engine, "order-r")}.items()
        if v != "failed"
    }
    fired_by = {
        r.pid for r in calls.calls() if r.step == "undo:activate" and r.instance[:7] in ("order-q", "order-r")
    }
    report.check(
        "6a two workers polling one database: no instance advanced twice",
        done and not overlaps and not dups,
        f"30 instances, deadlines fired by pids {sorted(fired_by)}; concurrent calls {overlaps};"
        f" repeated {dups}" + ("" if done else f"; not ended: {not_ended}"),
    )
    wa.kill(), wb.kill()
    w4 = Worker(SCRIPT, db.url, folder, "s4", "--start", "1", "--prefix", "t", "--deadline", "2",
                env={**LEASE, "ESB_EVAL_FAULTS": '{"oss.activate": "slow:3"}'})  # fmt: skip
    w5 = Worker(SCRIPT, db.url, folder, "s5", env=LEASE)
    w5.ready()
    wait_until(lambda: any(r.instance == "order-t0" and r.step == "activate" for r in calls.calls()), 20)
    w4.kill()
    taken = wait_until(lambda: ended(engine, "order-t", 1), 30)
    n = calls.count("order-t0", "oss.activate")
    report.check(
        "6b a dead worker's instance is taken over after its lease",
        taken,
        f"{statuses(engine, 'order-t')}; the step in flight at the kill ran {n} times (at-least-once)",
    )
    w5.kill()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"SpiffWorkflow durability on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report, args.pg)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
