"""Exchange rates with validity dates (``canonical_model/rates.yaml``) and :func:`convert`.

Each entry converts one unit of ``from`` into ``rate`` units of ``to`` between ``valid_from`` and
``valid_to`` (both inclusive; no ``valid_to`` means open-ended)::

    rates:
      - {from: USD, to: CNY, rate: "7.1884", valid_from: 2024-01-01, valid_to: 2024-12-31}

Rates are decimal *strings* (a YAML float such as ``7.1884`` unquoted is refused: it is a binary float).
Two entries for the same pair must not overlap. Converting the other way uses the inverse rate
(``1 / rate`` with 28 significant digits) when no direct entry is valid. The result is rounded to the
target currency's minor unit with an explicit rounding (the currency's rule unless one is given). A date
with no valid rate is a :class:`NoRateError`, never a stale rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from esb.config.yamlpos import Located, load_yaml
from esb.exceptions import ConfigError
from esb.model.money import Money, MoneyError, currency_code, to_decimal

RATES_FILE = Path("canonical_model") / "rates.yaml"


class NoRateError(MoneyError):
    """No exchange rate between the two currencies is valid at the requested date."""

    reason = "no-rate"


@dataclass(frozen=True)
class Rate:
    """One unit of ``source`` is worth ``rate`` units of ``target`` from ``valid_from`` to ``valid_to``."""

    source: str
    target: str
    rate: Decimal
    valid_from: date
    valid_to: date | None = None

    def valid_at(self, at: date) -> bool:
        """Return whether this rate applies on ``at``."""
        return self.valid_from <= at and (self.valid_to is None or at <= self.valid_to)


class RatesTable:
    """All exchange rates of a project."""

    def __init__(self, rates: list[Rate]) -> None:
        self.rates = rates

    def rate(self, source: str, target: str, at: date) -> Decimal:
        """Return the rate from ``source`` to ``target`` valid on ``at`` (direct, else inverse)."""
        rate, inverse = self._entry(source, target, at)
        return Decimal(1) / rate if inverse else rate

    def _entry(self, source: str, target: str, at: date) -> tuple[Decimal, bool]:
        """The listed rate valid on ``at`` and whether it is listed the other way round."""
        source, target = currency_code(source), currency_code(target)
        if source == target:
            return Decimal(1), False
        for r in self.rates:
            if r.source == source and r.target == target and r.valid_at(at):
                return r.rate, False
        for r in self.rates:
            if r.source == target and r.target == source and r.valid_at(at):
                return r.rate, True
        pair = {source, target}
        periods = [f"{r.valid_from}..{r.valid_to or ''}" for r in self.rates if {r.source, r.target} == pair]
        known = f"; rates exist for {', '.join(periods)}" if periods else "; no rate at all for this pair"
        raise NoRateError(f"no {source}->{target} exchange rate valid on {at.isoformat()}{known}")

    def convert(self, money: Money, to_currency: str, at: date, *, rounding: str | None = None) -> Money:
        """Convert ``money`` into ``to_currency`` at the rate valid on ``at``, rounded explicitly.

        The other way round a listed rate divides (89.70 CNY at MOP->CNY 0.8970 is exactly 100.00 MOP),
        rather than multiplying by a 28-digit 1/rate that ROUND_DOWN would take to 99.99.
        """
        rate, inverse = self._entry(money.currency, to_currency, at)
        amount = money.amount / rate if inverse else money.amount * rate
        return Money(amount, to_currency).quantize(rounding)


def convert(
    money: Money, to_currency: str, at: date, *, rates: RatesTable, rounding: str | None = None
) -> Money:
    """Convert ``money`` to ``to_currency`` with the rate of ``rates`` valid on ``at``."""
    return rates.convert(money, to_currency, at, rounding=rounding)


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")


def _entry(item: Any, where: str) -> Rate:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a rate is a mapping with from, to, rate, valid_from[, valid_to]")
    unknown = sorted(set(item) - {"from", "to", "rate", "valid_from", "valid_to"})
    missing = sorted({"from", "to", "rate", "valid_from"} - set(item))
    if unknown or missing:
        raise ConfigError(f"{where}: rate entry has unknown keys {unknown} / missing keys {missing}")
    try:
        rate = to_decimal(item["rate"], "rate")
        source, target = currency_code(item["from"]), currency_code(item["to"])
    except MoneyError as exc:
        hint = 'write rates as quoted decimal strings: rate: "7.1884"'
        raise ConfigError(f"{where}: {exc} ({hint})") from None
    if rate <= 0:
        raise ConfigError(f"{where}: rate must be positive, got {rate}")
    valid_to = _date(item["valid_to"], where) if item.get("valid_to") is not None else None
    entry = Rate(source, target, rate, _date(item["valid_from"], where), valid_to)
    if valid_to is not None and valid_to < entry.valid_from:
        raise ConfigError(f"{where}: valid_to {valid_to} is before valid_from {entry.valid_from}")
    return entry


def _overlaps(a: Rate, b: Rate) -> bool:
    a_end, b_end = a.valid_to or date.max, b.valid_to or date.max
    return a.valid_from <= b_end and b.valid_from <= a_end


def parse_rates(doc: Located) -> RatesTable:
    """Build a RatesTable from the loaded ``rates.yaml`` (errors point at ``file:line``)."""
    data = doc.data or {}
    items = data.get("rates") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{doc.where(())}: rates.yaml must hold 'rates:' with a list of entries")
    rates = [_entry(item, doc.where(("rates", i))) for i, item in enumerate(items)]
    for i, a in enumerate(rates):
        for j in range(i):
            b = rates[j]
            if (a.source, a.target) == (b.source, b.target) and _overlaps(a, b):
                raise ConfigError(
                    f"{doc.where(('rates', i))}: {a.source}->{a.target} overlaps the entry at "
                    f"{doc.where(('rates', j))}: two rates valid on the same day"
                )
    return RatesTable(rates)


def load_rates(project_dir: Path) -> RatesTable:
    """Load ``canonical_model/rates.yaml`` of a project (an empty table when absent)."""
    path = project_dir / RATES_FILE
    if not path.exists():
        return RatesTable([])
    return parse_rates(load_yaml(path, display=str(RATES_FILE)))
