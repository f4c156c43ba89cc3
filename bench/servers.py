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


def kept_postgres(base: Path) -> PostgresServer:
    """A PostgreSQL server whose cluster lives in ``base`` across commands (a 10 M journal filled once and
    benched by several scripts); ``base/port`` remembers its port. Not started: see :func:`main`."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found (make test-servers)")
    pg = PostgresServer(bin_dir, base, _run_as())
    port_file = base / "port"
    if port_file.exists():
        pg.port = int(port_file.read_text())
    return pg


def main() -> None:
    """``servers.py postgres start|stop|restart BASE``: a kept throwaway server on loopback (start prints the
    URL of its ``journal`` database, created on first start); ``stop`` leaves the cluster for ``rm -r``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("server", choices=["postgres"])
    parser.add_argument("action", choices=["start", "stop", "restart"])
    parser.add_argument("base", type=Path, help="the cluster's folder (created by the first start)")
    args = parser.parse_args()
    base = args.base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    pg = kept_postgres(base)
    if args.action in ("stop", "restart"):
        pg.stop()
    if args.action in ("start", "restart"):
        fresh = not pg.data.exists()
        if fresh:
            pg.init()
        pg.start(pg.port or None)
        (base / "port").write_text(str(pg.port))
        if fresh:
            pg._admin('CREATE DATABASE "journal"')
        print(pg.url("journal"))


if __name__ == "__main__":
    main()
