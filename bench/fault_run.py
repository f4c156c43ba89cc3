"""Fault runs on real servers: N CRM orders per scenario through 2 `esb run --env production` processes.

    .venv/bin/python bench/fault_run.py [--messages 10000] [--only kill,rabbitmq,postgres]

Starts a throwaway RabbitMQ node and PostgreSQL server on loopback (as the tests do), then for each
scenario (hub processes SIGKILLed and restarted three times; RabbitMQ stopped and started; PostgreSQL
stopped and started) prints the counts: planned outcomes, the journal's outcomes and delivery rows,
what the simulated IOM received (distinct, and duplicates its idempotent receiver absorbed), and the
verdict. Exit 1 if any scenario lost, duplicated past the receiver or misjournaled a message.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers import throwaway_servers  # bench/ is not a package: its folder is on sys.path

from tests.integration.faults import Servers, run_scenario


def main() -> int:
    """Run the scenarios and print their counts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--only", default="kill,rabbitmq,postgres")
    args = parser.parse_args()
    failed = False
    with throwaway_servers() as (rabbit, pg):
        servers = Servers(
            new_broker_url=rabbit.create_vhost, new_journal_url=pg.create_database,
            stop_broker=rabbit.stop, start_broker=rabbit.start,
            stop_database=pg.stop, start_database=lambda: pg.start(pg.port),
        )  # fmt: skip
        for fault in args.only.split(","):
            work = Path(tempfile.mkdtemp(prefix=f"esb-fault-{fault}-"))
            outcome = run_scenario(servers, fault, args.messages, work)
            print(outcome.report(), flush=True)
            failed = failed or bool(outcome.problems())
            if not outcome.problems():
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"  logs kept in {work}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
