"""Scenarios for the SOAP flows: the CRM creating billing accounts, the 10000 hotline asking balances.

The simulated CRM and hotline are real SOAP clients of the hub's listener (HTTP basic for the CRM, zeep
with a WS-Security digest token for the hotline); the simulated Billing is a real SOAP service
(simulators/billing.py) on the port the Billing endpoints name. Each request carries a
WS-Addressing MessageID, so the journal knows each planned message by its id.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from lxml import etree

from adapters.soap.config import SOAPEndpoint
from esb.message import Message
from simulators.billing import BillingSimulator
from simulators.crm import NAMES, PlannedMessage
from simulators.devenv import password
from simulators.siebel import siebel_billing_account_request

if TYPE_CHECKING:
    from esb.project import Project

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
#: How often the simulated CRM sends a SubmitBillingAccount the hub answered with a fault.
CRM_ATTEMPTS = 3
WSA = "http://www.w3.org/2005/08/addressing"
#: What the simulated CRM appends to a billing account's name when it renames it (Billing must update it).
RENAMED = "已更名"
#: The kinds of follow-up changes, sent once every first submission has ended (the order matters).
FOLLOW_UPS = ("billing-account-renamed", "billing-account-unchanged")


class SharedBilling:
    """One simulated Billing service per process, shared by the scenarios that need it."""

    _lock = threading.Lock()
    _instance: BillingSimulator | None = None
    _users = 0

    @classmethod
    def acquire(cls, project: Project, endpoint: str = "billing.create_account") -> BillingSimulator:
        """Start (once) the Billing service on the port and with the credentials ``endpoint`` names."""
        with cls._lock:
            if cls._instance is None:
                config = project.endpoint(endpoint)
                assert isinstance(config, SOAPEndpoint), f"{endpoint} is not a SOAP endpoint"
                assert config.auth is not None, f"{endpoint} has no credentials"
                assert config.auth.password_env, "the demo's Billing reads its password from the environment"
                assert config.address, f"{endpoint} has no address"
                billing = BillingSimulator(config.auth.username, password(config.auth.password_env))
                billing.serve(port=urlsplit(config.address).port or 0)
                cls._instance = billing
            cls._users += 1
            return cls._instance

    @classmethod
    def release(cls) -> None:
        """Stop the service when its last user is done."""
        with cls._lock:
            cls._users -= 1
            if cls._users <= 0 and cls._instance is not None:
                cls._instance.stop()
                cls._instance = None
                cls._users = 0


def _listener_url(project: Project, endpoint: str) -> tuple[str, str, str]:
    """Return (url, username, password) of the hub's listener for ``endpoint``."""
    config = project.endpoint(endpoint)
    assert isinstance(config, SOAPEndpoint), f"{endpoint} is not a SOAP endpoint"
    assert config.listen is not None, f"{endpoint} is not served"
    listen = config.listen
    user = listen.auth.users[0]
    assert user.password_env, f"{endpoint}: the demo's clients read the password from the environment"
    return f"http://{listen.host}:{listen.port}{listen.path}", user.username, password(user.password_env)


def soap11(body: str, message_id: str) -> bytes:
    """Wrap ``body`` in a SOAP 1.1 envelope with a WS-Addressing MessageID."""
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}" xmlns:wsa="{WSA}"><soapenv:Header>'
        f"<wsa:MessageID>{message_id}</wsa:MessageID></soapenv:Header><soapenv:Body>{body}"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


class CRMBillingAccountScenario:
    """The CRM submits billing accounts over SOAP; Billing must get every good one, once, and a renamed
    one as updateAccount under Billing's own id; an unchanged resend is not sent (sync, docs/sync.md)."""

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        self.source = project.route(route_id).from_
        self.billing: BillingSimulator | None = None
        self.answers: dict[str, int] = {}
        self.run = ""
        #: the message id of each planned rename, with the CRM row id it renames
        self.renamed: dict[str, str] = {}

    def start(self) -> None:
        """Start the simulated Billing."""
        self.billing = SharedBilling.acquire(self.project)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Mostly good accounts; every 10th names a customer Billing refuses (dead-lettered). After them,
        every 10th good one renamed (an update in Billing) and every 10th sent again unchanged (filtered)."""
        self.run = run
        rng = random.Random(count)  # noqa: S311 - test data
        planned, follow_ups = [], []
        for index in range(count):
            row_id = f"1-{run}-BA{index:05d}"
            customer = f"INVALID-{index}" if index % 10 == 7 else f"CUST-{rng.randint(1, 999_999):06d}"
            name = f"{rng.choice(NAMES)}的账户"
            body = siebel_billing_account_request(row_id, customer, name)
            expected = "dead_lettered" if customer.startswith("INVALID") else "delivered"
            kind = "customer-refused-by-billing" if expected == "dead_lettered" else "billing-account"
            message = Message(body=body.encode("utf-8"), id=f"{run}-crmba-{index:06d}")
            planned.append(PlannedMessage(message, kind, expected))
            if index % 10 in (3, 5):
                renamed = index % 10 == 3
                again = siebel_billing_account_request(row_id, customer, name + RENAMED if renamed else name)
                mid = f"{run}-crmba-{index:06d}-{'renamed' if renamed else 'again'}"
                if renamed:
                    self.renamed[mid] = row_id
                follow_ups.append(
                    PlannedMessage(
                        Message(body=again.encode("utf-8"), id=mid),
                        FOLLOW_UPS[0] if renamed else FOLLOW_UPS[1],
                        "delivered" if renamed else "filtered",
                    )
                )
        return planned + follow_ups

    def send(self, planned: list[PlannedMessage]) -> None:
        """POST each request as the CRM does (one-way: 202 once the hub has it)."""
        url, user, secret = _listener_url(self.project, self.source)
        with requests.Session() as session, ThreadPoolExecutor(4) as pool:
            session.auth = (user, secret)

            def post(item: PlannedMessage) -> None:
                # As the Siebel EAI outbound service does, a fault from a busy hub is retried (same
                # WS-Addressing MessageID, so the hub's journal recognises the resend).
                for attempt in range(CRM_ATTEMPTS):
                    response = session.post(
                        url,
                        data=soap11(item.message.body.decode("utf-8"), item.message.id),
                        timeout=60,
                        headers={
                            "Content-Type": "text/xml; charset=utf-8",
                            "SOAPAction": "urn:esb:crm:SubmitBillingAccount",
                        },
                    )
                    if response.status_code < 500 or attempt == CRM_ATTEMPTS - 1:
                        break
                    time.sleep(1.0 + attempt)
                self.answers[item.message.id] = response.status_code

            first = [item for item in planned if item.kind not in FOLLOW_UPS]
            list(pool.map(post, first))  # each answered once the route ended: the follow-ups come after
            list(pool.map(post, [item for item in planned if item.kind in FOLLOW_UPS]))

    def received(self) -> int:
        """Accounts of this run that Billing created, plus those it updated with their new name."""
        assert self.billing is not None
        mine = [a for a in list(self.billing.accounts.values()) if f"-{self.run}-" in a.external_id]
        renamed = [a for a in mine if a.name.endswith(RENAMED) and self.billing.updates[a.account_id]]
        return len(mine) + len(renamed)

    def problems(self) -> list[str]:
        """Requests the listener did not acknowledge with 202; an account created twice, or renamed in
        the CRM and not updated in Billing."""
        assert self.billing is not None
        found = [
            f"CRM request {mid} answered HTTP {code}" for mid, code in self.answers.items() if code != 202
        ]
        mine = [a for a in list(self.billing.accounts.values()) if f"-{self.run}-" in a.external_id]
        held = {a.external_id: a for a in mine}
        if len(held) != len(mine):
            found.append(f"Billing holds {len(mine)} accounts for {len(held)} CRM billing accounts")
        for mid, row_id in self.renamed.items():
            if mid not in self.answers or f"-{self.run}-" not in row_id:
                continue  # not sent (yet), or of an earlier plan
            account = held.get(row_id)
            updated = account is not None and self.billing.updates[account.account_id] > 0
            if account is None or not account.name.endswith(RENAMED) or not updated:
                found.append(f"{row_id} was renamed in the CRM but not updated in Billing")
        return found

    def stop(self) -> None:
        """Release the simulated Billing."""
        if self.billing is not None:
            SharedBilling.release()
            self.billing = None


class HotlineBalanceScenario:
    """The 10000 hotline asks balances over SOAP (zeep, WS-Security digest); every answer is checked."""

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        self.source = project.route(route_id).from_
        self.billing: BillingSimulator | None = None
        self.expected_balance: dict[str, str] = {}
        self.correct = 0
        self.wrong: list[str] = []

    def start(self) -> None:
        """Start the simulated Billing."""
        self.billing = SharedBilling.acquire(self.project, "billing.query_balance")

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Numbers Billing knows (delivered: answered) and every 8th unknown (dead-lettered: a Fault)."""
        assert self.billing is not None
        planned = []
        for index in range(count):
            msisdn = f"13{index % 10}{zlib.crc32(run.encode()) % 1000:03d}{index:05d}"
            message = Message(body=msisdn.encode(), id=f"{run}-hotline-{index:06d}")
            if index % 8 == 5:
                planned.append(PlannedMessage(message, "unknown-number", "dead_lettered"))
                continue
            balance = f"{(index * 37) % 500}.{index % 100:02d}"
            self.billing.add_account(f"{run[:4]}{index:06d}", balance=balance, msisdn=msisdn)
            self.expected_balance[message.id] = balance
            planned.append(PlannedMessage(message, "balance-query", "delivered"))
        return planned

    def send(self, planned: list[PlannedMessage]) -> None:
        """Ask each balance through the hub and check the answer."""
        from zeep import Client, Transport
        from zeep.exceptions import Fault
        from zeep.wsse.username import UsernameToken

        url, user, secret = _listener_url(self.project, self.source)
        session = requests.Session()
        session.auth = (user, secret)
        transport = Transport(session=session, operation_timeout=30)  # type: ignore[no-untyped-call]
        client = Client(f"{url}?wsdl", transport=transport)  # type: ignore[no-untyped-call]
        session.auth = None
        client.wsse = UsernameToken(user, secret, use_digest=True)  # type: ignore[no-untyped-call]
        for item in planned:
            message_id = etree.Element(f"{{{WSA}}}MessageID")
            message_id.text = item.message.id
            try:
                answer = client.service.QueryBalance(
                    msisdn=item.message.body.decode(), _soapheaders=[message_id]
                )
            except Fault:
                if item.expected != "dead_lettered":
                    self.wrong.append(f"{item.message.id}: a Fault for a known number")
                continue
            if str(answer.balance) == self.expected_balance.get(item.message.id):
                self.correct += 1
            else:
                self.wrong.append(
                    f"{item.message.id}: balance {answer.balance}, expected "
                    f"{self.expected_balance.get(item.message.id)}"
                )

    def received(self) -> int:
        """Correct answers the hotline got."""
        return self.correct

    def problems(self) -> list[str]:
        """Wrong answers."""
        return self.wrong

    def stop(self) -> None:
        """Release the simulated Billing."""
        if self.billing is not None:
            SharedBilling.release()
            self.billing = None
