"""``listen.inline``: the route run on the listener's server threads gives the same answers, journal rows
and deliveries as the hand-over to the route's worker, under concurrency and across a suspension."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from esb.journal.journal import Journal
from esb.project import Project
from esb.runtime.control import RouteControl
from esb.runtime.hub import Hub
from esb.testing import BROKER
from simulators.billing import BillingSimulator
from tests.integration.soap_project import free_port, make_soap_project, siebel_account

ROUTE = "crm-billing-account-to-billing"
WSA = "http://www.w3.org/2005/08/addressing"


@contextmanager
def running_hub(folder: Path, inline: bool) -> Iterator[dict[str, Any]]:
    """A hub serving the CRM's SubmitBillingAccount (``listen.inline`` as given), Billing simulated."""
    billing = BillingSimulator("esb", "billing-secret")
    url = billing.serve()
    port = free_port()
    hub = Hub(Project.load(make_soap_project(folder, url, port, inline=inline)))
    hub.start(wait=20)
    try:
        yield {"billing": billing, "url": f"http://127.0.0.1:{port}/soap/crm", "hub": hub}
    finally:
        hub.stop(timeout=5)
        billing.stop()


@pytest.fixture(autouse=True)
def _passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")


def post(url: str, body: str, message_id: str | None = None) -> requests.Response:
    """POST a SubmitBillingAccount request as the CRM does, with a WS-Addressing MessageID (a uuid: the
    hub's message id) if given."""
    header = (
        f'<soapenv:Header><wsa:MessageID xmlns:wsa="{WSA}">urn:uuid:{message_id}</wsa:MessageID>'
        "</soapenv:Header>"
        if message_id
        else ""
    )
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        f"{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
    return requests.post(
        url,
        data=envelope.encode("utf-8"),
        auth=("siebel", "crm-secret"),
        timeout=20,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:esb:crm:SubmitBillingAccount"},
    )


def answer(response: requests.Response) -> tuple[int, str | None]:
    """The HTTP status and the fault's esb code, if any."""
    code = None
    if response.content and response.status_code != 202:
        code = etree.fromstring(response.content).findtext(".//{urn:esb:soap:fault}code")
    return response.status_code, code


def journal_rows(hub: Hub, message_id: str) -> list[tuple[Any, ...]]:
    """What the journal says of ``message_id`` (without times and row ids)."""
    return [
        (e.route, e.state, e.endpoint, e.error_class, e.error_reason, e.detail)
        for e in hub.journal.history(message_id)
    ]


def scenario(hub: dict[str, Any]) -> dict[str, Any]:
    """Send the same requests (accepted, retried, dead-lettered, refused by schema) and collect what the
    callers got, what the journal says, what Billing created and what went to the dead letters."""
    bad = siebel_account("1-NOPARENT").replace(
        "<Parent_spcAccount_spcId>CUST-440100-0001</Parent_spcAccount_spcId>", ""
    )
    cases = {
        "ok": (siebel_account("1-OK"), None),
        "busy": (siebel_account("1-BUSY"), 2),
        "dead": (siebel_account("1-DEAD", customer="INVALID-9"), None),
        "schema": (bad, None),
    }
    answers, rows = {}, {}
    for name, (body, busy) in cases.items():
        if busy:
            hub["billing"].busy_next(busy)
        ident = str(uuid.uuid4())
        answers[name] = answer(post(hub["url"], body, ident))
        rows[name] = journal_rows(hub["hub"], ident)
    billing = sorted((a.external_id, a.name, str(a.credit_limit)) for a in hub["billing"].accounts.values())
    dead = [(m.body_bytes(), m.headers["esb-error-reason"]) for m in BROKER.written("dlq.billing")]
    return {"answers": answers, "journal": rows, "billing": billing, "dead": dead}


def test_inline_matches_the_hand_over(tmp_path: Path) -> None:
    """The same requests get the same answers, journal rows, Billing accounts and dead letters whether
    the route runs on the server thread or on its worker."""
    seen = {}
    for inline in (False, True):
        BROKER.reset()
        with running_hub(tmp_path / f"inline-{inline}", inline) as hub:
            seen[inline] = scenario(hub)
    assert seen[True] == seen[False]
    assert seen[True]["answers"] == {
        "ok": (202, None),
        "busy": (202, None),
        "dead": (202, None),
        "schema": (500, "SchemaViolation"),
    }
    assert [row[1] for row in seen[True]["journal"]["dead"]][-1] == "dead_lettered"


def test_concurrent_requests_all_end_delivered(tmp_path: Path) -> None:
    """Requests sent from several threads at once are each answered 202 and delivered exactly once."""
    with running_hub(tmp_path, inline=True) as hub:
        idents = [str(uuid.uuid4()) for _ in range(24)]
        statuses: dict[str, int] = {}

        def send(index: int) -> None:
            for ident in idents[index::6]:
                statuses[ident] = post(hub["url"], siebel_account(f"1-C{ident[-6:]}"), ident).status_code

        threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == dict.fromkeys(idents, 202)
        assert len(hub["billing"].accounts) == 24
        for ident in idents:
            assert hub["hub"].journal.outcome(ROUTE, ident) == "delivered"


def test_concurrent_requests_share_journal_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that queue while a server thread runs the route are journaled together by the next
    lead: one arrivals' commit for several requests (the journal's batches are kept)."""
    sizes: list[int] = []
    received_many = Journal.received_many

    def spy(self: Journal, route: str, items: list[Any]) -> list[bool]:
        sizes.append(len(items))
        return received_many(self, route, items)

    monkeypatch.setattr(Journal, "received_many", spy)
    with running_hub(tmp_path, inline=True) as hub:
        gate, entered = threading.Event(), threading.Event()
        billing = hub["billing"]
        create = billing._create

        def held(fields: Any) -> Any:  # the first call holds its lead until the others queued
            if not entered.is_set():
                entered.set()
                gate.wait(20)
            return create(fields)

        billing._create = held
        threads = [
            threading.Thread(target=post, args=(hub["url"], siebel_account(f"1-G{i}"))) for i in range(5)
        ]
        threads[0].start()
        assert entered.wait(20)
        for thread in threads[1:]:
            thread.start()
        inbox = next(iter(bindings(hub["hub"]))).inbox
        wait_until(lambda: len(inbox.items) == 4)
        gate.set()
        for thread in threads:
            thread.join(30)
        assert len(hub["billing"].accounts) == 5
    assert 4 in sizes


def test_suspended_route_refuses_then_resumes(tmp_path: Path) -> None:
    """A suspended inline route serves nothing (as handed over: the path is gone), and takes requests
    again once resumed."""
    with running_hub(tmp_path, inline=True) as hub:
        control = RouteControl(hub["hub"].project.settings.journal.url)
        control.connect()
        try:
            control.set_state(ROUTE, "suspended")
            hub["hub"].apply_control()
            wait_until(lambda: hub["hub"].readiness()[1]["routes"][ROUTE]["suspended"])
            refused = post(hub["url"], siebel_account("1-SUSP"))
            assert refused.status_code == 404
            control.set_state(ROUTE, "running")
            hub["hub"].apply_control()
            wait_until(lambda: not hub["hub"].readiness()[1]["routes"][ROUTE]["suspended"])
            wait_until(lambda: bool(bindings(hub["hub"])))
            assert post(hub["url"], siebel_account("1-RESUMED")).status_code == 202
        finally:
            control.close()
        assert [a.external_id for a in hub["billing"].accounts.values()] == ["1-RESUMED"]


def bindings(hub: Hub) -> list[Any]:
    """The bindings the hub's CRM listener serves now, that run their route inline."""
    from adapters.soap.server import LISTENERS

    return [
        binding
        for listener in list(LISTENERS.listeners.values())
        for service in list(listener.services.values())
        for binding in list(service.bindings.values())
        if binding.inline is not None and binding.info.name == "SubmitBillingAccount"
    ]


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (20 s at most)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "condition not met in 20 s"
        time.sleep(0.02)
