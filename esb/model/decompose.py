"""Decomposing a canonical product order into component orders by the catalogue (docs/catalog.md).

:func:`decompose` turns a ``product_order.v1`` document into ``component_order.v1`` documents, one per
component to fulfil, in the order's item order:

- an item whose offering is a **component** (a single product) is one component order;
- an item whose offering is a **bundle** (好E家) is one component order per member item (its child items,
  each matched to a bundle member by offering id); a bundle item without child items (a CRM that sends the
  bundle line alone) stands for the bundle's mandatory members, each with the bundle item's places;
- a ``noChange`` item has nothing to fulfil and yields nothing.

Each component order carries the parent order id, its kind, the item it fulfils (by value, child items
removed), the bundle item and policy, the resources RIM pre-reserves, the service OSS activates and
whether Billing creates a subscriber. An order the catalogue cannot decompose (unknown offering, a member
the bundle does not have, a missing mandatory member...) raises :class:`DecompositionError`, a permanent
message error: the route dead-letters the order with the reason.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from esb.config.catalog import CATALOG_FILE, Bundle, Catalog, Member, Offering, Resource, Service
from esb.exceptions import MessageError
from esb.registry import did_you_mean

COMPONENT_ORDER = "component_order.v1"


class DecompositionError(MessageError):
    """The catalogue cannot decompose the order: names the item, its offering and what is wrong."""

    reason = "decomposition-error"


@dataclass(frozen=True)
class _BundleOf:
    """The bundle a component comes from: the bundle's item, its offering (id, Chinese name), its members."""

    item_id: str
    offering_id: str
    name: str
    spec: Bundle


@dataclass(frozen=True)
class _Part:
    """One component to fulfil, before it becomes a document."""

    item: dict[str, Any]
    offering_id: str
    offering: Offering
    mandatory: bool
    bundle: _BundleOf | None = None


def decompose(order: Any, catalog: Catalog) -> list[dict[str, Any]]:
    """Return the component orders (``component_order.v1``) of the canonical product order ``order``."""
    if not isinstance(order, dict):
        raise DecompositionError(
            f"expected a canonical product order (a JSON object), got {type(order).__name__}: "
            "transform the order to product_order.v1 before decomposing it"
        )
    order_id = order.get("id")
    items = order.get("productOrderItem")
    if not isinstance(order_id, str) or not order_id:
        raise DecompositionError("the product order has no id: the component orders could not name it")
    if not isinstance(items, list):
        raise DecompositionError(f"order {order_id}: productOrderItem is not a list of items")
    parts: list[_Part] = []
    for index, item in enumerate(items):
        parts.extend(_item_parts(_checked(item, f"productOrderItem[{index}]"), catalog))
    return [_document(order, order_id, n, part) for n, part in enumerate(parts)]


def _checked(item: Any, where: str) -> dict[str, Any]:
    """Return ``item`` if it is an item the catalogue can place, else raise."""
    if not isinstance(item, dict):
        raise DecompositionError(
            f"{where}: expected an order item (a JSON object), got {type(item).__name__}"
        )
    quantity = item.get("quantity", 1)
    if quantity != 1:
        raise DecompositionError(
            f"{where} (item {item.get('id')!r}): quantity {quantity!r}: order one item per line "
            "(each line gets its own number, port or account)"
        )
    return item


def _offering_of(item: dict[str, Any], catalog: Catalog) -> tuple[str, Offering]:
    """Return the item's offering id and catalogue entry; an unknown or missing one is refused."""
    ref = item.get("productOffering")
    offering_id = ref.get("id") if isinstance(ref, dict) else None
    if not isinstance(offering_id, str) or not offering_id:
        raise DecompositionError(
            f"item {item.get('id')!r}: no productOffering.id: the catalogue decomposes items by offering"
        )
    offering = catalog.offerings.get(offering_id)
    if offering is None:
        name = ref.get("name") if isinstance(ref, dict) else None
        raise DecompositionError(
            f"item {item.get('id')!r}: unknown product offering {offering_id!r}"
            f"{f' ({name})' if name else ''}: not in {CATALOG_FILE}"
            f"{did_you_mean(offering_id, list(catalog.offerings))}: add it to the catalogue or fix the order"
        )
    return offering_id, offering


def _item_parts(item: dict[str, Any], catalog: Catalog) -> list[_Part]:
    """Return the components one top-level item stands for."""
    offering_id, offering = _offering_of(item, catalog)
    children = item.get("productOrderItem") or []
    if offering.bundle is None:
        if children:
            raise DecompositionError(
                f"item {item.get('id')!r}: has child items, but {offering_id!r} is not a bundle "
                f"in {CATALOG_FILE}"
            )
        return [] if item.get("action") == "noChange" else [_Part(item, offering_id, offering, True)]
    bundle = _BundleOf(str(item.get("id")), offering_id, offering.name.zh, offering.bundle)
    if not children:
        return _implicit_members(item, bundle, catalog)
    return _member_parts(item, children, bundle, catalog)


def _implicit_members(item: dict[str, Any], bundle: _BundleOf, catalog: Catalog) -> list[_Part]:
    """A bundle item without child items: one component per mandatory member, from the bundle's item."""
    if item.get("action") == "noChange":
        return []
    parts = []
    for member in (m for m in bundle.spec.components if m.mandatory):
        names = catalog.offerings[member.offering].name
        synthesized = {
            "id": bundle.item_id,
            "action": item.get("action"),
            "productOffering": {"id": member.offering, "name": names.zh, "@referredType": "ProductOffering"},
        }
        for key in ("appointment", "billingAccount"):
            if key in item:
                synthesized[key] = item[key]
        place = (item.get("product") or {}).get("place")
        if place:  # where the bundle is installed is where each member is (a broadband port is held there)
            synthesized["product"] = {"place": copy.deepcopy(place)}
        parts.append(_Part(synthesized, member.offering, catalog.offerings[member.offering], True, bundle))
    return parts


def _member_parts(item: dict[str, Any], children: Any, bundle: _BundleOf, catalog: Catalog) -> list[_Part]:
    """A bundle item with child items: each child is a member; counts and mandatory members are checked."""
    members = {m.offering: m for m in bundle.spec.components}
    if not isinstance(children, list):
        raise DecompositionError(f"item {bundle.item_id!r}: productOrderItem is not a list of items")
    counts: dict[str, int] = {}
    parts = []
    for index, raw in enumerate(children):
        child = _checked(raw, f"item {bundle.item_id!r}, productOrderItem[{index}]")
        offering_id, offering = _offering_of(child, catalog)
        member = _member(members, offering_id, child, bundle)
        counts[offering_id] = counts.get(offering_id, 0) + 1
        if counts[offering_id] > member.max:
            raise DecompositionError(
                f"item {bundle.item_id!r} ({bundle.offering_id}): {counts[offering_id]} items of "
                f"{offering_id!r}, the bundle allows at most {member.max}"
            )
        if child.get("productOrderItem"):
            raise DecompositionError(f"item {child.get('id')!r}: a bundle member has no child items")
        if child.get("action") != "noChange":
            parts.append(_Part(child, offering_id, offering, member.mandatory, bundle))
    if item.get("action") == "add":
        for missing in (m for m in members.values() if m.mandatory and m.offering not in counts):
            kind = catalog.offerings[missing.offering].kind
            raise DecompositionError(
                f"item {bundle.item_id!r} ({bundle.offering_id}): adds the bundle without its mandatory "
                f"member {missing.offering!r} ({kind}): add the member item or fix the order"
            )
    return parts


def _member(members: dict[str, Member], offering_id: str, child: dict[str, Any], bundle: _BundleOf) -> Member:
    """Return the bundle member a child item orders; refuse an offering the bundle does not have."""
    if offering_id not in members:
        raise DecompositionError(
            f"item {child.get('id')!r}: offering {offering_id!r} is not a member of bundle "
            f"{bundle.offering_id!r} (item {bundle.item_id!r}; members: {', '.join(members)})"
        )
    return members[offering_id]


def _document(order: dict[str, Any], order_id: str, index: int, part: _Part) -> dict[str, Any]:
    """Return the ``component_order.v1`` document of one part (a copy: parts share nothing)."""
    item = copy.deepcopy({k: v for k, v in part.item.items() if k != "productOrderItem"})
    body: dict[str, Any] = {
        "id": f"{order_id}-{index + 1}",
        "@type": "ComponentOrder",
        "@schemaVersion": "1",
        "productOrder": {"id": order_id, "@referredType": "ProductOrder"},
        "componentKind": part.offering.kind,
        "mandatory": part.mandatory,
        "productOrderItem": item,
        "createSubscriber": part.offering.billing_subscriber,
    }
    if part.bundle is not None:
        body["bundle"] = {
            "productOrderItemId": part.bundle.item_id,
            "productOffering": {
                "id": part.bundle.offering_id,
                "name": part.bundle.name,
                "@referredType": "ProductOffering",
            },
            "policy": part.bundle.spec.policy,
        }
    if part.offering.resources:
        body["reservationItem"] = [_reservation(n, r) for n, r in enumerate(part.offering.resources)]
    if part.offering.service is not None:
        body["service"] = _service(part.offering.service)
    account = item.get("billingAccount") or order.get("billingAccount")
    if account:
        body["billingAccount"] = copy.deepcopy(account)
    if order.get("relatedParty"):
        body["relatedParty"] = copy.deepcopy(order["relatedParty"])
    return body


def _reservation(index: int, resource: Resource) -> dict[str, Any]:
    """Return one resource_reservation.v1 reservation item for a resource the catalogue names."""
    out: dict[str, Any] = {"id": str(index + 1), "category": resource.category, "quantity": resource.quantity}
    if resource.pool:
        out["resourceSpecification"] = {"id": resource.pool, "@referredType": "ResourceSpecification"}
    return out


def _service(service: Service) -> dict[str, Any]:
    """Return the service.v1 service (by its specification) the component activates."""
    out: dict[str, Any] = {
        "serviceSpecification": {"id": service.specification, "@referredType": "ServiceSpecification"}
    }
    if service.type:
        out["serviceType"] = service.type
    if service.name:
        out["name"] = service.name
    return out
