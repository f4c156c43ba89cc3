"""CRM full subscriber extract record (config/layouts/crm_subscriber_full.yaml) -> directory listing.

A resync judges each record at the directory route's ``sync`` step, so the record must become the body
that step sees live: the canonical subscriber that crm/siebel_subscriber_to_canonical gives for the same
asset (the same code tables, here), then the route's own listing mapping, directory/subscriber_to_listing,
applied as it is (not copied: the privacy rule, unlisted means ``publish: false``, is that mapping's).
The differential test (tests/unit/test_directory_resync.py) compares with the live chain.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SERVICE = {"Mobile": "mobile", "Fixed Line": "fixedLine", "Broadband": "broadband", "IPTV": "iptv"}
STATUS = {"Pending": "preActive", "Active": "active", "Suspended": "suspended", "Stopped": "stopped",
          "Inactive": "terminated"}  # fmt: skip
PRIVACY = {"Public": "public", "On Request": "numberOnRequest", "Name Only": "nameAndNumberOnly",
           "Unlisted": "confidential"}  # fmt: skip
TYPE = {"Residential": "residential", "Business": "business", "Government": "government",
        "Public Service": "publicService"}  # fmt: skip
#: The listing mapping the directory routes run before their sync step.
LISTING = "directory/subscriber_to_listing"


def _clean(text: str | None) -> str | None:
    return " ".join(text.split()) if text and text.strip() else None


def _lookup(table: dict[str, str], text: str | None, what: str) -> str:
    value = table.get((text or "").strip())
    if value is None:
        raise ValueError(f"{what} {text!r} is not one of {', '.join(table)}")
    return value


def to_subscriber(body: dict[str, Any]) -> dict[str, Any]:
    """The canonical subscriber a live change of this asset gives (crm/siebel_subscriber_to_canonical)."""
    asset_id, number = body["asset_id"].strip(), _clean(body["serial_number"])
    listing: dict[str, Any] = {
        "privacy": _lookup(PRIVACY, body.get("directory_privacy") or "Unlisted", "Directory Privacy"),
        "printed": (body.get("directory_printed") or "N").strip().upper() in ("Y", "YES", "TRUE", "1"),
    }
    for key, column in (("name", "directory_name"), ("industry", "directory_industry"),
                        ("city", "directory_city"), ("address", "directory_address")):  # fmt: skip
        if _clean(body.get(column)):
            listing[key] = _clean(body.get(column))
    if body.get("directory_type", "").strip():
        listing["type"] = _lookup(TYPE, body["directory_type"], "Directory Type")
    return {
        "@type": "Subscriber",
        "@schemaVersion": "1",
        "id": asset_id,
        "lastUpdate": body["updated"].strip(),
        "externalReference": [{"id": asset_id, "externalReferenceType": "siebel"}],
        "accessNumber": number,
        "msisdn": number,
        "serviceType": _lookup(SERVICE, body.get("product_type") or "Mobile", "Product Type"),
        "status": _lookup(STATUS, body["status"], "Status"),
        "customer": {"id": body["owner_account_id"].strip(), "@referredType": "Customer"},
        "characteristic": [{"name": "directoryListing", "value": listing}],
    }


@functools.cache
def _listing_mapping(project_dir: Path) -> Any:
    from esb.transforms import TransformRegistry  # the project's own registry, for its listing mapping

    return TransformRegistry(project_dir).get(LISTING)


def to_listing(body: dict[str, Any], context: Any) -> Any:
    """Map one extract record to the directory listing the live route's sync step would judge."""
    subscriber = to_subscriber(body)
    return _listing_mapping(Path(__file__).resolve().parents[2]).transform_body(subscriber)
