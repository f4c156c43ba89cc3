"""SpiffWorkflow, requirement 9: the cost of one process step, and memory with N waiting instances.

A step costs: Spiff running the script task, serializing the whole workflow to JSON and one UPDATE of
the instance's row (the driver saves after every task). Measured as (21-step process - 1-step process)
/ 20, with a no-op call, against one plain transaction inserting a 340-byte row and a route hop of the
journal (received + event + mark_delivered), in the same run, best of ``--rounds``. Then ``--n``
instances are started and left waiting (state only in the database): RSS at each quarter.

    python bench/process_eval/spiff_cost.py [--pg] [--n 10000] [--rounds 3]
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from common import Database, Report, open_database, parse_args, rss_mb
from dbos_cost import BODY, PLAIN, per_call, tuned_engine
from spiff_driver import Driver
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from esb.journal import Journal
from esb.message import Message


class NoopDriver(Driver):
    """The driver with calls that do nothing (the cost of the engine and the persistence alone)."""

    def _engine(self, instance: str) -> PythonScriptEngine:
        return PythonScriptEngine(
            environment=TaskDataEnvironment({"call": lambda e, s: BODY.decode(), "fail": None})
        )


def definition(steps: int, await_reply: bool = False) -> dict[str, Any]:
    """Return a process of ``steps`` calls (the last one awaiting a reply if ``await_reply``)."""
    calls: list[dict[str, Any]] = [{"id": f"s{i}", "call": "x.y"} for i in range(steps)]
    if await_reply:
        calls[-1]["await"] = {"reply": "r", "deadline_s": 3600}
    return {"process": f"cost{steps}{'w' if await_reply else ''}", "version": 1, "steps": calls}


def run(db: Database, report: Report, n: int, rounds: int) -> None:
    """Measure on ``db``."""
    engine = tuned_engine(db.url)
    PLAIN.metadata.create_all(engine)
    journal = Journal(db.url)
    journal.connect()
    one, many = NoopDriver(db.url, definition(1)), NoopDriver(db.url, definition(21))
    counter = iter(range(10**9))

    def plain() -> None:
        with engine.begin() as conn:
            conn.execute(PLAIN.insert().values(id=str(next(counter)), body=BODY))

    def hop() -> None:
        m = Message(body=BODY, id=str(next(counter)), business_keys={"order_id": "1"})
        journal.received("orders", m)
        journal.event("orders", m, "delivered", endpoint="billing")
        journal.mark_delivered("orders", m, "billing")

    best: dict[str, float] = {}
    runs = max(n // 500, 10)
    for _ in range(rounds):
        for name, fn, count in (
            ("plain", plain, 200),
            ("hop", hop, 200),
            ("p1", lambda: one.start(str(next(counter))), runs),
            ("p21", lambda: many.start(str(next(counter))), runs),
        ):
            best[name] = min(best.get(name, float("inf")), per_call(fn, count))
    step = (best["p21"] - best["p1"]) / 20
    report.figure("plain transaction / route hop", f"{best['plain']:.0f} / {best['hop']:.0f} µs")
    report.figure(
        "Spiff process of 1 / 21 steps (start to end, saved after each task)",
        f"{best['p1']:.0f} / {best['p21']:.0f} µs",
    )
    with one.engine.connect() as conn:
        sizes = conn.execute(
            sa.select(sa.func.max(sa.func.length(sa.text("state")))).select_from(sa.text("spiff_instances"))
        ).scalar()
    report.figure("largest serialized instance (21 steps)", f"{sizes} bytes")
    report.check(
        "9a one process step <= 1.5x a route hop",
        step <= 1.5 * best["hop"],
        f"{step:.0f} µs per step = {step / best['plain']:.2f}x a plain transaction,"
        f" {step / best['hop']:.2f}x a route hop"
        " (each step re-serializes and rewrites the whole instance: grows with the process)",
    )
    waiting = NoopDriver(db.url, definition(3, await_reply=True))
    base = rss_mb()
    marks = []
    began = time.perf_counter()
    for i in range(n):
        waiting.start(f"w{i}")
        if (i + 1) % (n // 4) == 0:
            marks.append(rss_mb())
            report.figure(
                f"{i + 1} waiting",
                f"RSS {marks[-1]:.0f} MB (base {base:.0f} MB), {time.perf_counter() - began:.0f} s",
            )
    slope = (marks[-1] - marks[0]) / (0.75 * n) * 1000
    report.check(
        f"9c memory flat with {n} waiting instances",
        slope < 1.0,
        f"+{slope:.2f} KB per further waiting instance (state only in the database)",
    )
    journal.close()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the figures."""
    args = parse_args(__doc__, {"n": 10000, "rounds": 3})
    report = Report(f"SpiffWorkflow step cost and memory on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report, args.n, args.rounds)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
