"""Canonical DirectoryListing -> one detail record of a directory's listing file.

Two vendors, two layouts: 114 (config/layouts/dir114_listing.yaml, fixed width, one-letter codes) and the
phone directory 号薄 (config/layouts/phonebook_listing.yaml, comma-separated, words). What they share: a
listing that is withdrawn or not to be published is a delete, and a delete carries the number only, never
a name or an address, so an unlisted subscriber's details never reach a directory's file. The printed
phone directory also drops a listing its holder did not want printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
#: listingType -> 114's one-letter category
TYPES_114 = {"residential": "R", "business": "B", "government": "G", "publicService": "P"}
#: privacy -> 114's one-letter code (confidential never reaches a file: it is a delete)
PRIVACY_114 = {"public": "P", "numberOnRequest": "R", "nameAndNumberOnly": "N"}
#: listingType -> the phone directory's section
SECTIONS = {"residential": "住宅", "business": "单位", "government": "政府", "publicService": "公共服务"}


def is_delete(listing: dict[str, Any], *, printed: bool = False) -> bool:
    """True when the directory must drop the number (``printed``: the printed directory's own choice too)."""
    if listing.get("status") == "withdrawn" or listing.get("publish") is not True:
        return True
    return printed and listing.get("publishInPrintedDirectory") is not True


def updated_stamp(listing: dict[str, Any], fmt: str = "%Y%m%d%H%M%S") -> str:
    """The listing's lastUpdate in Beijing time, formatted ('' when it has none)."""
    text = listing.get("lastUpdate")
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(BEIJING).strftime(fmt)


def _address(listing: dict[str, Any]) -> tuple[str | None, str | None]:
    """City and street address to list: none for 'name and number only'."""
    if listing.get("privacy") == "nameAndNumberOnly":
        return None, None
    address = listing.get("address") or {}
    return address.get("city"), address.get("fullText")


def to_114_record(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Project one listing onto the 114 record (action A add, C change, D delete)."""
    number = body["accessNumber"]
    if is_delete(body):
        return {"action": "D", "access_number": number, "updated_at": updated_stamp(body)}
    city, street = _address(body)
    return {
        "action": "C",
        "access_number": number,
        "listed_name": body["listedName"],
        "listing_type": TYPES_114.get(body.get("listingType", "residential"), "R"),
        "industry": body.get("industryCategory"),
        "city": city,
        "address": street,
        "privacy": PRIVACY_114[body.get("privacy", "public")],
        "updated_at": updated_stamp(body),
    }


def to_phonebook_record(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Project one listing onto the phone directory's record (op ADD, UPD, DEL)."""
    number = body["accessNumber"]
    changed = updated_stamp(body, "%Y-%m-%d %H:%M:%S")
    if is_delete(body, printed=True):
        return {"op": "DEL", "phone": number, "changed": changed}
    city, street = _address(body)
    return {
        "op": "UPD",
        "phone": number,
        "name": body["listedName"],
        "category": SECTIONS.get(body.get("listingType", "residential"), "住宅"),
        "trade": body.get("industryCategory"),
        "city": city,
        "street_address": street,
        "changed": changed,
    }
