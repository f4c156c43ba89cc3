"""A captured WS-Security digest request replayed at a real hub process after it restarted is refused:
used nonces live in the journal's database, not in the process's memory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests
from lxml import etree
from zeep.wsse.username import UsernameToken

from simulators.billing import BillingSimulator
from tests.e2e.hub_process import hub_environ
from tests.integration.soap_project import free_port, make_soap_project

ROUTE = "hotline-balance-query"
QUERY = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<h:QueryBalance xmlns:h="http://esb.telecom.example/hotline/v1"><h:accountId>{account}</h:accountId>'
    "</h:QueryBalance></soapenv:Body></soapenv:Envelope>"
)
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:esb:hotline:QueryBalance"'}


def signed(account: str) -> bytes:
    """A QueryBalance request carrying a fresh digest UsernameToken of the hotline's account."""
    env = etree.fromstring(QUERY.format(account=account).encode())
    UsernameToken("hotline", "hotline-secret", use_digest=True).apply(env, {})
    return bytes(etree.tostring(env))


class Hub:
    """`esb run` of the SOAP project's hotline route in a subprocess."""

    def __init__(self, project: Path, log: Path) -> None:
        self.project, self.log = project, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the hub and wait until its log says it started."""
        before = self.log.read_bytes().count(b'"hub started"') if self.log.exists() else 0
        env = hub_environ(
            self.project / "var",
            TEST_HOTLINE_PASSWORD="hotline-secret",
            TEST_CRM_PASSWORD="crm-secret",
            TEST_BILLING_PASSWORD="billing-secret",
        )
        command = [sys.executable, "-m", "esb.cli", "--project", str(self.project), "run", "--route", ROUTE]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.log.read_bytes().count(b'"hub started"') <= before:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"the hub did not start: see {self.log}"
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM the hub; return its exit code."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def test_captured_digest_request_is_refused_after_a_restart(tmp_path: Path) -> None:
    """Accepted once, the same bytes are refused by the restarted hub; a fresh token still works."""
    billing = BillingSimulator("esb", "billing-secret")
    billing.add_account("2000000001", balance="12.50", msisdn="13800138000")
    port = free_port()
    project = make_soap_project(tmp_path / "project", billing.serve(), port)
    url = f"http://127.0.0.1:{port}/soap/hotline"
    hub = Hub(project, tmp_path / "hub.log")
    hub.start()
    try:
        captured = signed("2000000001")
        first = requests.post(url, data=captured, headers=HEADERS, timeout=30)
        assert first.status_code == 200, first.text
        assert hub.stop() == 0
        hub.start()
        replay = requests.post(url, data=captured, headers=HEADERS, timeout=30)
        fresh = requests.post(url, data=signed("2000000001"), headers=HEADERS, timeout=30)
    finally:
        hub.stop()
        billing.stop()
    assert replay.status_code == 401
    assert b"Unauthenticated" in replay.content
    assert fresh.status_code == 200, fresh.text
    log = (tmp_path / "hub.log").read_text()
    assert '"reason":"replayed_nonce"' in log
    assert "hotline-secret" not in log
