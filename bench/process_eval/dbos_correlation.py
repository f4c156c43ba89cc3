"""DBOS, requirement 1: a reply correlated by business key, with a deadline.

Checks: a reply sent while the instance is still on an earlier step (before its ``recv``) is kept and
applied; a reply after the deadline, after the instance ended, or for no instance is refused by the
driver's ``deliver_reply`` (dead-lettered) -- and what DBOS.send itself does with those.

    python bench/process_eval/dbos_correlation.py [--pg]
"""

from __future__ import annotations

import time

import dbos_driver as drv
from common import Database, Report, load_definition, open_database, parse_args, wait_until
from dbos import DBOS, DBOSClient

TOPIC = "activate:oss.result"


def state(key: str) -> str | None:
    """Return the instance's end state event, or None while running."""
    return DBOS.get_event(drv.instance_id(key), "state", timeout_seconds=0)


def run(db: Database, report: Report) -> None:
    """Run the correlation checks on ``db``."""
    drv.configure(db.url)
    drv.launch()
    client = DBOSClient(system_database_url=db.url)
    definition = load_definition()
    definition["steps"][1]["await"]["deadline_s"] = 2.0

    # (a) a reply that arrives before the step waits: the instance is still in `reserve` (slow RIM).
    assert drv.ENDPOINTS is not None
    drv.ENDPOINTS.faults["rim.reserve"] = "slow:1.0"
    drv.start(definition, "early")
    time.sleep(0.3)
    before = drv.ENDPOINTS.count(drv.instance_id("early"), "oss.activate")
    outcome = drv.deliver_reply(client, "early", TOPIC, {"status": "ok"})
    wait_until(lambda: state("early") is not None, 10)
    report.check(
        "1a reply before the wait is kept",
        before == 0 and outcome == "sent" and state("early") == "completed",
        f"sent while activate not yet called (calls={before}): {outcome}; end state {state('early')}",
    )
    drv.ENDPOINTS.faults.clear()

    # (b) a reply after the deadline: the instance timed out and compensated.
    drv.start(definition, "late")
    wait_until(lambda: state("late") is not None, 10)
    outcome = drv.deliver_reply(client, "late", TOPIC, {"status": "ok"})
    released = drv.ENDPOINTS.count(drv.instance_id("late"), "rim.release")
    report.check(
        "1b deadline fires, late reply not applied",
        state("late") == "failed" and outcome.startswith("dead-letter") and released == 1,
        f"end state {state('late')}, release calls {released}, late reply -> {outcome}",
    )

    # (c) a reply after the deadline while the instance is still PENDING (compensating, slow undo).
    drv.ENDPOINTS.faults["oss.deactivate"] = "slow:1.5"
    drv.start(definition, "closing")
    wait_until(lambda: DBOS.get_event(drv.instance_id("closing"), f"closed:{TOPIC}", timeout_seconds=0), 10)
    outcome = drv.deliver_reply(client, "closing", TOPIC, {"status": "ok"})
    wait_until(lambda: state("closing") is not None, 10)
    report.check(
        "1c reply after the deadline, instance still running: dead-lettered",
        outcome.startswith("dead-letter") and state("closing") == "failed",
        f"-> {outcome}; end state {state('closing')}",
    )
    drv.ENDPOINTS.faults.clear()

    # (d) what DBOS itself does: send to an ended instance and to a missing one.
    raw_ended = "accepted"
    try:
        client.send(drv.instance_id("late"), {"status": "ok"}, TOPIC)
    except Exception as error:
        raw_ended = f"refused ({type(error).__name__}: {error})"
    raw_missing = "accepted"
    try:
        client.send(drv.instance_id("nobody"), {"status": "ok"}, TOPIC)
    except Exception as error:
        raw_missing = f"refused ({type(error).__name__})"
    report.check(
        "1d library alone refuses replies to ended instances",
        raw_ended != "accepted",
        f"DBOS.send to a SUCCESS instance: {raw_ended}; to a missing instance: {raw_missing}"
        " (accepted = stored in dbos.notifications, never read, nothing tells the sender)",
    )
    missing = drv.deliver_reply(client, "nobody", TOPIC, {"status": "ok"})
    report.check(
        "1e reply for no instance dead-lettered by the driver", missing.startswith("dead-letter"), missing
    )
    client.destroy()
    DBOS.destroy()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"DBOS correlation on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
