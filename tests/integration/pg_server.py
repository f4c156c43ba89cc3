"""A throwaway PostgreSQL server on loopback for integration tests (Debian's binaries, no service).

Use the ``postgres_server`` fixture (session scope): it finds ``initdb``/``pg_ctl`` under
``/usr/lib/postgresql/*/bin`` (or on ``PATH``), runs ``initdb`` into a temp folder (as the ``postgres``
user when the tests run as root: initdb refuses root), starts the server on 127.0.0.1 on a free high
port, and stops it and removes the folder at the end. ``server.create_database()`` gives each test a
fresh database and its ``postgresql+psycopg://`` URL.

Missing binaries skip the tests with the reason, unless ``ESB_REQUIRE_SERVERS=1``, which fails them.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from esb.journal import Journal

USER = "esb"
PASSWORD = "esb-test-pw"  # a throwaway server on loopback; the URL carries it to test masking
_counter = itertools.count(1)


def servers_required() -> bool:
    """Return True when missing servers must fail the tests instead of skipping them."""
    return os.environ.get("ESB_REQUIRE_SERVERS") == "1"  # as tests/conftest.py reads it


def unavailable(reason: str) -> None:
    """Skip (or fail, under ``ESB_REQUIRE_SERVERS=1``) because the server cannot be started."""
    if servers_required():
        pytest.fail(f"ESB_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def find_bin_dir() -> Path | None:
    """Return the newest PostgreSQL bin folder holding ``initdb`` and ``pg_ctl``, or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0), reverse=True
    )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temp folder, listening on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path, base: Path, run_as: str | None) -> None:
        self.bin_dir, self.base, self.run_as = bin_dir, base, run_as
        self.data = base / "data"
        self.port = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=self.base)

    def init(self) -> None:
        """Create the cluster with a password-protected superuser for TCP and trust on the socket."""
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.run_as:
            shutil.chown(self.base, self.run_as)
            shutil.chown(pwfile, self.run_as)
        done = self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")

    def start(self, port: int | None = None) -> None:
        """Start on ``port`` or a free port (retrying if another process took it first); wait until ready.

        ``stop()`` then ``start(server.port)`` restarts the server where clients expect it (fault tests).
        """
        options = "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        options += f"-c full_page_writes=off -c unix_socket_directories={self.base} -c max_connections=200"
        last = ""
        for _ in range(3):
            self.port = port or free_port()
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60",
                "-o", f"{options} -p {self.port}", "start",
            )  # fmt: skip
            if done.returncode == 0:
                return
            last = done.stderr or done.stdout
            with contextlib.suppress(OSError):
                last += (self.base / "server.log").read_text()[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs (``fast``: a clean shutdown; ``immediate`` when its data is thrown
        away next)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        """Return the SQLAlchemy URL of ``database``."""
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # names come from this module only

    def create_database(self, prefix: str = "test") -> str:
        """Create a fresh database and return its URL."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy_database(self, url: str, prefix: str = "copy") -> str:
        """Create a fresh database as a copy of the one behind ``url`` (its template: nobody may be
        connected to it) and return the copy's URL: a filled database made once, copied per test."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database behind ``url``, closing whatever still uses it."""
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresJournals:
    """Fresh databases on the throwaway PostgreSQL server and journals connected to them, all closed and
    dropped when the test ends (the ``pg_journals`` fixture)."""

    def __init__(self, server: PostgresServer) -> None:
        self._server = server
        self._urls: list[str] = []
        self._journals: list[Journal] = []

    def database(self, prefix: str) -> str:
        """Create a fresh, empty database (named from ``prefix``) and return its URL."""
        url = self._server.create_database(prefix)
        self._urls.append(url)
        return url

    def journal(self, prefix_or_url: str) -> Journal:
        """A journal connected (so migrated to head) to a fresh database named from ``prefix_or_url``, or to
        the database at that URL (one of :meth:`database`'s)."""
        url = prefix_or_url if "://" in prefix_or_url else self.database(prefix_or_url)
        opened = Journal(url)
        opened.connect()
        self._journals.append(opened)
        return opened

    def close(self) -> None:
        """Close the journals, then drop the databases."""
        for opened in reversed(self._journals):
            opened.close()
        for url in self._urls:
            self._server.drop_database(url)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root and there is no 'postgres' user to run initdb as")
    if shutil.which("runuser") is None:
        unavailable("running as root and runuser is missing")
    return "postgres"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL on 127.0.0.1 for the session; skip if it is not installed."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
        raise AssertionError("unreachable")
    run_as = _run_as()
    base = Path(tempfile.mkdtemp(prefix="esb-pg-"))  # not under pytest's 0700 root-owned tmp tree
    server = PostgresServer(bin_dir, base, run_as)
    try:
        server.init()
        server.start()
    except Exception as error:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bin_dir}: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
