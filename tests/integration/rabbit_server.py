"""A throwaway RabbitMQ node on loopback for tests (Debian's rabbitmq-server, no system service).

Use the ``rabbit_server`` fixture (session scope, one node per test session: startup takes seconds).
It runs ``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly (the ``/usr/sbin`` wrapper switches to the
``rabbitmq`` user, who cannot write a root-owned temp folder), as node ``esbtest-<pid>@localhost`` with
its own HOME (Erlang cookie), mnesia and log folders under ``/tmp/esb-rabbit-*``, AMQP and distribution
ports picked free on 127.0.0.1, its own epmd port bound to 127.0.0.1, and no plugins. It creates a vhost
and a user with a password; ``server.url()`` is the ``pyamqp://`` URL. ``stop()`` / ``start()`` restart
the same node with its data (the fault tests), and everything is removed at the end.

Missing binaries skip the tests with the reason, unless ``ESB_REQUIRE_SERVERS=1``, which fails them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pg_server import free_port, unavailable

BIN = Path("/usr/lib/rabbitmq/bin")
USER = "esb"
PASSWORD = "esb-rabbit-pw"  # a throwaway node on loopback
VHOST = "esb"
_counter = itertools.count(1)


class RabbitServer:
    """One RabbitMQ node in a temp folder, listening on 127.0.0.1 only; can be stopped and restarted."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.node = f"esbtest-{os.getpid()}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (base / "home").mkdir()
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = warning\n"
            "disk_free_limit.absolute = 50MB\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        # The node and rabbitmqctl each write a random cookie when HOME has none: started together, the
        # last writer wins and the other side is refused for good. One cookie, written before either.
        cookie = base / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)

    def environ(self) -> dict[str, str]:
        """The environment of the node and of ``rabbitmqctl`` (same HOME, cookie and epmd port)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.base / "rabbit.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_EPMD_PORT=str(self.epmd_port),
        )
        return env

    def ctl(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n NODE ARGS`` against this node."""
        return subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.environ(), capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def start(self, timeout: float = 600) -> None:
        """Start the node and wait until it answers ``await_startup`` (at most ``timeout`` seconds: a busy
        machine boots the node in tens of seconds, a quiet one in a few)."""
        with (self.base / "server.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "rabbitmq-server")], env=self.environ(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited {self.proc.returncode}: {self._tail()}")
            try:  # refused at once until the node is registered; then waits for the boot to finish
                if self.ctl("await_startup", "--timeout", str(int(left)), timeout=left).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                break
            time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ did not start in {timeout}s: {self._tail()}")

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.base / "server.out").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        """Stop the node cleanly (its queues and messages stay on disk for the next ``start``)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.ctl("shutdown", timeout=120)
            self.proc.wait(60)
        except subprocess.TimeoutExpired:  # never leave a node behind: kill its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def setup_user(self) -> None:
        """Create the tests' vhost and user (a real password; guest is not used)."""
        for args in (
            ("add_vhost", VHOST),
            ("add_user", USER, PASSWORD),
            ("set_permissions", "-p", VHOST, USER, ".*", ".*", ".*"),
        ):
            done = self.ctl(*args)
            if done.returncode != 0 and "already" not in (done.stderr + done.stdout):
                raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr or done.stdout}")

    def url(self, *, password: str = PASSWORD, vhost: str = VHOST) -> str:
        """Return the ``pyamqp://`` URL of the tests' vhost (or of ``vhost``)."""
        return f"pyamqp://{USER}:{password}@127.0.0.1:{self.port}/{vhost}"

    def create_vhost(self, prefix: str = "t") -> str:
        """Create a fresh vhost the tests' user may use; return its URL (queues of one test only)."""
        name = f"{prefix}-{next(_counter)}"
        for args in (("add_vhost", name), ("set_permissions", "-p", name, USER, ".*", ".*", ".*")):
            done = self.ctl(*args)
            if done.returncode != 0:
                raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr or done.stdout}")
        return self.url(vhost=name)

    def running(self) -> bool:
        """Return True while the node's process runs."""
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        """Kill the node (its data goes with the folder: no clean shutdown to wait for) and its epmd,
        remove the folder."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the node's own process group (start_new_session)
            self.proc.wait(30)
        self._kill_epmd()
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill_epmd(self, seconds: float = 10.0) -> None:
        """Stop the node's epmd. It refuses (``Killing not allowed - living nodes in database``) until it
        has seen the killed node's connection close, so ask again until it is gone (or ``seconds``)."""
        deadline = time.monotonic() + seconds
        while True:
            done = subprocess.run(
                ["epmd", "-port", str(self.epmd_port), "-kill"], env=self.environ(), capture_output=True,
                timeout=10, check=False,
            )  # fmt: skip
            refused = b"not allowed" in done.stdout  # (any other answer: stopped now, or not running)
            if not refused or time.monotonic() > deadline:
                return
            time.sleep(0.1)


@pytest.fixture(scope="session")
def rabbit_server() -> Iterator[RabbitServer]:
    """Start a throwaway RabbitMQ node on 127.0.0.1 for the session; skip if it is not installed."""
    if not (BIN / "rabbitmq-server").exists() or shutil.which("epmd") is None:
        unavailable("RabbitMQ not installed (apt-get install rabbitmq-server, or make test-servers)")
    server = RabbitServer(Path(tempfile.mkdtemp(prefix="esb-rabbit-")))
    try:
        server.start()
        server.setup_user()
    except Exception as error:
        server.cleanup()
        pytest.fail(f"could not start RabbitMQ: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()
