"""The reply a batch endpoint sends its sender for each input file (``inbound.reply``), and its formats.

One reply per input file, uploaded to ``reply.dir`` as ``<file name><reply.suffix>`` (``.rec`` by
default; for a refused unsafe name, the name with its unsafe characters replaced by ``_``). Lines
``KEY|value`` joined by CRLF, in the endpoint's encoding; ``STATUS`` says which kind it is:

- ``PROCESSED``: ``FILE``, ``STATUS``, ``SHA256``, ``RECEIVED``, ``DELIVERED``, ``REJECTED``, ``BALANCED``,
  ``FINISHED_AT`` (and ``<name>.rej`` beside it when ``include_rejects`` and records were rejected);
- ``DUPLICATE``: ``FILE``, ``STATUS``, ``SHA256``, ``DUPLICATE_OF`` (the original file's name),
  ``CORRELATION_ID`` (the original's, ``batch:<sha256[:16]>``): nothing was delivered again;
- ``REFUSED``: ``FILE``, ``STATUS``, ``SHA256`` (empty when never downloaded), ``REASON``: nothing was
  delivered.
"""

from __future__ import annotations

import json
from typing import Any


def encode(fields: dict[str, Any], encoding: str) -> bytes:
    """The reply file's bytes: ``KEY|value`` lines joined by CRLF (unencodable characters replaced)."""
    lines = [f"{key.upper()}|{'' if value is None else value}" for key, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n").encode(encoding, "replace")


def processed(reconciliation: dict[str, Any]) -> dict[str, Any]:
    """The reply fields of a processed file, from its reconciliation."""
    fields = {"file": reconciliation["file"], "status": "PROCESSED"}
    fields.update({k: v for k, v in reconciliation.items() if k not in ("file", "header")})
    return fields


def duplicate(row: dict[str, Any]) -> dict[str, Any]:
    """The reply fields of a file whose content (SHA-256) was already received under another name."""
    origin = json.loads(row["reconciliation"] or "{}")
    return {
        "file": row["name"],
        "status": "DUPLICATE",
        "sha256": row["sha256"],
        "duplicate_of": origin.get("duplicate_of"),
        "correlation_id": origin.get("correlation_id"),
    }


def refused(name: str, reason: str, sha256: str | None = None) -> dict[str, Any]:
    """The reply fields of a refused file (whole-file check failed, unsafe name)."""
    return {
        "file": name,
        "status": "REFUSED",
        "sha256": sha256,
        "reason": " ".join(reason.split()).replace("|", "/"),
    }
