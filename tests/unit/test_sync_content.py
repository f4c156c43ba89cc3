"""The sync's projection, content hash and versions (esb/sync/content.py)."""

from __future__ import annotations

import pytest

from esb.sync.content import SyncDataError, content_hash, pack, project, unpack, version_number


def test_projection_keeps_only_the_named_fields_and_paths() -> None:
    """Named fields and dotted paths are kept with their nesting; others and missing ones are left out."""
    body = {"id": "C1", "name": "张三", "status": None, "address": {"city": "南京", "zip": "210000"}, "x": 1}
    assert project(body, ["name", "status", "address.city", "missing", "address.none"]) == {
        "name": "张三",
        "status": None,
        "address": {"city": "南京"},
    }


def test_content_hash_ignores_field_order_and_sees_any_value_change() -> None:
    """The same content in another key order hashes the same; one changed value hashes differently."""
    first = content_hash({"a": 1, "b": {"c": "张", "d": [1, 2]}})
    assert first == content_hash({"b": {"d": [1, 2], "c": "张"}, "a": 1})
    assert first != content_hash({"a": 1, "b": {"c": "张", "d": [2, 1]}})
    assert len(first) == 32


def test_pack_round_trips_a_projection() -> None:
    """A stored body comes back as it was packed; None stays None."""
    body = {"name": "李四", "n": [1, {"x": None}]}
    assert unpack(pack(body)) == body
    assert unpack(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(42, 42, id="int"),
        pytest.param("42", 42, id="int-text"),
        pytest.param(7.0, 7, id="whole-float"),
        pytest.param("1970-01-01T00:00:01Z", 1_000_000, id="utc"),
        pytest.param("1970-01-01T08:00:01.5+08:00", 1_500_000, id="offset"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_versions_become_comparable_integers(value: object, expected: int | None) -> None:
    """Integers stay themselves; a date-time with a zone is microseconds since the epoch (UTC)."""
    assert version_number(value) == expected


def test_date_times_in_different_zones_compare_by_instant() -> None:
    """2026-12-06T10:00+08:00 is older than 2026-12-06T03:00Z (02:00Z against 03:00Z)."""
    assert version_number("2026-12-06T10:00:00+08:00") < version_number("2026-12-06T03:00:00Z")  # type: ignore[operator]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-12-06T10:00:00", id="naive-date-time"),
        pytest.param("yesterday", id="words"),
        pytest.param(True, id="bool"),
        pytest.param(1.5, id="fraction"),
        pytest.param({"v": 1}, id="object"),
    ],
)
def test_what_is_not_a_version_is_a_message_error(value: object) -> None:
    """A naive date-time, text, a boolean, a fraction or an object is refused with a SyncDataError."""
    with pytest.raises(SyncDataError, match=r"version|zone"):
        version_number(value)
