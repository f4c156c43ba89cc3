"""Resolved trouble ticket (with the process's dispatch, assignment, completion) -> one NCR extract record.

Field names are the detail fields of config/layouts/ncr_ticket_extract.yaml. Free texts go through the
``flat_text`` mapping function (no '|', no line break, writable in GBK); times are Beijing time as
``yyyymmddhhmmss``. ``within_deadline`` is ``Y`` when
the work order was completed by its due time (``assignment.dueAt``), ``N`` when late, empty when either time
is missing.
"""

from __future__ import annotations

from typing import Any

from esb.transforms import dates


def _by_role(items: Any, role: str, field: str) -> Any:
    for entry in items or []:
        if isinstance(entry, dict) and entry.get("role") == role:
            return entry.get(field)
    return None


def _within_deadline(ticket: dict[str, Any]) -> str | None:
    done = (ticket.get("completion") or {}).get("completedAt")
    due = (ticket.get("assignment") or {}).get("dueAt")
    if not done or not due:
        return None
    finished, deadline = (dates.parse_datetime(t, None, "Asia/Shanghai") for t in (done, due))
    return "N" if finished > deadline else "Y"


def to_record(ticket: dict[str, Any], context: Any) -> dict[str, Any]:
    """Project one resolved ticket onto the extract's columns."""

    def text(value: Any) -> str | None:
        return None if value is None else context.fn("flat_text", value, "|", "gbk")

    def stamp(value: Any) -> str | None:
        return (
            None if value is None else context.fn("format_datetime", value, "%Y%m%d%H%M%S", "Asia/Shanghai")
        )

    assignment = ticket.get("assignment") or {}
    completion = ticket.get("completion") or {}
    return {
        "ticket_id": text(ticket["id"]),
        "status": ticket["status"],
        "ticket_type": text(ticket.get("ticketType")),
        "severity": ticket.get("severity"),
        "access_number": text(ticket.get("accessNumber")),
        "fault_category": text(ticket.get("faultCategory")),
        "region": text(_by_role(ticket.get("relatedParty"), "serviceRegion", "id")),
        "team": text((ticket.get("dispatch") or {}).get("team")),
        "technician_id": text(assignment.get("technicianId")),
        "work_order_id": text(assignment.get("workOrderId")),
        "created_at": stamp(ticket.get("creationDate")),
        "resolved_at": stamp(ticket.get("resolutionDate") or completion.get("completedAt")),
        "within_deadline": _within_deadline(ticket),
        "resolution": text(completion.get("resolution")),
    }
