"""esb health's endpoint lines against real servers: sshd (SFTP), pyftpdlib (FTP), the Billing simulator,
a closed port, and the hub's own SOAP listener."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.batch import BatchAdapter, BatchEndpoint
from adapters.soap import SOAPAdapter, SOAPEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.ops.health import check_endpoints
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.billing import BillingSimulator
from tests.integration.servers_ftp import FTPServer
from tests.integration.servers_ssh import SSHServer
from tests.integration.soap_project import free_port, make_soap_project
from tests.unit.batch_helpers import PROJECT, context, inbound_endpoint

pytestmark = pytest.mark.integration


def sftp_endpoint(server: SSHServer, known_hosts: Path, **extra: Any) -> BatchEndpoint:
    """An inbound charge endpoint on the test sshd, checked against ``known_hosts``."""
    folder = server.root / "health"
    folder.mkdir(exist_ok=True)
    return inbound_endpoint({"protocol": "sftp", "host": "127.0.0.1", "port": server.port,
                             "username": server.user, "key_file": str(server.key_file),
                             "known_hosts": str(known_hosts), "path": str(folder), "timeout": 5, **extra})


def test_sftp_health_checks_host_key_login_and_listing(sshd: SSHServer, tmp_path: Path) -> None:
    """The right key: ok (host key verified, logged in, listed); never writes known_hosts."""
    before = sshd.known_hosts.read_bytes()
    status, detail = BatchAdapter().health(sftp_endpoint(sshd, sshd.known_hosts), context(tmp_path))
    assert status == "ok", detail
    assert "host key verified, logged in, 0 file(s) listed" in detail
    assert sshd.known_hosts.read_bytes() == before


def test_sftp_changed_or_unknown_host_key_is_down(sshd: SSHServer, tmp_path: Path) -> None:
    """A different key for the host: down, 'CHANGED'; a host missing from known_hosts: down, refused."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    host, _kind, _key = sshd.known_hosts.read_text().split()[:3]
    other = (tmp_path / "other.pub").read_text().split()[1]
    changed = tmp_path / "known_changed"
    changed.write_text(f"{host} ssh-ed25519 {other}\n")
    status, detail = BatchAdapter().health(sftp_endpoint(sshd, changed), context(tmp_path))
    assert status == "down"
    assert "host key CHANGED" in detail
    empty = tmp_path / "known_empty"
    empty.write_text("")
    status, detail = BatchAdapter().health(sftp_endpoint(sshd, empty), context(tmp_path))
    assert status == "down"
    assert "not in known_hosts" in detail
    assert empty.read_text() == ""


def test_sftp_refused_login_is_down(sshd: SSHServer, tmp_path: Path) -> None:
    """A key the server does not accept: down, authentication failed."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    endpoint = sftp_endpoint(sshd, sshd.known_hosts, key_file=str(tmp_path / "k"))
    status, detail = BatchAdapter().health(endpoint, context(tmp_path))
    assert status == "down"
    assert "authentication failed" in detail


def test_ftp_health_logs_in_and_lists(ftpd: FTPServer, tmp_path: Path) -> None:
    """FTP: ok with the right password; a wrong one is down; the password is never in the detail."""
    (ftpd.root / "health").mkdir(exist_ok=True)
    remote = {"protocol": "ftp", "host": "127.0.0.1", "port": ftpd.port, "username": ftpd.user,
              "password_file": str(ftpd.password_file), "path": "/health", "timeout": 5}
    status, detail = BatchAdapter().health(inbound_endpoint(remote), context(tmp_path))
    assert status == "ok", detail
    assert "logged in" in detail
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    status, detail = BatchAdapter().health(inbound_endpoint({**remote, "password_file": str(wrong)}),
                                           context(tmp_path))
    assert status == "down"
    assert "not-the-password" not in detail


@pytest.fixture
def billing() -> Iterator[str]:
    """The simulated Billing service; yields its URL."""
    simulator = BillingSimulator("esb", "billing-secret")
    try:
        yield simulator.serve()
    finally:
        simulator.stop()


def client_endpoint(address: str, **extra: Any) -> SOAPEndpoint:
    """Billing's createAccount called at ``address``."""
    return SOAPEndpoint.model_validate({"adapter": "soap", "wsdl": "config/contracts/billing/billing.wsdl",
                                        "operation": "createAccount", "address": address, "timeout": 3,
                                        "connect_timeout": 2, **extra})


def soap_context(tmp_path: Path) -> AdapterContext:
    """A context with the repository as project and data under ``tmp_path``."""
    return AdapterContext(settings=Settings(data_dir=tmp_path), project_dir=PROJECT, endpoint="billing.x")


def test_soap_service_reachable_even_when_it_answers_500(billing: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """GET ?wsdl on the simulator gets a SOAP Fault (HTTP 500): reachable; the password is not shown."""
    monkeypatch.setenv("TEST_BILLING_PW", "billing-secret")
    auth = {"username": "esb", "password_env": "TEST_BILLING_PW", "mode": "basic"}
    status, detail = SOAPAdapter().health(client_endpoint(billing, auth=auth), soap_context(tmp_path))
    assert status == "ok", detail
    assert "reachable (HTTP 500" in detail
    assert "billing-secret" not in detail


def test_soap_closed_port_is_down(tmp_path: Path) -> None:
    """Nothing listens at the address: down, connection refused."""
    address = f"http://127.0.0.1:{free_port()}/services/BillingAccount"
    status, detail = SOAPAdapter().health(client_endpoint(address), soap_context(tmp_path))
    assert status == "down"
    assert "connection refused" in detail


def test_hub_listener_answers_and_health_reports_it(billing: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the hub running, its listener endpoints are ok; every endpoint line is ok."""
    for name, value in (("BILLING", "billing-secret"), ("CRM", "crm-secret"), ("HOTLINE", "hotline-secret")):
        monkeypatch.setenv(f"TEST_{name}_PASSWORD", value)
    project = Project.load(make_soap_project(tmp_path, billing, free_port()))
    hub = Hub(project)
    hub.start(wait=20)
    try:
        lines = {c.component: c for c in check_endpoints(project)}
    finally:
        hub.stop(timeout=5)
    listener = lines["endpoint crm.soap_billing_accounts"]
    assert listener.status == "ok", listener.detail
    assert "the hub's listener answers (HTTP 401" in listener.detail
    assert lines["endpoint billing.create_account"].status == "ok"
