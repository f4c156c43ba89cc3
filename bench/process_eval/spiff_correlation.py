"""SpiffWorkflow, requirement 1: a reply correlated by business key, with a deadline.

Correlation by business key is the driver's (instance id from the key); the message is handed to
Spiff with ``BpmnWorkflow.send_event``. Checks: a reply that arrives while the instance is still on an
earlier step; a reply after the deadline; after the end; for no instance.

    python bench/process_eval/spiff_correlation.py [--pg]
"""

from __future__ import annotations

import threading
import time

from common import Database, Report, load_definition, open_database, parse_args, wait_until
from spiff_driver import Driver
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition


def run(db: Database, report: Report) -> None:
    """Run the correlation checks on ``db``."""
    definition = load_definition()
    definition["steps"][1]["await"]["deadline_s"] = 2.0
    driver = Driver(db.url, definition)

    other = Driver(db.url, definition)  # a second worker receives the reply
    driver.endpoints.faults["rim.reserve"] = "slow:1.0"
    starter = threading.Thread(target=driver.start, args=("early",))
    starter.start()
    time.sleep(0.3)
    busy = other.deliver("early", "oss.result", {"status": "ok"})
    starter.join()
    driver.endpoints.faults.clear()
    wf = BpmnWorkflow(driver.spec, script_engine=driver._engine("raw"))  # the library alone, before its wait
    try:
        wf.send_event(BpmnEvent(MessageEventDefinition("oss.result"), {"status": "ok"}))
        raw = "accepted"
    except Exception as error:
        raw = f"refused: {type(error).__name__}: {error}"
    report.check(
        "1a reply before the wait is kept",
        raw == "accepted",
        f"BpmnWorkflow.send_event before the catch event waits: {raw};"
        " through the driver while another worker"
        f" holds the instance: {busy} (kept only if the driver adds an inbox and redelivers)",
    )

    driver.start("ontime")
    outcome = driver.deliver("ontime", "oss.result", {"status": "ok"})
    report.check(
        "1b reply while waiting is applied",
        driver.status("order-ontime") == "completed",
        f"{outcome}; {driver.status('order-ontime')}",
    )

    driver.start("raw-late")
    time.sleep(2.2)
    wf = driver._load("order-raw-late")
    try:
        wf.send_event(BpmnEvent(MessageEventDefinition("oss.result"), {"status": "ok"}))
        sent = "accepted without error"
    except Exception as error:
        sent = f"refused ({error})"
    try:
        wf.do_engine_steps()
        path = f"reply path taken (completed={wf.completed})"
    except Exception as error:
        path = f"timeout path taken ({error})"
    report.check(
        "1c' library alone: a reply after the deadline is not applied, and it says so",
        path.startswith("timeout") and sent.startswith("refused"),
        f"send_event {sent}; then {path} (the late reply is dropped silently unless the driver calls"
        " refresh_timers first, which makes send_event refuse it)",
    )
    driver.start("late")
    wait_until(lambda: (driver.poll() or True) and driver.status("order-late") != "waiting", 6, 0.2)
    outcome = driver.deliver("late", "oss.result", {"status": "ok"})
    released = driver.endpoints.count("order-late", "rim.release")
    report.check(
        "1c deadline fires (poller), late reply not applied",
        driver.status("order-late") == "failed" and outcome.startswith("dead-letter") and released == 1,
        f"status {driver.status('order-late')}, release calls {released}, late reply -> {outcome}",
    )
    missing = driver.deliver("nobody", "oss.result", {"status": "ok"})
    report.check("1d reply for no instance dead-lettered", missing.startswith("dead-letter"), missing)


def main() -> int:
    """Run on SQLite or PostgreSQL and print the verdicts."""
    args = parse_args(__doc__)
    report = Report(f"SpiffWorkflow correlation on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
