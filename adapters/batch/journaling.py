"""The reconciliation of each finished batch file, in the hub's journal, as a file-level message.

A source is not told which route reads it (``AdapterContext`` names the endpoint only), so a file is
journaled on its own pseudo-route ``batch:<system.endpoint>``; its records are journaled by the route
as usual. The file-level message:

- id and correlation id ``batch:<sha256[:16]>``: the correlation id of every record of the file, so
  ``esb trace batch:<sha>`` shows the file with its records; business key ``batch_file`` = the file name,
  so ``esb trace CHG_571_20240531_001.dat`` finds it too;
- state ``delivered`` for a processed file, ``dead_lettered`` for a refused one (with the reason),
  ``filtered`` for a duplicate (same content under a new name: a message of its own, see
  :func:`_duplicate_message`);
- detail and body: ``{file, sha256, size, received, delivered, rejected, balanced}`` (``error`` when refused),
  and ``header``: the fields of the file's header record when its layout has one (an ack file's counts).

Written by the poller when it settles the file, BEFORE the remote file is moved and the state says
``done``: a journal that cannot be reached leaves the file to the next poll (at least once), and a
file already journaled (a poll that stopped before moving it) is not journaled twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from esb.context import AdapterContext
from esb.message import Message

FILE_MESSAGE_TYPE = "batch.file"


class FileJournal:
    """Journals finished files of one endpoint through the engine's journal notes (opened on first use)."""

    def __init__(self, context: AdapterContext) -> None:
        self.notes = context.services.journal_notes()
        self.route = f"batch:{context.endpoint}"
        self.system = context.system

    def record(self, row: dict[str, Any]) -> bool:
        """Journal the file of state-store ``row`` (processed or failed); False if it already was."""
        message, state, detail = file_message(row, self.system)
        error = detail.get("error") if state == "dead_lettered" else None
        return self.notes.note(self.route, message, state, detail=detail, error=error)

    def close(self) -> None:
        """Close the journal. Safe to call twice."""
        self.notes.close()


def file_message(row: dict[str, Any], system: str) -> tuple[Message, str, dict[str, Any]]:
    """The file-level message of ``row``, its final state and the detail journaled with it."""
    detail: dict[str, Any] = {"file": row["name"], "sha256": row["sha256"], "size": row["size"]}
    if row["status"] == "duplicate":
        return _duplicate_message(row, system, detail)
    if row["status"] == "processed":
        reconciliation = json.loads(row["reconciliation"] or "{}")
        detail.update({k: reconciliation.get(k) for k in ("received", "delivered", "rejected", "balanced")})
        if reconciliation.get("header"):
            detail["header"] = reconciliation["header"]  # the file's own header: an ack's counts
        state = "delivered"
    else:
        detail.update(received=row["records"], delivered=0, rejected=0, error=row["error"] or "refused")
        state = "dead_lettered"
    ident = f"batch:{row['sha256'][:16]}"
    message = Message(
        body=detail,
        id=ident,
        correlation_id=ident,
        type=FILE_MESSAGE_TYPE,
        source=system,
        headers={"batch-file": row["name"], "batch-sha256": row["sha256"]},
        business_keys={"batch_file": row["name"]},
    )
    return message, state, detail


def _duplicate_message(
    row: dict[str, Any], system: str, detail: dict[str, Any]
) -> tuple[Message, str, dict[str, Any]]:
    """A duplicate's own file-level message: ``filtered``, pointing at the original (name, correlation id).

    Its id is the original's with a hash of the new name (``batch:<sha>:dup:<8 hex>``), its correlation
    and causation ids the original's, its business key ``batch_file`` the NEW name: ``esb trace <new
    name>`` shows it with the original file and its records.
    """
    origin = json.loads(row["reconciliation"] or "{}")
    original_id = origin.get("correlation_id") or f"batch:{row['sha256'][:16]}"
    detail.update(
        duplicate_of=origin.get("duplicate_of"),
        original_correlation_id=original_id,
        received=row["records"],
        delivered=0,
        reason=f"duplicate of {origin.get('duplicate_of')} (same SHA-256): not delivered again",
    )
    suffix = hashlib.sha256(row["name"].encode("utf-8", "surrogatepass")).hexdigest()[:8]
    message = Message(
        body=detail,
        id=f"{original_id}:dup:{suffix}",
        correlation_id=original_id,
        causation_id=original_id,
        type=FILE_MESSAGE_TYPE,
        source=system,
        headers={
            "batch-file": row["name"],
            "batch-sha256": row["sha256"],
            "batch-duplicate-of": origin.get("duplicate_of") or "",
        },
        business_keys={"batch_file": row["name"]},
    )
    return message, "filtered", detail
