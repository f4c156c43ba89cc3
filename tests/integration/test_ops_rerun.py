"""esb replay for routes fed by a SOAP listener or a batch folder: run again in the command's process,
through today's steps and the real sinks (Billing simulator, embedded queue), journaled as replays."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.batch import BatchAdapter
from esb.journal import Journal
from esb.ops.replay import Replayer, Selection, select
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.batch_files import write_charge_file
from simulators.billing import BillingSimulator
from tests.e2e.hub_process import hub_environ
from tests.e2e.ops_hub import copy_project
from tests.integration.soap_project import free_port, make_soap_project, siebel_account
from tests.integration.test_soap_flows import crm_post

pytestmark = pytest.mark.integration


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return the last answer."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_soap_one_way_route_is_replayed_to_billing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A billing account that came in over the CRM listener is created in Billing again by a replay run
    here (same id, esb-replay), with the hub stopped: the journal shows replayed, then delivered."""
    for name, value in (("BILLING", "billing-secret"), ("CRM", "crm-secret"), ("HOTLINE", "hotline-secret")):
        monkeypatch.setenv(f"TEST_{name}_PASSWORD", value)
    billing = BillingSimulator("esb", "billing-secret")
    url = billing.serve()
    port = free_port()
    project = Project.load(make_soap_project(tmp_path, url, port))
    hub = Hub(project)
    hub.start(wait=20)
    try:
        assert crm_post(f"http://127.0.0.1:{port}/soap", siebel_account("1-RPLY1")).status_code == 202
    finally:
        hub.stop(timeout=5)
    try:
        with Journal(project.settings.journal.url) as journal:
            records = select(journal, project, Selection(key=("account_id", "1-RPLY1")))
            assert len(records) == 1
            with Replayer(project, journal) as replayer:
                outcome = replayer.replay_record(records[0])
            assert outcome.status == "sent", outcome.reason
            assert outcome.reason == "run in this process: delivered"
            states = [e.state for e in journal.history(records[0].id)
                      if e.route == "crm-billing-account-to-billing" and not e.endpoint]
            assert states[-3:] == ["replayed", "redelivered", "delivered"]
        assert [name for name, _ in billing.calls] == ["CreateAccountRequest"] * 2
        assert {f["externalId"] for _, f in billing.calls} == {"1-RPLY1"}
    finally:
        billing.stop()


def test_batch_route_record_is_replayed_and_poll_runs_are_recorded(tmp_path: Path) -> None:
    """A charge record read from a batch folder is replayed here to the canonical queue (a 4th message,
    marked esb-replay); the hub's polls were recorded, so health shows the poll's last run."""
    root = copy_project(tmp_path / "project")
    environ = hub_environ(tmp_path / "var", ESB_EXCHANGE_DIR=str(tmp_path / "exchange"), ESB_BATCH_POLL="1s",
                          ESB_MONITORING__ENABLED="false")
    project = Project.load(root, environ=environ)
    inbox = tmp_path / "exchange" / "billing" / "charges"
    inbox.mkdir(parents=True)
    write_charge_file(inbox / "CHG_571_20261125_001.dat", 3)
    (inbox / "CHG_571_20261125_001.dat.ok").write_bytes(b"")
    hub = Hub(project, route_ids=["billing-charges"])
    hub.start(wait=20)
    journal = Journal(project.settings.journal.url)
    journal.connect()
    try:
        assert wait_for(lambda: len(journal.find(route="billing-charges", state="delivered")) == 3)
        endpoint, where = project.endpoint("billing.charges_in"), project.context("billing.charges_in")
        assert wait_for(lambda: BatchAdapter().jobs(endpoint, where)[0]["last_run"] is not None)
        jobs = BatchAdapter().jobs(endpoint, where)
    finally:
        hub.stop(timeout=5)
    assert jobs[0]["job"] == "poll"
    queue = project.endpoint("billing.charges_canonical")
    adapter = project.adapter_for("billing.charges_canonical")
    context = project.context("billing.charges_canonical")
    assert adapter.queue_depth(queue, context) == 3
    record = journal.find(route="billing-charges", state="delivered")[0]
    with Replayer(project, journal) as replayer:
        outcome = replayer.replay_record(record)
    assert outcome.status == "sent", outcome.reason
    assert outcome.reason == "run in this process: delivered"
    assert adapter.queue_depth(queue, context) == 4
    replayed = [m for m in adapter.peek(queue, context, 10) if m.headers.get("esb-replay")]
    assert [(m.id, m.headers["esb-replay"]) for m in replayed] == [(record.id, "1")]
    assert journal.outcome("billing-charges", record.id) == "delivered"
    journal.close()
