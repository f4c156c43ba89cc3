"""Mapping functions convert (rates, rate date, explicit rounding) and localized (receiver's language)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import MappingError, MessageError
from esb.model.money import FloatMoneyError
from esb.model.rates import NoRateError
from esb.transforms import flatfile, fx
from esb.transforms.functions import FnContext
from esb.transforms.pipeline import compile_pipeline, run_pipeline
from esb.transforms.registry import TransformRegistry

RATES = """rates:
  - {from: HKD, to: CNY, rate: "0.9052", valid_from: 2024-01-01, valid_to: 2024-12-31}
  - {from: HKD, to: CNY, rate: "0.9238", valid_from: 2025-01-01}
  - {from: MOP, to: CNY, rate: "0.8970", valid_from: 2025-01-01}
  - {from: USD, to: CNY, rate: "7.1250", valid_from: 2025-01-01}
"""


@pytest.fixture
def ctx(tmp_path: Path) -> FnContext:
    """A function context over a project whose rates change at midnight on 2025-01-01."""
    (tmp_path / "canonical_model").mkdir()
    (tmp_path / "canonical_model" / "rates.yaml").write_text(RATES, encoding="utf-8")
    return FnContext(tmp_path, "test/fx")


def run(ctx: FnContext, step: Any, value: Any, **scope: Any) -> Any:
    """Compile one pipeline step and run it over ``value`` with ``scope`` as the let variables."""
    return run_pipeline(compile_pipeline([step], ctx), value, scope)


def to_hkd(rounding: str = "half_up") -> dict[str, Any]:
    """A convert step to HKD at the let variable $at."""
    return {"convert": {"currency": "HKD", "at": "$at", "rounding": rounding}}


CNY_100 = {"unit": "CNY", "value": "100.00"}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param("2024-12-31", "110.47", id="last-day-of-old-rate"),
        pytest.param("2024-12-31T23:59:59+08:00", "110.47", id="one-second-before-midnight-beijing"),
        pytest.param("2025-01-01T00:00:00+08:00", "108.25", id="midnight-beijing-new-rate"),
        pytest.param("2024-12-31T16:00:00Z", "108.25", id="utc-time-already-next-day-in-beijing"),
        pytest.param("2024-12-31T15:59:59Z", "110.47", id="utc-time-still-old-day-in-beijing"),
        pytest.param("2025-01-01", "108.25", id="first-day-of-new-rate"),
    ],
)
def test_rate_changes_at_midnight_of_the_books_time_zone(ctx: FnContext, at: str, expected: str) -> None:
    """The rate is the one valid on the date in Asia/Shanghai: 100 CNY is 100/0.9052 or 100/0.9238 HKD."""
    assert run(ctx, to_hkd(), CNY_100, at=at) == {"unit": "HKD", "value": expected}


def test_direct_rate_multiplies(ctx: FnContext) -> None:
    """HKD to CNY uses the listed HKD->CNY rate: 100.00 HKD is 92.38 CNY in 2025."""
    step = {"convert": {"currency": "CNY", "at": "$at", "rounding": "half_up"}}
    assert run(ctx, step, {"unit": "HKD", "value": "100.00"}, at="2025-03-01") == {
        "unit": "CNY",
        "value": "92.38",
    }


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        pytest.param("half_up", "7.13", id="half_up"),
        pytest.param("ROUND_HALF_UP", "7.13", id="decimal-name"),
        pytest.param("half_even", "7.12", id="half_even"),
        pytest.param("down", "7.12", id="down"),
        pytest.param("up", "7.13", id="up"),
    ],
)
def test_rounding_to_the_fen_is_the_one_named(ctx: FnContext, rounding: str, expected: str) -> None:
    """1.00 USD at 7.1250 is 7.125 CNY exactly: the named rounding decides the fen."""
    step = {"convert": {"currency": "CNY", "at": "$at", "rounding": rounding}}
    assert run(ctx, step, {"unit": "USD", "value": "1.00"}, at="2025-01-02")["value"] == expected


@pytest.mark.parametrize("rounding", ["down", "up", "half_even", "half_up"])
def test_inverse_rate_divides_exactly(ctx: FnContext, rounding: str) -> None:
    """89.70 CNY at MOP->CNY 0.8970 is exactly 100.00 MOP whatever the rounding (no 99.99 from 1/rate)."""
    step = {"convert": {"currency": "MOP", "at": "$at", "rounding": rounding}}
    assert run(ctx, step, {"unit": "CNY", "value": "89.70"}, at="2025-06-30") == {
        "unit": "MOP",
        "value": "100.00",
    }


def test_inverse_rate_rounds_the_quotient(ctx: FnContext) -> None:
    """10.00 CNY to MOP is 10/0.8970 = 11.1482...: 11.15 half up, 11.14 down."""
    up = {"convert": {"currency": "MOP", "at": "$at", "rounding": "half_up"}}
    down = {"convert": {"currency": "MOP", "at": "$at", "rounding": "down"}}
    value = {"unit": "CNY", "value": "10.00"}
    assert run(ctx, up, value, at="2025-06-30")["value"] == "11.15"
    assert run(ctx, down, value, at="2025-06-30")["value"] == "11.14"


def test_missing_rate_is_a_message_error_naming_pair_and_date(ctx: FnContext) -> None:
    """No MOP rate before 2025: NoRateError (a MessageError: dead letter) names CNY->MOP and the date."""
    step = {"convert": {"currency": "MOP", "at": "$at", "rounding": "half_up"}}
    with pytest.raises(NoRateError) as caught:
        run(ctx, step, CNY_100, at="2024-06-01T10:00:00+08:00")
    assert isinstance(caught.value, MessageError)
    assert "CNY->MOP" in str(caught.value)
    assert "2024-06-01" in str(caught.value)


def test_no_rate_date_is_an_error_never_today(ctx: FnContext) -> None:
    """A rate date that is missing is refused, not replaced by the clock's date."""
    with pytest.raises(ValueError, match="no date to take the rate on"):
        run(ctx, to_hkd(), CNY_100, at=None)


def test_float_amount_is_refused(ctx: FnContext) -> None:
    """A money value whose amount is a float is refused before any conversion."""
    with pytest.raises(FloatMoneyError):
        run(ctx, to_hkd(), {"unit": "CNY", "value": 100.1}, at="2025-01-01")


def test_a_bare_number_is_not_money(ctx: FnContext) -> None:
    """convert needs a money object {unit, value}: a bare amount has no currency to convert from."""
    with pytest.raises(ValueError, match="money value"):
        run(ctx, to_hkd(), "100.00", at="2025-01-01")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        pytest.param(
            {"convert": {"currency": "HKX", "at": "$at", "rounding": "half_up"}},
            "did you mean 'HKD'",
            id="unknown-currency",
        ),
        pytest.param(
            {"convert": {"currency": "HKD", "at": "$at", "rounding": "nearest"}},
            "unknown rounding",
            id="unknown-rounding",
        ),
        pytest.param({"convert": {"currency": "HKD", "at": "$at"}}, "rounding", id="rounding-not-named"),
        pytest.param(
            {"convert": {"currency": "HKD", "at": "$at", "rounding": "down", "tz": "Mars/Base"}},
            "unknown time zone",
            id="unknown-time-zone",
        ),
        pytest.param(
            {"convert": {"currency": "HKD", "at": "yesterday", "rounding": "down"}},
            "yesterday",
            id="constant-date-unreadable",
        ),
        pytest.param({"localized": {"language": "zh_HK"}}, "not a language tag", id="bad-language-tag"),
        pytest.param(
            {"localized": {"language": "zh-HK", "fallback": "en"}},
            "fallback is a list",
            id="fallback-not-a-list",
        ),
        pytest.param({"localized": None}, "fallback list", id="no-language-at-all"),
    ],
)
def test_constant_arguments_are_checked_when_the_mapping_compiles(
    ctx: FnContext, step: dict[str, Any], message: str
) -> None:
    """A wrong constant currency, rounding, zone, date or language tag fails at compile time."""
    with pytest.raises(ValueError, match=message):
        compile_pipeline([step], ctx)


HOME_BUNDLE = {
    "zh-CN": "好E家 199元融合套餐",
    "zh-HK": "好E家 199元融合套餐（港澳版）",
    "en": "Home Bundle 199",
}


@pytest.mark.parametrize(
    ("language", "fallback", "text", "expected"),
    [
        pytest.param("zh-HK", ["zh-CN", "en"], HOME_BUNDLE, "好E家 199元融合套餐（港澳版）", id="preferred"),
        pytest.param("zh-hk", [], HOME_BUNDLE, "好E家 199元融合套餐（港澳版）", id="tag-case-ignored"),
        pytest.param(
            "zh-HK",
            ["en", "zh-CN"],
            {"zh-CN": "宽带", "en": "Broadband"},
            "Broadband",
            id="fallback-order-en-first",
        ),
        pytest.param(
            "zh-HK",
            ["zh-CN", "en"],
            {"zh-CN": "宽带", "en": "Broadband"},
            "宽带",
            id="fallback-order-zh-cn-first",
        ),
        pytest.param("en", ["zh-CN"], {"en": "  ", "zh-CN": "天翼高清"}, "天翼高清", id="blank-text-skipped"),
        pytest.param(
            "zh-HK",
            ["zh-CN"],
            [{"locale": "zh-HK", "value": "寬頻"}, {"locale": "en", "value": "Fibre"}],
            "寬頻",
            id="tmf-list-form",
        ),
        pytest.param(None, ["zh-CN", "en"], {"en": "Gigabit"}, "Gigabit", id="no-receiver-language"),
    ],
)
def test_localized_picks_the_receivers_language_then_the_fallbacks(
    ctx: FnContext, language: str | None, fallback: list[str], text: Any, expected: str
) -> None:
    """The receiver's language first, then the declared fallback order; tags compare without case."""
    step = {"localized": {"language": "$lang", "fallback": fallback}}
    assert run(ctx, step, text, lang=language) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param({"fr": "Fibre optique"}, id="only-other-languages"),
        pytest.param({"zh-CN": "", "en": " "}, id="only-blank"),
        pytest.param({}, id="empty"),
    ],
)
def test_text_with_no_usable_language_is_an_error_not_blank(ctx: FnContext, text: dict[str, str]) -> None:
    """No text in the asked languages is a ValueError naming them and what the text has, never ''."""
    with pytest.raises(ValueError, match="no text in zh-HK, zh-CN, en"):
        fx.localized(text, "zh-HK", ["zh-CN", "en"])


def test_localized_refuses_what_is_not_a_localized_text() -> None:
    """A plain string or a list without locale entries is refused."""
    with pytest.raises(ValueError, match="localized text"):
        fx.localized("宽带", "zh-CN")
    with pytest.raises(ValueError, match="locale"):
        fx.localized([{"lang": "zh-CN", "value": "宽带"}], "zh-CN")


MAPPING = """kind: jmespath
description: a commission amount in the partner's currency and the product name in its language
input: json
output: json
let:
  currency: partner.currency
  at: order.completionDate
  lang: partner.language
rules:
  amount: {from: commission, fn: [{convert: {currency: $currency, at: $at, rounding: half_up}}]}
  name: {from: names, fn: [{localized: {language: $lang, fallback: [zh-CN, en]}}]}
  in_expression: "convert(commission, 'HKD', order.completionDate, 'down').value"
"""


def test_functions_in_a_mapping_and_a_missing_rate_is_a_mapping_error(ctx: FnContext) -> None:
    """In a jmespath mapping both functions work (pipeline, expression); no rate is a MappingError."""
    folder = ctx.project_dir / "transforms" / "channel"
    folder.mkdir(parents=True)
    (folder / "fx_demo.yaml").write_text(MAPPING, encoding="utf-8")
    transform = TransformRegistry(ctx.project_dir).get("channel/fx_demo")
    body = {
        "commission": {"unit": "CNY", "value": "100.00"},
        "order": {"completionDate": "2025-01-01T00:10:00+08:00"},
        "partner": {"currency": "MOP", "language": "zh-HK"},
        "names": {"zh-CN": "千兆宽带", "zh-HK": "千兆寬頻", "en": "Gigabit fibre"},
    }
    out = transform.run(body)
    assert out == {
        "amount": {"unit": "MOP", "value": "111.48"},
        "name": "千兆寬頻",
        "in_expression": "108.24",
    }
    body["order"]["completionDate"] = "2024-12-31T23:50:00+08:00"
    with pytest.raises(MappingError, match="CNY->MOP exchange rate valid on 2024-12-31"):
        transform.run(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("更换光猫|重新熔接", "更换光猫｜重新熔接", id="delimiter-to-full-width"),
        pytest.param("线路故障\r\n请重新\t预约", "线路故障 请重新 预约", id="line-breaks-and-tabs"),
        pytest.param("  张   伟 ", "张 伟", id="spaces-collapsed"),
    ],
)
def test_flat_text_keeps_one_field_on_one_line(text: str, expected: str) -> None:
    """flat_text replaces the delimiter with its full-width form and line breaks with a space."""
    assert flatfile.flat_text(text, "|", "gbk") == expected


def test_flat_text_refuses_what_the_encoding_cannot_write() -> None:
    """A character GBK lacks is an error naming it, so that one record cannot break a whole file."""
    with pytest.raises(ValueError, match=r"U\+1F600.*cannot be written in gbk"):
        flatfile.flat_text("王😀", "|", "gbk")
    assert flatfile.flat_text("王😀", "|", "utf-8") == "王😀"


def test_flat_text_checks_its_encoding_when_compiled(ctx: FnContext) -> None:
    """An unknown encoding is a compile-time error."""
    with pytest.raises(ValueError, match="unknown encoding 'gbkk'"):
        compile_pipeline([{"flat_text": {"delimiter": "|", "encoding": "gbkk"}}], ctx)
