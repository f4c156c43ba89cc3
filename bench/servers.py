"""The throwaway RabbitMQ node and PostgreSQL server every RabbitMQ bench runs on (loopback only).

``with throwaway_servers() as (rabbit, pg):`` starts both with the test fixtures' classes and removes them
afterwards; exits with a clear message when the PostgreSQL binaries are not installed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.pg_server import PostgresServer, _run_as, find_bin_dir
from tests.integration.rabbit_server import RabbitServer


@contextmanager
def throwaway_servers() -> Iterator[tuple[RabbitServer, PostgresServer]]:
    """A started RabbitMQ node (with the test user) and PostgreSQL server; both removed on exit."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found (make test-servers)")
    pg = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="esb-pg-")), _run_as())
    rabbit = RabbitServer(Path(tempfile.mkdtemp(prefix="esb-rabbit-")))
    try:
        pg.init()
        pg.start()
        rabbit.start()
        rabbit.setup_user()
        yield rabbit, pg
    finally:
        rabbit.cleanup()
        pg.stop()
        shutil.rmtree(pg.base, ignore_errors=True)


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL server alone (the journal benches), removed on exit."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found (make test-servers)")
    pg = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="esb-pg-")), _run_as())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.base, ignore_errors=True)
