"""Money functions for mappings, over :mod:`esb.model.money` (Decimal, never float; ISO 4217).

Source systems send amounts as text, sometimes with thousands separators or a yuan sign (``¥1,250.00``):
those are cleaned before :class:`~esb.model.money.Money` parses them. A float is refused there.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from esb.model.money import MINOR_UNITS, ROUNDING, Money, currency_code, rounding_mode, to_decimal

#: ``Decimal("0.01")`` for 2 minor units, and so on.
_EXPONENTS = {digits: Decimal(1).scaleb(-digits) for digits in set(MINOR_UNITS.values())}
_NOISE = str.maketrans("", "", ", \u00a5\uffe5\u3000")


def minor_unit(currency: Any) -> int:
    """Return the minor-unit digits of ``currency``; MoneyError for a code that is not ISO 4217."""
    return MINOR_UNITS[currency_code(currency)]


def _amount(value: Any) -> Any:
    return value.translate(_NOISE) if isinstance(value, str) else value


def _split(value: Any, currency: Any) -> Money:
    if isinstance(value, dict):
        return Money.from_json({"unit": value.get("unit", currency), "value": _amount(value.get("value"))})
    if currency is None:
        raise ValueError("no currency: give one, or pass a Money object {unit, value}")
    return Money.of(_amount(value), str(currency))


def _known(currency: Any) -> bool:
    """Whether ``currency`` is an ISO 4217 code exactly as :func:`currency_code` would return it."""
    return type(currency) is str and currency in MINOR_UNITS


def _rounded(amount: Decimal, currency: str, rounding: str | None = None) -> Decimal:
    """``amount`` rounded to the minor unit of a known ``currency``: what ``Money.quantize`` gives."""
    return amount.quantize(_EXPONENTS[MINOR_UNITS[currency]], rounding=rounding_mode(currency, rounding))


#: Amounts written exactly as ``money`` returns them, per minor-unit digits (``"129.00"`` for 2): ASCII
#: digits, no sign, no leading zero, at most 21 digits before the point (far inside Decimal's precision,
#: where quantize would refuse), exactly the currency's decimals.
_EXACT = {
    digits: re.compile(rf"(?:0|[1-9][0-9]{{0,20}})\.[0-9]{{{digits}}}" if digits else "0|[1-9][0-9]{0,20}")
    for digits in set(MINOR_UNITS.values())
}


def money(value: Any, currency: Any = "CNY", rounding: str | None = None) -> str:
    """Return the amount as a decimal string quantized to the currency's minor unit (``"12.50"``)."""
    if type(value) is str and _known(currency):  # Money's checks and rounding without its objects
        if rounding is None and currency not in ROUNDING and _EXACT[MINOR_UNITS[currency]].fullmatch(value):
            return value  # already what quantizing and formatting it gives: no Decimal needed
        return format(_rounded(to_decimal(_amount(value)), currency, rounding), "f")
    return _split(value, currency).quantize(rounding).to_json()["value"]


def to_minor(value: Any, currency: Any = None, exact: bool = True) -> int:
    """Return the amount in minor units (``12.50`` CNY -> ``1250`` fen).

    With ``exact`` (the default) an amount finer than the minor unit is an error, not a silent rounding.
    """
    if type(value) is dict and _known(unit := value.get("unit", currency)):  # {unit, value}, fast
        text = value.get("value")
        if type(text) is str and unit not in ROUNDING and _EXACT[MINOR_UNITS[unit]].fullmatch(text):
            return int(text.replace(".", ""))  # "129.00" CNY: 12900 fen, no Decimal needed
        exact_amount = to_decimal(_amount(text))
        rounded_amount = _rounded(exact_amount, unit)
        if not exact or rounded_amount == exact_amount:
            return int(rounded_amount.scaleb(MINOR_UNITS[unit]))
    amount = _split(value, currency)
    rounded = amount.quantize()
    if exact and rounded.amount != amount.amount:
        raise ValueError(f"{amount} has more decimals than {amount.currency} allows ({amount.minor_units})")
    return int(rounded.amount.scaleb(rounded.minor_units))


def from_minor(value: Any, currency: Any = "CNY") -> str:
    """Return integer minor units (``1250`` fen) as a decimal string (``"12.50"``)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return Money.from_minor(value, str(currency)).to_json()["value"]
