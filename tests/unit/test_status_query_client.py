"""The simulated status query clients' reading of the answers (simulators/status_query.py): the CRM's and
the hotline's answers read as the same orders; a client is only made for a served SOAP endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.project import Project
from simulators.status_query import ComponentSeen, OrderSeen, StatusQueryClient, client_for, orders

ROOT = Path(__file__).resolve().parents[2]


def test_a_crm_answer_reads_as_orders_with_their_components() -> None:
    """Found Y with ListOfOrder/Order and ListOfComponent/Component: one OrderSeen with its components."""
    answer = {
        "Found": "Y",
        "ListOfOrder": {
            "Order": [
                {
                    "Order_spcNumber": "PO-1",
                    "Status": "In Progress",
                    "Process_spcStatus": "waiting",
                    "Current_spcStep": "components",
                    "ListOfComponent": {
                        "Component": [
                            {"Id": "PO-1-1", "Process_spcStatus": "running", "Status": "In Progress",
                             "Current_spcStep": "activation_result"},
                            {"Id": "PO-1-2", "Process_spcStatus": "done", "Status": "Complete"},
                        ]
                    },
                }
            ]
        },
    }  # fmt: skip
    assert orders(answer) == [
        OrderSeen(
            "PO-1",
            "In Progress",
            "waiting",
            "components",
            [
                ComponentSeen("PO-1-1", "running", "In Progress", "activation_result"),
                ComponentSeen("PO-1-2", "done", "Complete", None),
            ],
        )
    ]


def test_a_hotline_answer_and_not_found_read_the_same_way() -> None:
    """found/order/component read as OrderSeen; Found N and found false with nothing are no orders."""
    answer = {
        "found": True,
        "order": [
            {"orderId": "PO-2", "state": "completed", "status": "completed", "step": None,
             "component": [{"componentId": "PO-2-1", "status": "done", "state": "completed"}]}
        ],
    }  # fmt: skip
    assert orders(answer) == [
        OrderSeen(
            "PO-2", "completed", "completed", None, [ComponentSeen("PO-2-1", "done", "completed", None)]
        )
    ]
    assert orders({"Found": "N", "ListOfOrder": None}) == []
    assert orders({"found": False, "order": []}) == []


def test_clients_are_made_for_served_soap_endpoints_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped endpoints give the listener's URL and user; a queue endpoint or a bad system is refused."""
    monkeypatch.setenv("ESB_SOAP_HOTLINE_PASSWORD", "pw")
    project = Project.load(ROOT, environ={"ESB_SOAP_PORT": "18088"})
    client = client_for(project, "hotline.soap_order_status")
    assert (client.url, client.username, client.system) == (
        "http://127.0.0.1:18088/soap/hotline",
        "hotline",
        "hotline",
    )
    with pytest.raises(ValueError, match="expected a SOAP endpoint the hub serves"):
        client_for(project, "crm.orders_out")
    with pytest.raises(ValueError, match="expected crm or hotline"):
        StatusQueryClient("http://127.0.0.1:1/x", "u", "p", system="billing")
