"""The SOAP adapter under the contract suite.

Source: the hub's listener serving the CRM's one-way ``SubmitBillingAccount`` on a free loopback port;
the inlet is a real HTTP client POSTing SOAP envelopes (each caller waits for the route: HTTP 202 once
the delivery is acked, a Fault when it is given back). Sink: a client of the simulated Billing service
(``simulators/billing.py``, its own lxml code), whose accounts are what the peer received.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from lxml import etree

from adapters.soap import SOAPAdapter, SOAPEndpoint, SOAPSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import MessageError, RemoteError
from esb.message import Message
from esb.typing import CommandProvider, HealthReporter, Requester, Sink, Source
from simulators.billing import BillingSimulator
from tests.contract.harness import PATIENCE, Callers, HarnessDefaults, Probe, Refusal
from tests.integration.soap_project import REPO, free_port, siebel_account

CRM_PASSWORD = "crm-secret"
BILLING_PASSWORD = "billing-s3cret"
ACTION = "urn:esb:crm:SubmitBillingAccount"
WSA = "http://www.w3.org/2005/08/addressing"
ACCOUNT = {"customerId": "CUST-1", "accountName": "张伟", "ratingType": "POSTPAID", "creditLimit": "100.00"}


def envelope(message_id: str, row_id: str) -> bytes:
    """A SOAP 1.1 request of SubmitBillingAccount with a WS-Addressing MessageID."""
    return (
        '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header>'
        f'<a:MessageID xmlns:a="{WSA}">urn:uuid:{message_id}</a:MessageID></e:Header>'
        f"<e:Body>{siebel_account(row_id)}</e:Body></e:Envelope>"
    ).encode()


class SOAPHarness(HarnessDefaults):
    """The CRM listener as source; the Billing client as sink and requester."""

    declares = frozenset({HealthReporter, CommandProvider, Requester})
    quiet = 0.5
    cannot: ClassVar[dict[str, str]] = {
        "redeliver": "a request-reply source answers its caller with a Fault instead (the caller resends)",
        "reconnect": "a listener keeps nothing: a request unsettled at close is answered with a Fault",
        "break": "a listener holds no connection of its own that could die under it",
    }

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("TEST_CRM_PASSWORD", CRM_PASSWORD)
        monkeypatch.setenv("TEST_BILLING_PASSWORD", BILLING_PASSWORD)
        monkeypatch.setenv("TEST_BILLING_WRONG_PASSWORD", "not-the-password")
        self.adapter = SOAPAdapter()
        self.settings = Settings(data_dir=tmp_path)
        self.billing = BillingSimulator("esb", BILLING_PASSWORD)
        self.billing_url = self.billing.serve()
        self.listen = SOAPEndpoint.model_validate({
            "adapter": "soap", "wsdl": "config/contracts/crm/esb-crm.wsdl",
            "operation": "SubmitBillingAccount", "message_type": "billing_account.submitted",
            "listen": {"port": 0, "path": "/soap/crm", "unwrap": True, "reply_timeout": "2s",
                       "auth": {"users": [{"username": "siebel", "password_env": "TEST_CRM_PASSWORD"}]}},
        })  # fmt: skip
        self._sources: list[SOAPSource] = []
        self.callers = Callers()

    def context(self, endpoint: str = "crm.soap_billing_accounts") -> AdapterContext:
        """An adapter context over the repository's contracts."""
        return AdapterContext(self.settings, REPO, endpoint)

    def close(self) -> None:
        """Stop the Billing simulator (and any listener a test left running)."""
        for source in self._sources:
            source.close()
        self.billing.stop()

    # -- source --------------------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """The listener endpoint."""
        return Probe(self.listen, self.context())

    def source(self) -> Source:
        """A listener (it serves once connected)."""
        source = self.adapter.source(self.listen, self.context())
        self._sources.append(source)
        return source

    def put(self, n: int) -> dict[str, str]:
        """POST ``n`` requests to the last connected listener, each from its own waiting caller."""
        url = self._sources[-1].url
        sent = {}
        for i in range(n):
            mid, row = uuid.uuid4().hex, f"1-ROW{i}"
            self.callers.call(mid, partial(self._post, url, mid, row), success=202)
            sent[mid] = row
        return sent

    def _post(self, url: str, mid: str, row: str) -> requests.Response:
        """One caller's request (HTTP 202 once acked, a Fault when given back)."""
        return requests.post(
            url, data=envelope(mid, row), auth=("siebel", CRM_PASSWORD), timeout=PATIENCE,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'},
        )  # fmt: skip

    def marker(self, message: Message) -> str:
        """The Siebel row id of the account in the request."""
        return str(etree.fromstring(message.body).findtext(".//Account/Id"))

    def answers(self, ids: list[str]) -> dict[str, str]:
        """What each caller got: ``ok`` for HTTP 202, ``error`` for a Fault or no answer at all.

        Ask while the listener is still open: closing it cuts answers still being written to callers
        (waitress's connections are closed at once), so a settled request may reach its caller as a
        broken connection.
        """
        return self.callers.answers(ids)

    # -- sink ----------------------------------------------------------------------------------------
    def _client(self, address: str, password_env: str = "TEST_BILLING_PASSWORD") -> SOAPEndpoint:
        return SOAPEndpoint.model_validate({
            "adapter": "soap", "wsdl": "config/contracts/billing/billing.wsdl", "operation": "createAccount",
            "address": address, "retryable_faults": ["BIL-0503"], "timeout": "5s", "connect_timeout": "1s",
            "auth": {"username": "esb", "password_env": password_env, "mode": "basic"},
        })  # fmt: skip

    def sink(self) -> Sink:
        """A client of Billing's createAccount."""
        return self.adapter.sink(self._client(self.billing_url), self.context("billing.create_account"))

    def message(self, i: int) -> Message:
        """A new account whose external id is ``X-<i>``."""
        return Message({**ACCOUNT, "externalId": f"X-{i}"})

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Call the operation once per message."""
        for message in messages:
            sink.write(message)

    def received(self) -> list[str]:
        """The accounts Billing created."""
        return [a.external_id.removeprefix("X-") for a in self.billing.accounts.values()]

    def request_answer(self, reply: Message) -> str:
        """The account the reply names."""
        return self.billing.accounts[reply.body["accountId"]].external_id.removeprefix("X-")

    def down_sink(self) -> tuple[Sink, str]:
        """A client of a Billing that is not there (its address carries credentials to be masked)."""
        address = f"http://esb:url-s3cret@127.0.0.1:{free_port()}/billing"
        return self.adapter.sink(self._client(address), self.context("billing.create_account")), "s3cret"

    def refusals(self) -> list[Refusal]:
        """Billing busy (retryable), an invalid customer, wrong credentials, a message unfit for the call."""

        def connected(message: Message, password_env: str = "TEST_BILLING_PASSWORD") -> tuple[Sink, Message]:
            sink = self.adapter.sink(self._client(self.billing_url, password_env), self.context("billing.x"))
            sink.connect()
            return sink, message

        def busy() -> tuple[Sink, Message]:
            self.billing.busy_next()
            return connected(self.message(1))

        invalid = {**ACCOUNT, "externalId": "X-2", "customerId": "INVALID-2"}
        return [
            Refusal("busy", busy, RemoteError, retryable=True),
            Refusal("invalid customer", lambda: connected(Message(invalid)), RemoteError, retryable=False),
            Refusal("wrong password", lambda: connected(self.message(3), "TEST_BILLING_WRONG_PASSWORD"),
                    RemoteError, retryable=False),
            Refusal("unknown field", lambda: connected(Message({**ACCOUNT, "colour": "red"})), MessageError,
                    retryable=False),
        ]  # fmt: skip

    def health_probes(self) -> tuple[Probe, Probe]:
        """Billing's address, and an address where nothing listens."""
        context = self.context("billing.create_account")
        dead = self._client(f"http://127.0.0.1:{free_port()}/billing")
        return Probe(self._client(self.billing_url), context), Probe(dead, context)
