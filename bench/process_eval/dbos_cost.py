"""DBOS, requirement 9 (time): the cost of one process step against one plain transaction and a route hop.

Measured in one run, every figure once per round (rounds interleaved), best of ``--rounds`` kept:
- plain: one SQLAlchemy transaction inserting one 340-byte row (the size of a step's checkpoint);
- journal: the hub's journal (``esb.journal.Journal``): ``received`` alone (one journal transaction) and a
  whole route hop (``received`` + ``event(delivered)`` + ``mark_delivered``);
- DBOS step: a workflow of 21 no-op steps minus one of 1 step, divided by 20 (each step returns 340 bytes);
- DBOS process: a 3-step workflow start to result (what an order costs besides its calls).

On SQLite, DBOS as shipped (rollback journal, ``synchronous=FULL``) and DBOS given an engine with the
journal's pragmas (WAL, ``synchronous=NORMAL``; the plain baseline uses them too) are both measured.

    python bench/process_eval/dbos_cost.py [--pg] [--n 300] [--rounds 5]
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from common import Database, Report, open_database, parse_args
from dbos import DBOS, SetWorkflowID

from esb.journal import Journal
from esb.message import Message

BODY = b'{"order":"1-ABC"}' * 20  # 340 bytes, as bench/journal_bench.py
PLAIN = sa.Table(
    "plain_rows",
    sa.MetaData(),
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("body", sa.LargeBinary),
)


def noop(i: int) -> str:
    """A step that does nothing and returns 340 bytes (the checkpoint's size)."""
    return BODY.decode()


@DBOS.workflow()
def steps_workflow(n: int) -> int:
    """Run ``n`` no-op steps."""
    for i in range(n):
        DBOS.run_step({"name": f"s{i}"}, noop, i)
    return n


def per_call(fn: object, n: int) -> float:
    """Return µs per call of ``fn`` (a callable of no arguments) over ``n`` calls."""
    began = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - began) / n * 1e6


def run_workflow(steps: int) -> None:
    """Start a workflow of ``steps`` steps and wait for its result."""
    with SetWorkflowID(str(uuid.uuid4())):
        DBOS.start_workflow(steps_workflow, steps).get_result()


def tuned_engine(url: str) -> sa.Engine:
    """Return an engine with the journal's SQLite pragmas (WAL, synchronous=NORMAL, busy timeout)."""
    engine = sa.create_engine(url)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def pragmas(dbapi_conn: object, _record: object) -> None:
            for pragma in (
                "busy_timeout = 30000",
                "journal_mode = WAL",
                "synchronous = NORMAL",
                "foreign_keys = ON",
            ):
                dbapi_conn.execute(f"PRAGMA {pragma}")  # type: ignore[attr-defined]

    return engine


def run(db: Database, report: Report, n: int, rounds: int) -> None:
    """Measure on ``db``: per DBOS variant, baselines and workflows interleaved in every round."""
    engine = tuned_engine(db.url)
    PLAIN.metadata.create_all(engine)
    journal = Journal(db.url)
    journal.connect()
    counter = iter(range(10**9))

    def plain() -> None:
        with engine.begin() as conn:
            conn.execute(PLAIN.insert().values(id=str(next(counter)), body=BODY))

    def received() -> None:
        journal.received("orders", Message(body=BODY, id=str(next(counter)), business_keys={"order_id": "1"}))

    def hop() -> None:
        m = Message(body=BODY, id=str(next(counter)), business_keys={"order_id": "1"})
        journal.received("orders", m)
        journal.event("orders", m, "delivered", endpoint="billing")
        journal.mark_delivered("orders", m, "billing")

    variants: list[tuple[str, sa.Engine | None]] = [("as shipped", None)]
    if db.url.startswith("sqlite"):
        variants.append(("WAL + synchronous=NORMAL", tuned_engine(db.url)))
    for variant, dbos_engine in variants:
        config: dict[str, object] = {
            "name": "esb_cost",
            "system_database_url": db.url,
            "log_level": "ERROR",
            "application_version": "cost",
        }
        if dbos_engine is not None:
            config["system_database_engine"] = dbos_engine
        DBOS(config=config)  # type: ignore[arg-type]
        DBOS.launch()
        best: dict[str, float] = {}
        wf_runs = max(n // 10, 10)
        for _ in range(rounds):
            for name, fn, count in (
                ("plain", plain, n),
                ("received", received, n),
                ("hop", hop, n),
                ("wf1", lambda: run_workflow(1), wf_runs),
                ("wf21", lambda: run_workflow(21), wf_runs),
                ("wf3", lambda: run_workflow(3), wf_runs),
            ):
                best[name] = min(best.get(name, float("inf")), per_call(fn, count))
        DBOS.destroy()
        step = (best["wf21"] - best["wf1"]) / 20
        report.figure(
            f"[{variant}] plain transaction (340-byte row) / journal.received / route hop"
            " (received + event + mark_delivered)",
            f"{best['plain']:.0f} / {best['received']:.0f} / {best['hop']:.0f} µs",
        )
        wfs = f"{best['wf1']:.0f} / {best['wf3']:.0f} / {best['wf21']:.0f} µs"
        report.figure(f"[{variant}] DBOS workflow of 1 / 3 / 21 steps", wfs)
        report.check(
            f"9a one process step <= 1.5x a route hop (DBOS {variant})",
            step <= 1.5 * best["hop"],
            f"{step:.0f} µs per step = {step / best['plain']:.2f}x a plain transaction,"
            f" {step / best['received']:.2f}x journal.received, {step / best['hop']:.2f}x a whole route hop",
        )
        report.check(
            f"9b a 3-step process <= 1.5x three route hops (DBOS {variant})",
            best["wf3"] <= 1.5 * 3 * best["hop"],
            f"{best['wf3']:.0f} µs = {best['wf3'] / (3 * best['hop']):.2f}x three route hops",
        )
    journal.close()
    engine.dispose()


def main() -> int:
    """Run on SQLite or PostgreSQL and print the figures."""
    args = parse_args(__doc__, {"n": 300, "rounds": 5})
    report = Report(f"DBOS step cost on {'PostgreSQL' if args.pg else 'SQLite'}")
    with open_database(args.pg) as db:
        run(db, report, args.n, args.rounds)
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
