"""Money: Decimal amounts with ISO 4217 currencies, explicit rounding, rates with validity dates."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esb.config.yamlpos import load_yaml_text
from esb.exceptions import ConfigError, MessageError
from esb.model.money import MINOR_UNITS, FloatMoneyError, Money, MoneyError, money_from_minor, money_to_minor
from esb.model.rates import NoRateError, convert, load_rates, parse_rates

ROOT = Path(__file__).resolve().parents[2]
CURRENCIES = st.sampled_from(sorted(MINOR_UNITS))
AMOUNTS = st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False, places=8)


def test_canonical_json_round_trip() -> None:
    """The canonical {unit, value} form parses and prints back unchanged."""
    doc = {"unit": "CNY", "value": "12.50"}
    assert Money.from_json(doc).to_json() == doc


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(12.5, id="python-float"),
        pytest.param({"unit": "CNY", "value": 12.5}, id="json-number"),
    ],
)
def test_floats_are_refused(bad: object) -> None:
    """A float never becomes money: the error says to send a decimal string."""
    with pytest.raises(FloatMoneyError, match="decimal string"):
        Money.from_json(bad) if isinstance(bad, dict) else Money.of(bad, "CNY")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"unit": "CNX", "value": "1"}, "did you mean 'CNY'", id="unknown-currency"),
        pytest.param({"unit": "CNY", "value": "1,00"}, "decimal string", id="comma"),
        pytest.param({"unit": "CNY", "value": "NaN"}, "decimal string", id="nan"),
        pytest.param({"unit": "CNY", "value": "1e3"}, "decimal string", id="exponent"),
        pytest.param({"unit": "CNY", "value": True}, "boolean", id="bool"),
        pytest.param({"unit": "CNY"}, "unit", id="missing-value"),
        pytest.param({"unit": "CNY", "value": "1", "tax": "0"}, "unknown keys", id="extra-key"),
    ],
)
def test_bad_money_is_a_message_error(doc: object, message: str) -> None:
    """Bad money is a permanent MessageError with a clear reason."""
    with pytest.raises(MoneyError, match=message) as info:
        Money.from_json(doc)
    assert isinstance(info.value, MessageError)


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        pytest.param("12.50", "CNY", 1250, id="cny-fen"),
        pytest.param("0.005", "CNY", 1, id="cny-half-up"),
        pytest.param("-0.005", "CNY", -1, id="cny-half-up-negative"),
        pytest.param("1234", "JPY", 1234, id="jpy-no-minor"),
        pytest.param("1234.5", "JPY", 1235, id="jpy-rounds"),
        pytest.param("1.2345", "KWD", 1235, id="kwd-three-decimals"),
    ],
)
def test_minor_units_per_currency(value: str, currency: str, minor: int) -> None:
    """Minor units follow ISO 4217 and round half up by default."""
    assert Money.of(value, currency).to_minor() == minor


def test_rounding_is_configurable() -> None:
    """An explicit rounding rule overrides the currency's default."""
    m = Money.of("2.345", "CNY")
    assert m.quantize().amount == Decimal("2.35")
    assert m.quantize(ROUND_HALF_EVEN).amount == Decimal("2.34")
    assert m.quantize(ROUND_DOWN).amount == Decimal("2.34")
    with pytest.raises(MoneyError, match="unknown rounding"):
        m.quantize("HALF_UP")


def test_arithmetic_refuses_mixed_currencies() -> None:
    """Adding CNY to USD is refused; same-currency sums are exact."""
    assert Money.of("0.1", "CNY") + Money.of("0.2", "CNY") == Money.of("0.3", "CNY")
    with pytest.raises(MoneyError, match="convert first"):
        Money.of("1", "CNY") + Money.of("1", "USD")
    with pytest.raises(FloatMoneyError):
        Money.of("1", "CNY") * 1.1  # type: ignore[operator]


def test_jmespath_helpers() -> None:
    """The plain-function forms map canonical dicts to fen and back."""
    assert money_to_minor({"unit": "CNY", "value": "99.9"}) == 9990
    assert money_from_minor(9990, "CNY") == {"unit": "CNY", "value": "99.90"}


@given(minor=st.integers(min_value=-(10**15), max_value=10**15), currency=CURRENCIES)
def test_property_minor_round_trip(minor: int, currency: str) -> None:
    """from_minor then to_minor gives back the same integer, for every currency."""
    m = Money.from_minor(minor, currency)
    assert isinstance(m.amount, Decimal)
    assert m.to_minor() == minor
    assert Money.from_json(m.to_json()) == m


@given(amount=AMOUNTS, currency=CURRENCIES)
def test_property_json_round_trip_never_float(amount: Decimal, currency: str) -> None:
    """Any Decimal survives the JSON form exactly, and the value is always a string."""
    doc = Money(amount, currency).to_json()
    assert isinstance(doc["value"], str)
    back = Money.from_json(doc)
    assert back.amount == amount
    assert isinstance(back.amount, Decimal)


@given(amount=AMOUNTS, currency=CURRENCIES)
def test_property_quantize_is_within_half_a_minor_unit(amount: Decimal, currency: str) -> None:
    """Rounding moves an amount by at most half a minor unit and is idempotent."""
    q = Money(amount, currency).quantize()
    step = Decimal(1).scaleb(-MINOR_UNITS[currency])
    assert abs(q.amount - amount) <= step / 2
    assert q.quantize() == q


def test_project_rates_file_converts() -> None:
    """canonical_model/rates.yaml loads; a USD amount converts to CNY at the rate of that date."""
    rates = load_rates(ROOT)
    cny = convert(Money.of("100", "USD"), "CNY", date(2024, 6, 1), rates=rates)
    assert cny == Money.of("704.67", "CNY")
    assert cny.to_json()["value"] == "704.67"


RATES = """rates:
  - {from: USD, to: CNY, rate: "7.1", valid_from: 2024-01-01, valid_to: 2024-12-31}
  - {from: USD, to: CNY, rate: "7.2", valid_from: 2025-01-01}
"""


def test_rate_validity_dates_and_inverse() -> None:
    """The rate valid on the date is used (bounds inclusive); the reverse pair uses 1/rate, rounded."""
    rates = parse_rates(load_yaml_text(RATES, "rates.yaml"))
    assert rates.convert(Money.of("1", "USD"), "CNY", date(2024, 12, 31)).amount == Decimal("7.10")
    assert rates.convert(Money.of("1", "USD"), "CNY", date(2025, 1, 1)).amount == Decimal("7.20")
    assert rates.convert(Money.of("72", "CNY"), "USD", date(2025, 3, 1)).amount == Decimal("10.00")
    assert rates.convert(
        Money.of("1", "CNY"), "USD", date(2025, 3, 1), rounding=ROUND_DOWN
    ).amount == Decimal("0.13")


def test_no_rate_at_date_is_an_error() -> None:
    """A date before any rate, or an unknown pair, raises NoRateError naming the periods."""
    rates = parse_rates(load_yaml_text(RATES, "rates.yaml"))
    with pytest.raises(NoRateError, match=r"2023-06-01; rates exist for 2024-01-01\.\.2024-12-31"):
        rates.convert(Money.of("1", "USD"), "CNY", date(2023, 6, 1))
    with pytest.raises(NoRateError, match="no rate at all"):
        rates.convert(Money.of("1", "EUR"), "CNY", date(2025, 6, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "rates:\n  - {from: USD, to: CNY, rate: 7.1, valid_from: 2024-01-01}\n", "quoted", id="float-rate"
        ),
        pytest.param(
            "rates:\n  - {from: USD, to: CNY, rate: '7', valid_from: 2024-01-01}\n"
            "  - {from: USD, to: CNY, rate: '8', valid_from: 2024-06-01}\n",
            "rates.yaml:3: USD->CNY overlaps the entry at rates.yaml:2",
            id="overlap",
        ),
        pytest.param("rates:\n  - {from: USD, to: CNY, rate: '7'}\n", "missing keys", id="missing"),
        pytest.param(
            "rates:\n  - {from: USD, to: CNY, rate: '-7', valid_from: 2024-01-01}\n",
            "positive",
            id="negative",
        ),
    ],
)
def test_bad_rates_file_is_a_config_error(text: str, message: str) -> None:
    """Mistakes in rates.yaml are ConfigErrors pointing at file:line."""
    with pytest.raises(ConfigError, match=message):
        parse_rates(load_yaml_text(text, "rates.yaml"))
