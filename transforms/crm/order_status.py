"""Process views -> the CRM's order status update: an "Order Entry (Sales)" SiebelMessage.

The CRM takes an order's status back as Siebel EAI XML on its queue (crm.order_status): the integration
object "Order Entry (Sales)" (config/siebel.yaml) with one "Order Entry - Orders" component holding the
Order Number, the Siebel row Id when the hub knows it, the Status in the CRM's codes (code list
product_order_state, system siebel) and Comments. Names are written escaped, as the EAI XML converter
does by default (docs/transforms.md "Siebel EAI XML").
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from esb.exceptions import MappingError
from esb.transforms.siebel import siebel_escape

INT_OBJECT = "Order Entry (Sales)"
ORDER_COMPONENT = "Order Entry - Orders"


def siebel_order_update(fields: dict[str, str]) -> Any:
    """Return the SiebelMessage updating one order with ``fields`` (repository names, in order)."""
    message = etree.Element(
        "SiebelMessage",
        MessageType="Integration Object",
        IntObjectName=INT_OBJECT,
        IntObjectFormat="Siebel Hierarchical",
    )
    listof = etree.SubElement(message, "ListOf" + siebel_escape(INT_OBJECT))
    order = etree.SubElement(listof, siebel_escape(ORDER_COMPONENT))
    for name, value in fields.items():
        etree.SubElement(order, siebel_escape(name)).text = value
    return message


def _text(view: dict[str, Any], name: str, rule: str, path: str, *keys: str) -> str:
    """Return the non-blank string at ``keys`` of ``view``; MappingError naming ``path`` otherwise."""
    node: Any = view
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, str) and node.strip():
        return node
    raise MappingError(name, rule, path, f"expected a non-blank string, got {node!r}")


def _siebel_row_id(data: dict[str, Any]) -> str | None:
    """Return the order's Siebel row id (its externalReference of type siebel), if it has one."""
    for ref in data.get("externalReference") or []:
        if isinstance(ref, dict) and ref.get("externalReferenceType") == "siebel" and ref.get("id"):
            return str(ref["id"])
    return None


def _view(body: Any, name: str) -> dict[str, Any]:
    """Return the process view ``body``; MappingError if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        got = (
            f"an object with keys {', '.join(list(body)[:8])}"
            if isinstance(body, dict)
            else type(body).__name__
        )
        raise MappingError(
            name, "(input)", "data", f"expected a process view {{data, keys, state...}}, got {got}"
        )
    return body


def order_status_update(body: Any, context: Any) -> Any:
    """An order_to_activation view -> the CRM's status update of the order (Order Number, Id, Status)."""
    view = _view(body, context.name)
    number = _text(view, context.name, "Order Number", "data.id", "data", "id")
    state = _text(view, context.name, "Status", "state", "state")
    fields = {"Order Number": number}
    row_id = _siebel_row_id(view["data"])
    if row_id:
        fields["Id"] = row_id
    fields["Status"] = context.fn("codelist_out", state, "product_order_state", "siebel")
    return siebel_order_update(fields)


def cancel_reply(body: Any, context: Any) -> Any:
    """An order_cancellation view -> the CRM's update of the order the cancel named.

    Accepted (``data.outcome.accepted`` true): Status Cancelled, Comments the cancellation reason.
    Refused: the order's status is not changed by the refusal, so no Status; Comments give the reason.
    """
    view = _view(body, context.name)
    data = view["data"]
    number = _text(view, context.name, "Order Number", "data.productOrder.id", "data", "productOrder", "id")
    outcome = data.get("outcome")
    accepted = outcome.get("accepted") if isinstance(outcome, dict) else None
    if not isinstance(accepted, bool):
        raise MappingError(
            context.name,
            "Status",
            "data.outcome.accepted",
            f"expected the cancel's outcome {{accepted: true|false, reason}}, got {outcome!r}",
        )
    fields = {"Order Number": number}
    if accepted:
        fields["Status"] = context.fn("codelist_out", "cancelled", "product_order_state", "siebel")
        reason = data.get("cancellationReason")
        if isinstance(reason, str) and reason.strip():
            fields["Comments"] = reason
    else:
        reason = outcome.get("reason") if isinstance(outcome, dict) else None
        fields["Comments"] = f"cancel refused: {reason or 'no reason given'}"
    return siebel_order_update(fields)
