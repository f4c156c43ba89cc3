"""One commissioned order item -> the same, with what its commission is computed from, in CNY.

Input (route channel-commissions, after the split and the channel_commission decision):
``{order: {id, completionDate}, partner: {partner_id, currency, language}, item: <productOrderItem>,
commission: {rate_bp, fixed_fen}}``. Adds ``basis``: the item's monthly fee (its recurring price, tax
included; none is 0.00), the fixed amount and the CNY commission ``fee * rate_bp / 10000 + fixed``, rounded
half up to the fen (the operator's books); and ``names``: the offering's name as a canonical LocalizedText
(config/catalog.yaml's ``zh``, ``en`` and ``zh-HK`` as ``zh-CN``, ``en`` and ``zh-HK``; an offering the
catalogue lacks keeps the order's own name as ``zh-CN``). The partner's currency and language are the next
mapping's (channel/commission_record).
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from esb.config.catalog import CATALOG_FILE, Catalog, load_catalog
from esb.model.money import Money


@lru_cache(maxsize=8)
def _catalog(project_dir: Path, stamp: float) -> Catalog:
    """The project's catalogue, loaded once per change of config/catalog.yaml (``stamp``: its mtime)."""
    return load_catalog(project_dir)


def _monthly_fee(item: dict[str, Any]) -> Money:
    for price in item.get("itemPrice") or []:
        if isinstance(price, dict) and price.get("priceType") == "recurring":
            amount = (price.get("price") or {}).get("taxIncludedAmount")
            if amount is not None:
                fee = Money.from_json(amount)
                if fee.currency != "CNY":
                    raise ValueError(f"item {item.get('id')}: the monthly fee is in {fee.currency}, not CNY")
                return fee
    return Money.of("0", "CNY")


def _names(item: dict[str, Any], project_dir: Path) -> dict[str, str]:
    offering = item.get("productOffering") or {}
    catalog_file = project_dir / CATALOG_FILE
    stamp = catalog_file.stat().st_mtime if catalog_file.is_file() else 0.0
    entry = _catalog(project_dir, stamp).offerings.get(str(offering.get("id"))) if stamp else None
    if entry is not None:
        names = {"zh-CN": entry.name.zh, "en": entry.name.en}
        return names | ({"zh-HK": entry.name.zh_hk} if entry.name.zh_hk else {})
    return {"zh-CN": offering["name"]} if offering.get("name") else {}


def with_basis(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return ``body`` with ``basis`` (monthly fee, fixed amount, CNY commission) and ``names``."""
    out = copy.deepcopy(body)
    item, commission = out["item"], out["commission"]
    fee = _monthly_fee(item)
    rate_bp, fixed_fen = int(commission["rate_bp"]), int(commission["fixed_fen"])
    fixed = Money.from_minor(fixed_fen, "CNY")
    earned = (fee.amount * Decimal(rate_bp) / Decimal(10000) + fixed.amount).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    out["basis"] = {
        "monthly_fee": fee.quantize().to_json(),
        "fixed": fixed.to_json(),
        "commission_cny": Money.of(earned, "CNY").to_json(),
    }
    out["names"] = _names(item, Path(context.fn_context.project_dir))
    return out
