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


def digest_of(project: Any, name: str) -> bytes:
    """The rules digest a resync of ``name`` fingerprints records with."""
    from esb.journal import Journal
    from esb.resync.resync import Resync
    from esb.sync.store import SyncStore

    url = project.settings.journal.url
    with Journal(url) as journal, SyncStore(url) as store:
        engine = Resync(project, journal, store, name, project.settings.sync.resync[name])
        try:
            return engine.fingerprints.digest
        finally:
            engine.close()


def test_editing_the_live_listing_mapping_makes_the_next_resync_judge_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directories' resync digest covers the route's listing mapping (run by the resync's transform):
    an edit of it changes the digest, so no record is skipped as unchanged by an old fingerprint."""
    from esb.project import Project

    project = Project.load(ROOT, environ={"ESB_DATA_DIR": str(tmp_path / "data")})
    before = digest_of(project, "dir114-listings")
    live = ROOT / "transforms" / "directory"
    (tmp_path / "directory").mkdir()
    edited = tmp_path / "directory" / "subscriber_to_listing.yaml"
    (tmp_path / "directory" / "records.py").write_bytes((live / "records.py").read_bytes())  # all else alike
    edited.write_bytes((live / "subscriber_to_listing.yaml").read_bytes() + b"# edited\n")
    real = project.transforms.path_of

    def path_of(name: str) -> Path:
        return edited if name == "directory/subscriber_to_listing" else real(name)

    monkeypatch.setattr(project.transforms, "path_of", path_of)
    assert digest_of(project, "dir114-listings") != before
