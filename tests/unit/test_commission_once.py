"""Route channel-commissions pays a partner once per order item: the same completed order sent again
under another message id (a second process instance) is skipped and journaled; a corrected one is sent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from esb.journal import Journal
from esb.message import Message
from esb.project import Project
from esb.runtime.routetest import MockedProject
from esb.runtime.worker import RouteWorker
from esb.typing import Delivery

ROOT = Path(__file__).resolve().parents[2]
ROUTE = "channel-commissions"
ORDER: dict[str, Any] = orjson.loads(
    (ROOT / "tests/routes/samples/partner_order_completed.json").read_bytes()
)


@pytest.fixture
def project(tmp_path: Path) -> MockedProject:
    """The real project with mocked endpoints and a journal (with the sync state) in a file of its own."""
    mocked = MockedProject.of(Project.load(ROOT, environ={"ESB_DATA_DIR": str(tmp_path / "var")}))
    journal = mocked.settings.journal.model_copy(update={"url": f"sqlite:///{tmp_path / 'journal.db'}"})
    mocked.settings = mocked.settings.model_copy(update={"journal": journal})
    return mocked


def send(project: MockedProject, *orders: tuple[str, dict[str, Any]]) -> Journal:
    """Run each (message id, order) through the route, one worker each as two hub processes would."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    for message_id, order in orders:
        worker = RouteWorker(project, project.route(ROUTE), journal)
        worker.handle(Delivery(Message(body=orjson.dumps(order), id=message_id), lambda error: None))
        worker._shutdown()
    return journal


def paid(project: MockedProject) -> list[tuple[str, str, str]]:
    """(order, item, CNY commission) of each commission record written to the channel system's file."""
    return [
        (r.body["order_id"], r.body["item_id"], r.body["commission_cny"])
        for r in project.mock("channel.commissions_out").received
    ]


def test_the_same_order_under_two_message_ids_pays_each_item_once(project: MockedProject) -> None:
    """The second instance's identical commissions are skipped as unchanged and journaled so."""
    journal = send(project, ("crm-1", ORDER), ("crm-2", copy.deepcopy(ORDER)))
    order = ORDER["id"]
    assert paid(project) == [(order, "01", "69.90"), (order, "02", "31.94")]
    [event] = [e for e in journal.history("crm-2") if e.state == "filtered"]
    dropped = (event.detail or {})["dropped"]
    assert [(d["key"], d["skipped"]) for d in dropped] == [
        (f"{order}/01", "unchanged"),
        (f"{order}/02", "unchanged"),
    ]
    assert journal.outcome(ROUTE, "crm-1") == "delivered"
    journal.close()


def test_a_corrected_commission_is_sent_and_an_unchanged_item_is_not(project: MockedProject) -> None:
    """A correction of one item's monthly fee sends that item's new commission; the other item is skipped."""
    corrected = copy.deepcopy(ORDER)
    fee = corrected["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]
    fee["value"] = "299.00"
    send(project, ("crm-1", ORDER), ("crm-3", corrected)).close()
    order = ORDER["id"]
    sent = paid(project)
    assert sent[:2] == [(order, "01", "69.90"), (order, "02", "31.94")]
    assert [(o, i) for o, i, _ in sent[2:]] == [(order, "01")]
    assert sent[2][2] != "69.90"
