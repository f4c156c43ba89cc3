"""A real OpenSSH sshd on a high loopback port for the batch adapter's SFTP tests.

Temp ed25519 host key, ``Subsystem sftp internal-sftp``, ``UsePAM no``, ``StrictModes no``, a client key
authorised for the current user (root in CI: ``PermitRootLogin yes`` on this loopback-only server),
checked with ``sshd -t -f``, awaited with ``ssh-keyscan``, whose output becomes known_hosts.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHServer:
    """What a test needs to reach the server."""

    port: int
    user: str
    key_file: Path
    known_hosts: Path
    root: Path
    host_key: Path


def free_port() -> int:
    """Return a free high port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """Start sshd for the session; fail (ESB_REQUIRE_SERVERS=1) or skip when OpenSSH is missing."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        skip_or_fail("OpenSSH server not installed (apt-get install openssh-server)")
    base = tmp_path_factory.mktemp("sshd")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    _keygen(base / "host_key")
    _keygen(base / "client_key")
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
        "PasswordAuthentication no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    known = base / "known_hosts"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        scan = subprocess.run(
            ["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
            capture_output=True,
            text=True,
            check=False,
        )
        if scan.stdout.strip():
            known.write_text(scan.stdout)
            break
        time.sleep(0.2)
    else:
        proc.kill()
        skip_or_fail("sshd did not answer ssh-keyscan within 15 s")
    root = base / "files"
    root.mkdir()
    try:
        yield SSHServer(port, getpass.getuser(), base / "client_key", known, root, base / "host_key")
    finally:
        proc.terminate()
        proc.wait(10)
