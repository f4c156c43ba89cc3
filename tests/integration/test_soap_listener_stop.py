"""Stopping a SOAP listener with requests in hand, many times over: no error, every caller answered."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
import requests

from adapters.soap import SOAPAdapter, SOAPEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from simulators.billing import BillingSimulator
from tests.contract.harness_soap import ACTION, envelope
from tests.integration.soap_project import REPO

CYCLES = 400


def test_start_and_stop_with_requests_in_hand_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 listener (and Billing simulator) start/stop cycles, each with one request acked and one nacked
    in hand: every stop succeeds and every caller gets an HTTP answer (the old stop closed reused file
    descriptors: EBADF about once in 75 stops)."""
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    endpoint = SOAPEndpoint.model_validate({
        "adapter": "soap", "wsdl": "config/contracts/crm/esb-crm.wsdl", "operation": "SubmitBillingAccount",
        "listen": {"port": 0, "path": "/soap/crm", "unwrap": True, "reply_timeout": "2s",
                   "auth": {"users": [{"username": "siebel", "password_env": "TEST_CRM_PASSWORD"}]}},
    })  # fmt: skip
    context = AdapterContext(Settings(data_dir=tmp_path), REPO, "crm.stop_test")
    statuses: list[int] = []
    for cycle in range(CYCLES):
        billing = BillingSimulator()
        billing.serve()
        source = SOAPAdapter().source(endpoint, context)
        source.connect()

        def call(url: str = source.url) -> None:
            response = requests.post(
                url, data=envelope(uuid.uuid4().hex, "1-R"), auth=("siebel", "crm-secret"), timeout=10,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'},
            )  # fmt: skip
            statuses.append(response.status_code)

        callers = [threading.Thread(target=call) for _ in range(2)]
        for caller in callers:
            caller.start()
        for k in range(2):
            delivery = source.read(5)
            assert delivery is not None, (
                f"cycle {cycle}: request {k + 1} did not reach the route within 5 s; HTTP statuses of this "
                f"cycle's callers so far: {statuses[2 * cycle :]}"
            )
            delivery.ack(None if k == 0 else RuntimeError("given back"))
        for caller in callers:
            caller.join(10)
        source.close()
        billing.stop()
    assert len(statuses) == 2 * CYCLES
    assert set(statuses) <= {202, 500}
