"""The catalogue file (config/catalog.yaml): loading, its findings with file:line, and what lint adds."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from esb.config.catalog import (
    CATALOG_FILE,
    Kind,
    Policy,
    ResourceCategory,
    load_catalog,
    read_catalog,
    sample_warnings,
)
from esb.exceptions import ConfigError
from esb.lint import lint_project
from esb.model.registry import ModelRegistry
from esb.project import Project
from tests.unit.test_lint import findings_for, good_route

PROJECT = Path(__file__).resolve().parents[2]
MODEL = ModelRegistry(PROJECT / "canonical_model")

GOOD = """\
offerings:
  PO-HB-299:
    name: {zh: 好E家融合套餐299元, en: Home Bundle 299}
    bundle:
      policy: all_or_nothing
      components:
        - {offering: PO-BB-300M, mandatory: true}
        - {offering: PO-ITV-HD, mandatory: false}
  PO-BB-300M:
    name: {zh: 300M光宽带, en: 300M fibre broadband}
    kind: broadband
    resources:
      - {category: port, pool: POOL-PON-PORT}
    service: {specification: SS-FTTH}
    billing_subscriber: true
  PO-ITV-HD:
    name: {zh: 天翼高清, en: Tianyi HD IPTV}
    kind: iptv
"""


def write(root: Path, text: str) -> Path:
    """Write ``text`` as the catalogue of a project at ``root``; return ``root``."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / CATALOG_FILE).write_text(text, encoding="utf-8")
    return root


def test_the_shipped_catalogue_is_clean_and_holds_the_home_bundles() -> None:
    """config/catalog.yaml loads without findings and declares the 好E家 bundles with their policies."""
    catalog = load_catalog(PROJECT)
    hej = catalog.offerings["PO-HEJ-199"]
    assert hej.name.zh == "好E家 199元融合套餐"
    assert hej.bundle is not None
    assert hej.bundle.policy == "partial_allowed"
    members = {catalog.offerings[m.offering].kind for m in hej.bundle.components}
    assert members == {"broadband", "mobile", "iptv", "fixedLine"}


def test_a_good_catalogue_loads(tmp_path: Path) -> None:
    """A valid file gives the offerings by id, components and bundles told apart."""
    catalog, findings = read_catalog(write(tmp_path, GOOD))
    assert findings == []
    assert catalog is not None
    assert catalog.offerings["PO-BB-300M"].resources[0].category == "port"
    assert catalog.offerings["PO-HB-299"].kind is None
    assert catalog.where("PO-ITV-HD") == f"{CATALOG_FILE}:16"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "kind: iptv",
            "kind: tv",
            f"{CATALOG_FILE}:18: offerings.PO-ITV-HD.kind: Input should be 'broadband', 'mobile', 'iptv' or "
            "'fixedLine'",
            id="unknown-kind",
        ),
        pytest.param(
            "billing_subscriber: true",
            "billing_subscribr: true",
            f"{CATALOG_FILE}:15: offerings.PO-BB-300M.billing_subscribr: unknown key 'billing_subscribr' "
            "(did you mean 'billing_subscriber'?): remove it or fix its spelling",
            id="misspelt-key",
        ),
        pytest.param(
            "policy: all_or_nothing",
            "policy: best_effort",
            f"{CATALOG_FILE}:5: offerings.PO-HB-299.bundle.policy: Input should be 'all_or_nothing' or "
            "'partial_allowed'",
            id="unknown-policy",
        ),
        pytest.param(
            "category: port",
            "category: iptvAccount",
            f"{CATALOG_FILE}:13: offerings.PO-BB-300M.resources[0].category: Input should be 'msisdn'",
            id="unknown-resource-category",
        ),
        pytest.param(
            "    kind: iptv\n",
            "    kind: iptv\n    bundle: {policy: all_or_nothing, components: [{offering: PO-BB-300M, "
            "mandatory: true}]}\n",
            f"{CATALOG_FILE}:16: offerings.PO-ITV-HD: Value error, an offering is either a component "
            "(give kind) or a bundle (give bundle), not both",
            id="component-and-bundle",
        ),
        pytest.param(
            "    bundle:\n      policy",
            "    service: {specification: SS-HEJ}\n    bundle:\n      policy",
            f"{CATALOG_FILE}:2: offerings.PO-HB-299: Value error, a bundle takes nothing itself",
            id="bundle-with-service",
        ),
        pytest.param(
            "{offering: PO-ITV-HD, mandatory: false}",
            "{offering: PO-ITV-HDD, mandatory: false}",
            f"{CATALOG_FILE}:8: offerings.PO-HB-299.bundle.components[1].offering: unknown offering "
            "'PO-ITV-HDD' (did you mean 'PO-ITV-HD'?): declare it under offerings",
            id="unknown-member",
        ),
        pytest.param(
            "{offering: PO-ITV-HD, mandatory: false}",
            "{offering: PO-HB-299, mandatory: false}",
            f"{CATALOG_FILE}:8: offerings.PO-HB-299.bundle.components[1].offering: member 'PO-HB-299' is a "
            "bundle: bundles nest one level",
            id="member-is-a-bundle",
        ),
        pytest.param(
            "{offering: PO-ITV-HD, mandatory: false}",
            "{offering: PO-BB-300M, mandatory: false}",
            f"{CATALOG_FILE}:8: offerings.PO-HB-299.bundle.components[1].offering: member 'PO-BB-300M' is "
            "listed twice: raise its max instead",
            id="member-twice",
        ),
        pytest.param(
            "{offering: PO-ITV-HD, mandatory: false}",
            "{offering: PO-ITV-HD}",
            f"{CATALOG_FILE}:8: offerings.PO-HB-299.bundle.components[1]: missing required key "
            "'mandatory': add it",
            id="member-without-mandatory",
        ),
        pytest.param(
            "{zh: 天翼高清, en: Tianyi HD IPTV}",
            "{zh: 天翼高清}",
            f"{CATALOG_FILE}:17: offerings.PO-ITV-HD.name: missing required key 'en': add it",
            id="no-english-name",
        ),
        pytest.param(
            "  PO-ITV-HD:\n",
            "  PO-BB-300M:\n",
            f"{CATALOG_FILE}:16: invalid YAML",
            id="duplicate-offering",
        ),
    ],
)
def test_each_mistake_is_a_finding_with_file_and_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """Every kind of mistake in the file is reported at its line, saying what was expected."""
    assert old in GOOD
    _, findings = read_catalog(write(tmp_path, GOOD.replace(old, new, 1)))
    assert any(f.startswith(expected) for f in findings), findings


def test_load_refuses_a_broken_or_missing_catalogue(tmp_path: Path) -> None:
    """load_catalog raises ConfigError: with every finding for a broken file, 'file not found' without one."""
    with pytest.raises(ConfigError, match="file not found"):
        load_catalog(tmp_path)
    write(tmp_path, GOOD.replace("kind: iptv", "kind: tv"))
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    assert caught.value.findings[0].startswith(f"{CATALOG_FILE}:18: offerings.PO-ITV-HD.kind")


@pytest.mark.parametrize(
    ("literal", "schema", "path"),
    [
        pytest.param(Kind, "component_order.v1", ("properties", "componentKind"), id="kind"),
        pytest.param(
            Policy, "component_order.v1", ("$defs", "bundleRef", "properties", "policy"), id="policy"
        ),
        pytest.param(
            ResourceCategory,
            "resource_reservation.v1",
            ("$defs", "reservationItem", "properties", "category"),
            id="resource-category",
        ),
    ],
)
def test_catalogue_values_are_the_canonical_enumerations(
    literal: object, schema: str, path: tuple[str, ...]
) -> None:
    """Kinds, policies and resource categories the catalogue accepts are exactly the schemas' enumerations."""
    node = MODEL.schema(schema)
    for key in path:
        node = node[key]
    assert list(typing.get_args(literal)) == node["enum"]


def test_lint_reports_the_catalogue_findings(tmp_path: Path) -> None:
    """esb lint includes the catalogue's findings with file:line."""
    write(tmp_path, GOOD.replace("kind: iptv", "kind: tv"))
    findings = findings_for(tmp_path, [good_route()])
    assert any(f.startswith(f"{CATALOG_FILE}:18: offerings.PO-ITV-HD.kind") for f in findings)


def test_lint_finds_a_decompose_step_without_a_catalogue(tmp_path: Path) -> None:
    """A route that decomposes orders in a project without config/catalog.yaml is a finding at the step."""
    findings = findings_for(tmp_path, [good_route(steps=[{"decompose": None}])])
    assert any(
        f.startswith("routes.yaml:") and f"routes[0].steps[0].decompose: no {CATALOG_FILE}" in f
        for f in findings
    )
    write(tmp_path, GOOD)
    assert not any(
        "decompose" in f for f in findings_for(tmp_path, [good_route(steps=[{"decompose": None}])])
    )


def test_lint_warns_about_offerings_the_samples_order_and_the_catalogue_lacks(tmp_path: Path) -> None:
    """Each offering a CRM or channel sample orders must be in the catalogue, or lint warns at the case."""
    only_5g = "offerings:\n  PO-5G-129:\n    name: {zh: 5G畅享套餐129元, en: 5G plan 129}\n    kind: mobile\n"
    catalog, findings = read_catalog(write(tmp_path, only_5g))
    assert catalog is not None
    assert findings == []
    warnings = sample_warnings(Project.load(PROJECT, environ={}), catalog)
    assert any(
        w.startswith("transforms/crm/siebel_order_to_canonical_test.yaml:")
        and ": warning: cases[1]: offering 'PO-VAS-CLIP' (来电显示) is not in config/catalog.yaml" in w
        for w in warnings
    ), warnings
    assert any(w.startswith("transforms/channel/tmf_product_order_in_test.yaml:") for w in warnings)
    assert not any("'PO-5G-129'" in w for w in warnings)


def test_the_shipped_project_lints_clean_with_its_catalogue() -> None:
    """The repository's own lint has no catalogue finding and no warning about a sampled offering."""
    assert not [f for f in lint_project(PROJECT) if CATALOG_FILE in f]
