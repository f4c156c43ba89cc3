"""One leader across hub processes, for work that must run once in a cluster (scheduled batch jobs).

apscheduler runs every job in every process that starts a scheduler (DESIGN.md). With several `esb run`
processes, the process holding the lock named after the job runs it; the others wait and take over when
the leader dies, because the lock dies with its holder:

- PostgreSQL (production, ``journal.url`` is ``postgresql...``): a session-level advisory lock
  (``pg_try_advisory_lock``) held on a connection of its own. A killed process's connection closes and
  the server releases the lock; a leader whose connection broke stops being leader at its next check.
- Otherwise (the embedded default, one machine): an exclusive ``flock`` on ``{data_dir}/leader-<name>.lock``,
  which the kernel releases when the process dies.

Use :class:`LeaderElection` (a thread trying every ``interval`` seconds) and ask ``is_leader`` before each
run of a job::

    election = LeaderElection("batch:billing.charges", settings)
    election.start()
    scheduler.add_job(lambda: election.is_leader and run_job(), ...)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from esb.files import current, make_folder
from esb.logging import get_logger


class LeaderLock(Protocol):
    """A non-blocking, process-owned lock that dies with its holder."""

    def try_acquire(self) -> bool:
        """Take the lock if free (or keep it); return True while this process holds it."""
        ...

    def release(self) -> None:
        """Give the lock up. Safe to call twice."""
        ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"esb-leader:{name}".encode()).digest()[:8], "big", signed=True)


def pg_connect(url: str) -> Any:
    """A new autocommit psycopg connection to the database of SQLAlchemy ``url`` (5 s connect timeout)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
        autocommit=True, connect_timeout=5,
    )  # fmt: skip


class PostgresLock:
    """``pg_try_advisory_lock`` on a dedicated autocommit connection (psycopg)."""

    def __init__(self, name: str, url: str) -> None:
        self.key = lock_key(name)
        self.url = url
        self._conn: Any = None

    def try_acquire(self) -> bool:
        """Take or confirm the lock; a broken connection means the lock is lost."""
        import psycopg

        try:
            if self._conn is None:
                self._conn = pg_connect(self.url)
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                if not row or not row[0]:
                    self.release()
                    return False
                return True
            self._conn.execute("SELECT 1")  # still connected, so still holding the session lock
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        """Close the connection (the server releases the lock with it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class FileLock:
    """An exclusive ``flock`` on a file (one machine: the embedded default)."""

    def __init__(self, name: str, folder: Path) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.path = folder / f"leader-{safe}.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take or keep the lock."""
        if self._fd is not None:
            return True
        make_folder(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, current().file & 0o777)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Unlock and close."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def leader_lock(name: str, journal_url: str, data_dir: Path) -> LeaderLock:
    """The lock for ``name``: PostgreSQL advisory lock when the journal is on PostgreSQL, else a file lock."""
    if journal_url.startswith("postgresql"):
        return PostgresLock(name, journal_url)
    return FileLock(name, data_dir)


class LeaderElection(threading.Thread):
    """Tries for the lock every ``interval`` seconds; ``is_leader`` says whether this process leads now."""

    def __init__(
        self, name: str, settings: Any, interval: float = 2.0, lock: LeaderLock | None = None
    ) -> None:
        super().__init__(name=f"leader-{name}", daemon=True)
        self.lock = lock or leader_lock(name, settings.journal.url, Path(settings.data_dir))
        self.interval = interval
        self.elected = threading.Event()
        self._stop_event = threading.Event()
        self.log = get_logger("leader").bind(lock=name)

    @property
    def is_leader(self) -> bool:
        """True while this process holds the lock (as of the last check, at most ``interval`` ago)."""
        return self.elected.is_set()

    def run(self) -> None:
        """Check (and take) the lock until stopped."""
        while True:
            held = self.lock.try_acquire()
            if held != self.elected.is_set():
                self.log.info("leader elected" if held else "leadership lost")
                (self.elected.set if held else self.elected.clear)()
            if self._stop_event.wait(self.interval):
                break
        self.elected.clear()
        self.lock.release()

    def stop(self) -> None:
        """Stop trying and give the lock up (within one interval)."""
        self._stop_event.set()
