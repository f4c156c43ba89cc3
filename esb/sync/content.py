"""What a sync compares: the projection of a canonical body, its content hash, and comparable versions.

- :func:`project` keeps only the fields a target cares about (top-level names or dotted paths; a field
  the body lacks is left out, a null is kept).
- :func:`content_hash` is a 128-bit BLAKE2b of the projection as canonical JSON (keys sorted), so the
  same content always hashes the same whatever order its fields came in.
- :func:`version_number` turns a version into an integer that compares in SQL: an integer stays itself,
  a date-time becomes microseconds since the epoch (UTC; a date-time without a zone is refused).
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson

from esb.exceptions import MessageError

#: zlib level for stored bodies: fast, and JSON shrinks well already at 1.
PACK_LEVEL = 1


class SyncDataError(MessageError):
    """The message cannot be synced: no key, or a version that is neither an integer nor a date-time."""

    reason = "sync-data"


def project(body: dict[str, Any], fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return the part of ``body`` named by ``fields`` (dotted paths keep their nesting)."""
    out: dict[str, Any] = {}
    for field in fields:
        parts = field.split(".")
        value: Any = body
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return out


def canonical_json(value: Any) -> bytes:
    """Return ``value`` as JSON with sorted keys and no spaces (the bytes the hash is taken of)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def content_hash(projection: dict[str, Any]) -> str:
    """Return the content hash (32 hex digits) of a projection."""
    return hashlib.blake2b(canonical_json(projection), digest_size=16).hexdigest()


def pack(projection: dict[str, Any]) -> bytes:
    """Return a projection as stored: compressed JSON."""
    return zlib.compress(canonical_json(projection), PACK_LEVEL)


def unpack(packed: bytes | None) -> dict[str, Any] | None:
    """Return a stored projection (None stays None)."""
    if packed is None:
        return None
    value: dict[str, Any] = orjson.loads(zlib.decompress(packed))
    return value


def version_number(value: Any, where: str = "version") -> int | None:
    """Return ``value`` as a comparable integer (None for no value).

    Integers (or their text) stay themselves; an ISO 8601 date-time with a zone (``Z`` or an offset)
    becomes microseconds since the epoch. Anything else is a :class:`SyncDataError`.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SyncDataError(f"{where}: {value!r} is not a version (an integer or an ISO date-time)")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise SyncDataError(
                    f"{where}: date-time {value!r} has no time zone: write it with Z or an offset "
                    "(+08:00) so versions from different systems compare"
                )
            return _micros(moment)
    raise SyncDataError(f"{where}: {value!r} is not a version (an integer or an ISO date-time with a zone)")


def _micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z, exact (no float rounding)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
