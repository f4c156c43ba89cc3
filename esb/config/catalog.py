"""``config/catalog.yaml``: the product offerings orders name, which are bundles, and what each takes.

An offering is either a **component** (its kind, the resources RIM pre-reserves, the service OSS
activates, whether Billing creates a subscriber) or a **bundle** (好E家: member offerings, each mandatory
or optional, and a policy for a member that fails). :func:`load_catalog` reads the file with pydantic and
the cross-checks below; every problem is a finding ``config/catalog.yaml:line: path: problem``.
:func:`catalog_findings` is what ``esb lint`` adds: the file's findings, plus a warning for each offering
that a shipped CRM or channel sample orders and the catalogue lacks. Decomposition itself is
:mod:`esb.model.decompose`; the format is described in docs/catalog.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError, model_validator

from esb.config.language import Strict
from esb.config.projectdir import CATALOG_FILE as CATALOG_FILE  # re-exported for its users
from esb.config.yamlpos import Located, PathKey, format_path, load_yaml
from esb.exceptions import ConfigError, EsbError
from esb.registry import did_you_mean

#: the kinds of component (component_order.v1 ``componentKind``): 宽带, 手机, 天翼高清 IPTV, 固话
Kind = Literal["broadband", "mobile", "iptv", "fixedLine"]
#: what RIM reserves, as resource_reservation.v1 ``reservationItem.category`` (a test keeps them equal)
ResourceCategory = Literal[
    "msisdn", "fixedNumber", "ipAddress", "broadbandAccount", "sim", "port", "ont", "stb", "terminal"
]
Policy = Literal["all_or_nothing", "partial_allowed"]


class Names(Strict):
    """An offering's name in Chinese (as the CRM shows it), in English, and optionally for Hong Kong/Macau."""

    zh: str = Field(min_length=1, description="Chinese name, e.g. 好E家融合套餐299元")
    en: str = Field(min_length=1, description="English name, e.g. Home Bundle 299")
    zh_hk: str | None = Field(
        default=None,
        min_length=1,
        alias="zh-HK",
        description="Traditional Chinese name for Hong Kong and Macau (key zh-HK), e.g. 千兆寬頻",
    )


class Resource(Strict):
    """One resource RIM pre-reserves (预占) for a component."""

    category: ResourceCategory = Field(description="kind of resource (resource_reservation.v1 category)")
    pool: str | None = Field(default=None, min_length=1, description="the RIM pool (resource specification)")
    quantity: int = Field(default=1, ge=1, description="how many")


class Service(Strict):
    """The service OSS activates for a component."""

    specification: str = Field(min_length=1, description="OSS service specification id, e.g. SS-FTTH")
    type: str | None = Field(default=None, description="service type (ftth, mobileVoice, iptv...)")
    name: str | None = Field(default=None, description="service name")


class Member(Strict):
    """One member of a bundle: a component offering, mandatory or optional, and how many an order holds."""

    offering: str = Field(min_length=1, description="the member's offering id (a component offering)")
    mandatory: bool = Field(description="the bundle cannot complete without it")
    max: int = Field(default=1, ge=1, description="how many of this member one bundle item may hold")


class Bundle(Strict):
    """A bundle's members and its policy for a member that fails."""

    policy: Policy = Field(description="all_or_nothing or partial_allowed")
    components: list[Member] = Field(min_length=1, description="the member offerings")


class Offering(Strict):
    """One product offering: a component (``kind`` and what it takes) or a ``bundle``."""

    name: Names = Field(description="Chinese and English names")
    kind: Kind | None = Field(default=None, description="component kind; absent for a bundle")
    resources: list[Resource] = Field(default_factory=list, description="resources RIM pre-reserves")
    service: Service | None = Field(default=None, description="the service OSS activates")
    billing_subscriber: bool = Field(default=False, description="Billing creates a subscriber (用户)")
    bundle: Bundle | None = Field(default=None, description="members and policy of a bundle offering")

    @model_validator(mode="after")
    def _component_or_bundle(self) -> Offering:
        if (self.kind is None) == (self.bundle is None):
            raise ValueError(
                "an offering is either a component (give kind) or a bundle (give bundle), not both"
            )
        if self.bundle is not None and (self.resources or self.service or self.billing_subscriber):
            raise ValueError(
                "a bundle takes nothing itself: put resources, service and billing_subscriber on its members"
            )
        return self


class CatalogFile(Strict):
    """The whole of ``config/catalog.yaml``."""

    offerings: dict[str, Offering] = Field(description="every offering by its id (productOffering.id)")


@dataclass(frozen=True)
class Catalog:
    """The loaded catalogue: offerings by id, and the document (for file:line)."""

    offerings: dict[str, Offering]
    doc: Located

    def where(self, offering_id: str) -> str:
        """Return ``config/catalog.yaml:line`` of an offering."""
        return self.doc.where(("offerings", offering_id))


def read_catalog(root: Path) -> tuple[Catalog | None, list[str]]:
    """Return the catalogue of the project at ``root`` and its findings (None: absent or broken)."""
    path = Path(root) / CATALOG_FILE
    if not path.is_file():
        return None, []
    try:
        doc = load_yaml(path, display=CATALOG_FILE)
        parsed = CatalogFile.model_validate(doc.data if doc.data is not None else {})
    except ConfigError as exc:
        return None, exc.findings or [str(exc)]
    except ValidationError as exc:
        from esb.config.findings import findings_from_validation  # it loads the step kinds, which use this

        return None, findings_from_validation(exc, doc, CatalogFile)
    catalog = Catalog(parsed.offerings, doc)
    findings = _member_findings(catalog)
    return (None if findings else catalog), findings


def load_catalog(root: Path) -> Catalog:
    """Return the project's catalogue; ConfigError (with every finding) when it is absent or broken."""
    catalog, findings = read_catalog(root)
    if findings:
        raise ConfigError(f"{len(findings)} problem(s) in {CATALOG_FILE}", findings=findings)
    if catalog is None:
        raise ConfigError(f"{CATALOG_FILE}: file not found: declare the product offerings there")
    return catalog


def _member_findings(catalog: Catalog) -> list[str]:
    """Each bundle member must be a declared component offering, listed once."""
    findings = []
    for offering_id, offering in catalog.offerings.items():
        if offering.bundle is None:
            continue
        seen: set[str] = set()
        for index, member in enumerate(offering.bundle.components):
            path: PathKey = ("offerings", offering_id, "bundle", "components", index, "offering")
            target = catalog.offerings.get(member.offering)
            problem = ""
            if member.offering in seen:
                problem = f"member {member.offering!r} is listed twice: raise its max instead"
            elif target is None:
                problem = (
                    f"unknown offering {member.offering!r}"
                    f"{did_you_mean(member.offering, list(catalog.offerings))}: declare it under offerings"
                )
            elif target.bundle is not None:
                problem = f"member {member.offering!r} is a bundle: bundles nest one level, list its members"
            seen.add(member.offering)
            if problem:
                findings.append(f"{catalog.doc.where(path)}: {format_path(path)}: {problem}")
    return findings


def catalog_findings(project: Any) -> list[str]:
    """Lint: the catalogue's findings, and a warning per sampled offering it lacks (none if absent)."""
    catalog, findings = read_catalog(project.root)
    if catalog is None:
        return findings
    return sample_warnings(project, catalog)


def sample_warnings(project: Any, catalog: Catalog) -> list[str]:
    """Warn about each offering that a product-order mapping's test case orders and ``catalog`` lacks.

    The samples are the error-free cases of the ``_test.yaml`` of every mapping whose output schema is a
    product order (the CRM's and the channel's), run through their mapping.
    """
    from esb.config.findings import warning
    from esb.transforms.registry import TRANSFORMS_DIR
    from esb.transforms.testrun import TestFile, find_test_files

    out: list[str] = []
    folder = Path(project.root) / TRANSFORMS_DIR
    for path in find_test_files(folder) if folder.is_dir() else []:
        try:
            test = TestFile(path, project.transforms, project.model)
            transform = project.transforms.get(test.transform_name)
        except ConfigError:
            continue  # a broken test file or mapping is reported by its own checks
        if not str(transform.header.output_schema or "").startswith("product_order."):
            continue
        for index, case in enumerate(test.cases):
            sampled = _sampled_offerings(transform, test, case)
            missing = [(o, name) for o, name in sampled if o not in catalog.offerings]
            out.extend(warning(test.doc.where(("cases", index)), _not_in_catalog(index, *m)) for m in missing)
    return out


def _not_in_catalog(index: int, offering_id: str, name: str) -> str:
    """The warning text for a sampled offering the catalogue lacks."""
    named = f" ({name})" if name else ""
    return (
        f"cases[{index}]: offering {offering_id!r}{named} is not in {CATALOG_FILE}: "
        "decomposition would refuse such an order; add it to the catalogue"
    )


def _sampled_offerings(transform: Any, test: Any, case: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (id, name) of every offering the case's output orders, items and child items."""
    if "error" in case:
        return []
    if "input" in case:
        body: Any = (test.path.parent / str(case["input"])).read_bytes()
    else:
        inline = case["input_inline"]
        body = inline.encode("utf-8") if isinstance(inline, str) else inline
    try:
        output = transform.transform_body(body)
        if isinstance(output, bytes):
            output = orjson.loads(output)
    except (EsbError, orjson.JSONDecodeError):
        return []  # `esb test` reports a case that does not map
    found: list[tuple[str, str]] = []
    items = output.get("productOrderItem") if isinstance(output, dict) else None
    while isinstance(items, list) and items:
        children: list[Any] = []
        for item in (i for i in items if isinstance(i, dict)):
            offering = item.get("productOffering")
            if isinstance(offering, dict) and offering.get("id"):
                found.append((str(offering["id"]), str(offering.get("name") or "")))
            children.extend(item.get("productOrderItem") or [])
        items = children
    return found
