"""The directories' resync transform against the live chain: a CRM full subscriber extract record maps to
exactly the listing the live route's sync step judges for the same asset (crm/siebel_subscriber_to_canonical
then directory/subscriber_to_listing), so a resync's content hashes agree with live traffic's and an
unlisted subscriber is excluded by the same rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esb.message import Message
from esb.transforms import TransformRegistry
from simulators.directory_scenario import PlannedSubscriber, subscriber_xml
from tests.directory_extract import extract_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> TransformRegistry:
    """The repo's mappings."""
    return TransformRegistry(ROOT)


def live_listing(registry: TransformRegistry, sub: PlannedSubscriber, updated: str) -> Any:
    """The listing a live CRM change of ``sub`` becomes at the directory routes' sync step."""
    message = Message(body=subscriber_xml(sub, updated))
    siebel = registry.get("crm/siebel_subscriber_to_canonical").apply(message)
    return registry.get("directory/subscriber_to_listing").apply(siebel).body


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param(PlannedSubscriber("1-A", "13900000001", "张伟", True, True), id="listed"),
        pytest.param(PlannedSubscriber("1-B", "13900000002", "李娜", False, False), id="unlisted"),
        pytest.param(PlannedSubscriber("1-C", "13900000003", "王芳", True, False), id="114-only"),
    ],
)
def test_an_extract_record_maps_to_the_listing_of_the_live_change(
    registry: TransformRegistry, sub: PlannedSubscriber
) -> None:
    """Extract record and live SiebelMessage of the same asset give the same listing, field for field."""
    from_extract = registry.get("crm/subscriber_full_to_listing").transform_body(
        extract_record(sub, "2026-01-05T10:00:00+08:00")
    )
    assert from_extract == live_listing(registry, sub, "01/05/2026 10:00:00")
    assert from_extract["publish"] is sub.listed
