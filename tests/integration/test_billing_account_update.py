"""A CRM billing account through the repo's own route crm-billing-account-to-billing, a running hub and
the simulated Billing over SOAP on loopback: created once, a change sent as updateAccount under Billing's
own account id, an unchanged one not sent, a Billing that lost the account (restored) gets it created
again, and an account Billing held before the hub kept its id is updated, not left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from esb.journal import Journal
from esb.project import Project
from esb.runtime.hub import Hub
from esb.sync.store import SyncStore
from simulators.billing import Account, BillingSimulator
from tests.integration.soap_project import REPO, free_port, make_soap_project, siebel_account
from tests.integration.test_soap_flows import crm_post

ROUTE = "crm-billing-account-to-billing"
SYNC = "billing-account-billing"


def with_repo_route(root: Path) -> None:
    """Give the SOAP test project the repo's own route (fast redelivery) and Billing's update endpoint."""
    repo_routes = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    route = next(r for r in repo_routes if r["id"] == ROUTE)
    route["on_error"] = {
        "redeliver": {"max": 2, "backoff": "fixed", "initial": "10ms"},
        "dead_letter": "dlq.billing",
    }
    routes = yaml.safe_load((root / "routes.yaml").read_text(encoding="utf-8"))
    routes["routes"] = [route if r["id"] == ROUTE else r for r in routes["routes"]]
    (root / "routes.yaml").write_text(yaml.safe_dump(routes, allow_unicode=True), encoding="utf-8")
    systems = yaml.safe_load((root / "config" / "systems.yaml").read_text(encoding="utf-8"))
    endpoints = systems["systems"]["billing"]["endpoints"]
    endpoints["update_account"] = {**endpoints["create_account"], "operation": "updateAccount"}
    text = yaml.safe_dump(systems, allow_unicode=True)
    (root / "config" / "systems.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A hub running the repo's billing-account route, and the simulated Billing behind it."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    billing = BillingSimulator("esb", "billing-secret")
    url = billing.serve()
    port = free_port()
    root = make_soap_project(tmp_path, url, port)
    with_repo_route(root)
    project = Project.load(root)
    running = Hub(project)
    running.start(wait=20)
    try:
        yield {"billing": billing, "base": f"http://127.0.0.1:{port}/soap", "project": project}
    finally:
        running.stop(timeout=5)
        billing.stop()


def send(hub: dict[str, Any], row_id: str, name: str, customer: str = "CUST-440100-0001") -> None:
    """The CRM posts the account; the one-way listener answers 202 once the route ended."""
    response = crm_post(hub["base"], siebel_account(row_id, customer, name))
    assert response.status_code == 202, response.text


def held(hub: dict[str, Any], row_id: str) -> Account:
    """The one account Billing holds for the CRM's row id."""
    accounts = [a for a in hub["billing"].accounts.values() if a.external_id == row_id]
    assert len(accounts) == 1, accounts
    return accounts[0]


def calls(hub: dict[str, Any]) -> list[str]:
    """The Billing operations called so far, in order."""
    return [name for name, _ in hub["billing"].calls]


def test_a_changed_account_is_updated_under_billings_id_and_an_unchanged_one_not_sent(
    hub: dict[str, Any],
) -> None:
    """Created once; a new name goes as updateAccount with Billing's id; the same again calls nothing."""
    send(hub, "1-UPD1", "张伟的账户")
    account = held(hub, "1-UPD1")
    assert calls(hub) == ["CreateAccountRequest"]
    send(hub, "1-UPD1", "张伟的新账户")
    assert calls(hub) == ["CreateAccountRequest", "UpdateAccountRequest"]
    assert hub["billing"].calls[-1][1]["accountId"] == account.account_id
    assert held(hub, "1-UPD1").name == "张伟的新账户"
    assert hub["billing"].updates == {account.account_id: 1}
    send(hub, "1-UPD1", "张伟的新账户")
    assert calls(hub) == ["CreateAccountRequest", "UpdateAccountRequest"]
    with Journal(hub["project"].settings.journal.url) as journal:
        last = journal.find(route=ROUTE)[0]
        assert last.state == "filtered"


def test_an_account_billing_lost_is_created_again_and_its_new_id_kept(hub: dict[str, Any]) -> None:
    """A restored Billing answers BIL-1004: created again; the next change updates the new id."""
    send(hub, "1-UPD2", "李娜的账户")
    old = held(hub, "1-UPD2").account_id
    hub["billing"].restore(keep=0)
    send(hub, "1-UPD2", "李娜的新账户")
    assert calls(hub) == ["CreateAccountRequest", "UpdateAccountRequest", "CreateAccountRequest"]
    new = held(hub, "1-UPD2")
    assert (new.name, new.account_id != old) == ("李娜的新账户", True)
    send(hub, "1-UPD2", "李娜的第三个名字")
    assert hub["billing"].calls[-1] == ("UpdateAccountRequest", hub["billing"].calls[-1][1])
    assert hub["billing"].calls[-1][1]["accountId"] == new.account_id
    assert held(hub, "1-UPD2").name == "李娜的第三个名字"


def test_an_account_billing_held_before_its_id_was_kept_is_updated_not_left_unchanged(
    hub: dict[str, Any],
) -> None:
    """No kept id (synced before the hub kept Billing's ids): createAccount answers the old account
    unchanged, so the route updates it under the id that answer gave, and keeps the id."""
    send(hub, "1-UPD3", "王芳的账户")
    account_id = held(hub, "1-UPD3").account_id
    url = hub["project"].settings.journal.url
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a database synced before migration 0007 holds no id
        conn.execute(sa.text("DELETE FROM sync_target_ids"))
    engine.dispose()
    send(hub, "1-UPD3", "王芳的新账户")
    assert calls(hub)[1:] == ["CreateAccountRequest", "UpdateAccountRequest"]
    assert held(hub, "1-UPD3").name == "王芳的新账户"
    with SyncStore(url) as store:
        assert store.target_id(SYNC, "1-UPD3") == account_id


def test_a_busy_billing_is_retried_and_the_account_updated_once(hub: dict[str, Any]) -> None:
    """BIL-0503 on the update is no "unknown account": the route retries and updates, creating nothing."""
    send(hub, "1-UPD4", "赵强的账户")
    account_id = held(hub, "1-UPD4").account_id
    hub["billing"].busy_next(2)
    send(hub, "1-UPD4", "赵强的新账户")
    assert held(hub, "1-UPD4").name == "赵强的新账户"
    assert hub["billing"].updates == {account_id: 1}
    assert calls(hub).count("CreateAccountRequest") == 1


def test_a_refused_create_after_bil_1004_is_dead_lettered_and_nothing_created(hub: dict[str, Any]) -> None:
    """Billing lost the account and refuses to create it again (BIL-1001): the change ends dead-lettered."""
    send(hub, "1-UPD5", "孙丽的账户")
    hub["billing"].restore(keep=0)
    send(hub, "1-UPD5", "孙丽的新账户", customer="INVALID-5")
    assert [a for a in hub["billing"].accounts.values() if a.external_id == "1-UPD5"] == []
    with Journal(hub["project"].settings.journal.url) as journal:
        last = journal.find(route=ROUTE)[0]
        assert last.state == "dead_lettered"
