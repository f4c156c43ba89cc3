"""Money: a Decimal amount and an ISO 4217 currency, never a float.

The canonical JSON form is ``{"unit": "CNY", "value": "12.50"}`` (``common/money.v1.schema.json``): the
value is a decimal *string*, so no system on the way can turn 0.1 + 0.2 into 0.30000000000000004. A float
anywhere (a Python float, a JSON number with a fraction) is refused with a clear error; integers and
Decimals are exact and accepted.

Rounding is always explicit: :meth:`Money.quantize` rounds to the currency's minor unit (CNY: 2 decimals,
the fen 分; JPY: 0; KWD: 3) with the currency's rounding rule (``ROUND_HALF_UP`` unless ``ROUNDING`` says
otherwise, or the caller passes one). :meth:`Money.to_minor` / :meth:`Money.from_minor` convert to and from
integer minor units (fen), the form billing systems store.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from esb.exceptions import MessageError
from esb.registry import did_you_mean

#: ISO 4217 minor units (number of decimals) of the currencies the operator meets.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2,
    "AUD": 2, "NZD": 2, "SGD": 2, "MYR": 2, "THB": 2, "PHP": 2, "INR": 2, "RUB": 2, "SEK": 2,
    "NOK": 2, "DKK": 2, "AED": 2, "SAR": 2, "ZAR": 2, "BRL": 2, "MXN": 2, "LAK": 2, "MMK": 2,
    "PLN": 2, "CZK": 2, "HUF": 2, "TRY": 2, "QAR": 2, "EGP": 2, "PKR": 2, "BDT": 2, "LKR": 2,
    "MNT": 2, "KZT": 2, "NGN": 2, "KES": 2, "XDR": 2, "PYG": 0,
    "JPY": 0, "KRW": 0, "VND": 0, "IDR": 2, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3,
    "CLF": 4,
}  # fmt: skip

#: Rounding rule per currency when the caller names none (every currency: ROUND_HALF_UP, 四舍五入).
DEFAULT_ROUNDING = ROUND_HALF_UP
ROUNDING: dict[str, str] = {}

#: ``Decimal("0.01")`` for 2 minor units, and so on: the quantize exponent of every currency above.
_EXPONENTS = {digits: Decimal(1).scaleb(-digits) for digits in set(MINOR_UNITS.values())}
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_ROUNDINGS = {name: getattr(decimal, name) for name in dir(decimal) if name.startswith("ROUND_")}


class MoneyError(MessageError):
    """A money amount or currency that cannot be trusted (a float, an unknown currency, a bad string)."""

    reason = "money-error"


class FloatMoneyError(MoneyError, TypeError):
    """A float where money was expected: floats cannot hold 0.1 exactly, send a decimal string."""


def currency_code(code: Any) -> str:
    """Return ``code`` as a known ISO 4217 currency (upper-cased), or raise MoneyError."""
    if not isinstance(code, str):
        raise MoneyError(f"currency must be an ISO 4217 code string, got {code!r}")
    upper = code.strip().upper()
    if upper not in MINOR_UNITS:
        raise MoneyError(
            f"unknown currency {code!r}{did_you_mean(upper, list(MINOR_UNITS))}; "
            f"known: {', '.join(sorted(MINOR_UNITS))}"
        )
    return upper


def to_decimal(value: Any, what: str = "money value") -> Decimal:
    """Return ``value`` (a decimal string, int or Decimal) as a finite Decimal; floats are refused."""
    if isinstance(value, bool):
        raise MoneyError(f"{what} must be a decimal string, got the boolean {value!r}")
    if isinstance(value, float):
        raise FloatMoneyError(
            f"{what} {value!r} is a float: floats cannot hold money exactly; "
            f"send it as a decimal string such as {format(Decimal(repr(value)), 'f')!r}"
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{what} must be finite, got {value}")
        return value
    if isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        return Decimal(value.strip())
    raise MoneyError(f"{what} must be a decimal string like '12.50', got {value!r}")


def rounding_mode(currency: str, rounding: str | None = None) -> str:
    """Return the rounding mode to use: ``rounding`` if given, else the currency's rule."""
    mode = rounding or ROUNDING.get(currency, DEFAULT_ROUNDING)
    if mode not in _ROUNDINGS:
        raise MoneyError(f"unknown rounding {mode!r}{did_you_mean(mode, list(_ROUNDINGS))}")
    return mode


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount of one currency. Build it with :meth:`of`, :meth:`from_json` or :meth:`from_minor`."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", to_decimal(self.amount))
        object.__setattr__(self, "currency", currency_code(self.currency))

    @classmethod
    def of(cls, value: Any, currency: str) -> Money:
        """Build from a decimal string, int or Decimal (a float raises FloatMoneyError)."""
        return cls(to_decimal(value), currency)

    @classmethod
    def from_json(cls, doc: Any) -> Money:
        """Parse the canonical ``{"unit": "CNY", "value": "12.50"}`` form."""
        if not isinstance(doc, dict) or "unit" not in doc or "value" not in doc:
            raise MoneyError(f'money must be {{"unit": "CNY", "value": "12.50"}}, got {doc!r}')
        extra = sorted(set(doc) - {"unit", "value"})
        if extra:
            raise MoneyError(f"money has unknown keys {extra}; only 'unit' and 'value'")
        return cls(to_decimal(doc["value"]), doc["unit"])

    def to_json(self) -> dict[str, str]:
        """Return the canonical ``{"unit": ..., "value": "..."}`` form (plain notation, scale kept)."""
        return {"unit": self.currency, "value": format(self.amount, "f")}

    @property
    def minor_units(self) -> int:
        """Decimals of this currency (CNY 2, JPY 0)."""
        return MINOR_UNITS[self.currency]

    @classmethod
    def _checked(cls, amount: Decimal, currency: str) -> Money:
        """Build from an amount and currency this class has already checked (no second validation)."""
        made = object.__new__(cls)
        object.__setattr__(made, "amount", amount)
        object.__setattr__(made, "currency", currency)
        return made

    def quantize(self, rounding: str | None = None) -> Money:
        """Round to the currency's minor unit with ``rounding`` (default: the currency's rule)."""
        mode = rounding_mode(self.currency, rounding)
        rounded = self.amount.quantize(_EXPONENTS[self.minor_units], rounding=mode)
        return Money._checked(rounded, self.currency)

    def to_minor(self, rounding: str | None = None) -> int:
        """Return the amount in minor units (fen for CNY), rounded with ``rounding`` if needed."""
        return int(self.quantize(rounding).amount.scaleb(self.minor_units))

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """Build from an integer count of minor units (1250 fen -> 12.50 CNY)."""
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise MoneyError(f"minor units must be an integer, got {minor!r}")
        code = currency_code(currency)
        return cls(Decimal(minor).scaleb(-MINOR_UNITS[code]), code)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError(f"cannot combine money with {other!r}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}: convert first")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal | str) -> Money:
        return Money(self.amount * to_decimal(factor, "factor"), self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{format(self.amount, 'f')} {self.currency}"


def money_to_minor(doc: Any, rounding: str | None = None) -> int:
    """Canonical money dict -> integer minor units (for the JMESPath function library)."""
    return Money.from_json(doc).to_minor(rounding)


def money_from_minor(minor: int, currency: str) -> dict[str, str]:
    """Integer minor units -> canonical money dict (for the JMESPath function library)."""
    return Money.from_minor(minor, currency).to_json()
