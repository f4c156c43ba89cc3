"""Helpers for the directory systems' tests: subscribers as the CRM sends them, records as the hub writes
them, the directories' endpoints over any remote."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from adapters.batch import BatchEndpoint
from esb.message import Message
from esb.project import Project
from simulators.directories import rejected_by_share

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def load_project() -> Project:
    """The repository's project (its routes, layouts and mappings), loaded once."""
    return Project.load(ROOT, None)


def subscriber(
    number: str, *, privacy: str = "public", printed: bool = True, name: str = "张伟"
) -> dict[str, Any]:
    """A canonical subscriber with its directory preferences."""
    return {
        "@type": "Subscriber", "@schemaVersion": "1", "id": f"1-{number}", "accessNumber": number,
        "msisdn": number, "serviceType": "mobile", "status": "active", "customer": {"id": f"C-{number}"},
        "lastUpdate": "2026-01-05T10:00:00+08:00",
        "characteristic": [{"name": "directoryListing", "value": {"privacy": privacy, "printed": printed,
                            "name": name, "city": "杭州市", "address": "文三路90号"}}],
    }  # fmt: skip


def record(project: Project, body: dict[str, Any], directory: str) -> Message:
    """The record the hub writes for ``body`` (mappings of the directory's route, without its filter)."""
    mapping = {"dir114": "directory114/listing_to_record", "phonebook": "phonebook/listing_to_record"}[
        directory
    ]
    listing = project.transforms.get("directory/subscriber_to_listing").apply(
        Message(body=body, id=body["id"])
    )
    return project.transforms.get(mapping).apply(listing)


def endpoint(project: Project, name: str, remote: dict[str, Any]) -> BatchEndpoint:
    """The project's batch endpoint ``name`` with its remote replaced (FTP, SFTP, another folder) and no
    flush by size."""
    config = project.endpoint(name)
    assert isinstance(config, BatchEndpoint)
    spec = config.model_dump(exclude_unset=True, by_alias=True)
    spec["remote"] = remote
    if "outbound" in spec:  # the test flushes (ESB_DIRECTORY_MAX_RECORDS may be set by an earlier demo)
        spec["outbound"]["max_records"] = None
    return BatchEndpoint.model_validate(spec)


def numbers(count: int, *, rejected: bool, start: int = 0) -> list[str]:
    """``count`` MSISDNs the simulated directories reject (``rejected``) or accept."""
    found = []
    n = start
    while len(found) < count:
        number = f"1390000{n:04d}"
        if rejected_by_share(number) == rejected:
            found.append(number)
        n += 1
    return found
