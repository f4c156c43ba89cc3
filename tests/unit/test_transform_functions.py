"""The mapping function library: strings, code lists, dates with time zones, money in Decimal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esb.transforms import dates, functions, money
from esb.transforms.functions import FnContext
from esb.transforms.pipeline import compile_pipeline, run_pipeline

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx() -> FnContext:
    """A function context over the real project's code lists."""
    return FnContext(PROJECT, "test/fn")


def test_halfwidth_folds_fullwidth_ascii_and_ideographic_space() -> None:
    """Full-width letters, digits and the ideographic space become ASCII; CJK is untouched."""
    assert functions.halfwidth("５Ｇ　套餐（ＶＩＰ）") == "5G 套餐(VIP)"


def test_clean_trims_collapses_and_turns_blank_into_missing() -> None:
    """clean() trims (U+3000 too), collapses runs of spaces, and returns None for a blank value."""
    assert functions.clean("　张  伟　") == "张 伟"
    assert functions.clean("　 ") is None


@given(st.text(alphabet=st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E), max_size=30))
def test_halfwidth_of_fullwidth_ascii_is_nfkc(text: str) -> None:
    """For the full-width ASCII block, the explicit table agrees with Unicode NFKC."""
    assert functions.halfwidth(text) == functions.nfkc(text)


def test_codelist_maps_siebel_actions_both_ways(ctx: FnContext) -> None:
    """Siebel Add/Update/Delete/- become add/modify/delete/noChange, and canonical goes out as IOM codes."""
    codes = ("Add", "Update", "Delete", "-")
    actions = [functions.codelist(c, "order_item_action", "siebel", ctx=ctx) for c in codes]
    assert actions == ["add", "modify", "delete", "noChange"]
    assert functions.codelist_out("noChange", "order_item_action", "iom", ctx=ctx) == "KEEP"


def test_codelist_unknown_code_is_a_clear_error(ctx: FnContext) -> None:
    """An unknown code raises ValueError naming the list and suggesting the closest code."""
    with pytest.raises(ValueError, match=r"order_item_action.*'Updte'.*did you mean 'Update'"):
        functions.codelist("Updte", "order_item_action", "siebel", ctx=ctx)


def test_siebel_date_in_shanghai_gets_plus_eight_offset() -> None:
    """A Siebel MM/DD/YYYY date in Asia/Shanghai becomes ISO 8601 with +08:00, or UTC on request."""
    assert dates.iso_datetime("11/25/2026 14:03:00", tz="Asia/Shanghai") == "2026-11-25T14:03:00+08:00"
    utc = dates.iso_datetime("11/25/2026 14:03:00", tz="Asia/Shanghai", to="UTC")
    assert utc == "2026-11-25T06:03:00+00:00"


@pytest.mark.parametrize(
    "text",
    ["11/25/2026 14:03:00", "1/5/2026 1:02:03", "02/30/2026 10:00:00", "13/01/2026 00:00:00",
     "11/25/2026 24:00:00", "11/25/2026 14:03:60", "\uff11\uff11/25/2026 14:03:00", "11/25/2026 14:03",
     "11/25/2026"],
)  # fmt: skip
def test_siebel_date_fast_path_agrees_with_strptime(text: str) -> None:
    """Siebel dates read without strptime give exactly strptime's answer, refusals included."""
    expected = None
    for fmt in dates.DEFAULT_FORMATS:
        try:
            expected = dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    assert dates._parse_text(text, None) == expected


def test_date_with_offset_keeps_it_and_formats_in_another_zone() -> None:
    """An ISO date with an offset is not re-zoned; format_datetime renders it in the target zone."""
    assert dates.format_datetime("2026-12-31T17:30:00Z", "%Y%m%d%H%M%S", "Asia/Shanghai") == "20270101013000"


def test_bad_date_and_unknown_zone_are_errors() -> None:
    """A date in no known format and an unknown time zone raise ValueError."""
    with pytest.raises(ValueError, match="does not match"):
        dates.iso_datetime("25.11.2026")
    with pytest.raises(ValueError, match="unknown time zone"):
        dates.zone("Asia/Beijing")


def test_money_quantizes_to_minor_unit_as_string() -> None:
    """Amounts become Decimal strings with the currency's minor unit: CNY 2, JPY 0, KWD 3."""
    assert money.money("12.5", "CNY") == "12.50"
    assert money.money("¥1,250", "CNY") == "1250.00"
    assert money.money("1000.4", "JPY") == "1000"
    assert money.money("1.2", "KWD") == "1.200"


def test_money_refuses_float_and_unknown_currency() -> None:
    """A float is refused (never money), and so is a code that is not ISO 4217."""
    with pytest.raises(TypeError):
        money.money(0.1, "CNY")
    with pytest.raises(Exception, match="unknown currency"):
        money.money("1", "RMB")


def test_to_minor_is_exact_or_an_error() -> None:
    """12.50 CNY is 1250 fen; 12.345 CNY cannot be fen without rounding, so it is an error."""
    assert money.to_minor({"unit": "CNY", "value": "12.50"}) == 1250
    with pytest.raises(ValueError, match="more decimals"):
        money.to_minor("12.345", "CNY")


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_fen_round_trip(fen: int) -> None:
    """Any whole number of fen survives fen -> decimal string -> fen unchanged."""
    text = money.from_minor(fen, "CNY")
    assert Decimal(text).as_tuple().exponent == -2
    assert money.to_minor(text, "CNY") == fen


def test_pipeline_binds_arguments_and_variables(ctx: FnContext) -> None:
    """A pipeline runs left to right; $name arguments come from the scope at run time."""
    steps = compile_pipeline(["trim", {"money": "$currency"}], ctx)
    assert run_pipeline(steps, " 7.1 ", {"currency": "USD"}) == "7.10"


def test_pipeline_skips_missing_values_except_default(ctx: FnContext) -> None:
    """None passes through ordinary steps; default replaces it."""
    lookup = {"codelist": "order_item_action", "system": "siebel"}
    steps = compile_pipeline(["trim", {"default": "-"}, lookup], ctx)
    assert run_pipeline(steps, None, {}) == "noChange"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("trimm", "did you mean 'trim'", id="unknown-function"),
        pytest.param({"money": "XXX"}, "unknown currency", id="bad-currency"),
        pytest.param({"datetime": {"tz": "Mars/Olympus"}}, "unknown time zone", id="bad-zone"),
        pytest.param({"codelist": "order_item_acton", "system": "siebel"}, "did you mean", id="bad-list"),
        pytest.param({"join": {"sepp": ","}}, "unexpected keyword", id="bad-argument"),
    ],
)
def test_pipeline_mistakes_fail_at_compile_time(ctx: FnContext, spec: object, message: str) -> None:
    """Mistakes in a pipeline are found when the mapping compiles, not when a message arrives."""
    with pytest.raises(ValueError, match=message):
        compile_pipeline([spec], ctx)
