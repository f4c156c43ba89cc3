"""Currency conversion and localized text for mappings: ``convert`` and ``localized``.

``convert`` turns a canonical money value (``{"unit": "CNY", "value": "80.00"}``) into another currency
with the project's rates table (``canonical_model/rates.yaml``, :mod:`esb.model.rates`) at the rate valid
on a date the mapping names (an order's completion date, a bill's date: never "today" by default), and
rounds it to the target's minor unit with a rounding the mapping must name. A date with no valid rate is a
:class:`~esb.model.rates.NoRateError` (a MessageError: the message is dead-lettered) naming the pair and
the date.

``localized`` picks the text of a canonical LocalizedText (``{"zh-CN": "...", "en": "..."}``, or the TMF
list form ``[{"locale": "zh-CN", "value": "..."}]``) for the receiver's language, then along the fallback
order the mapping declares. A text with none of those languages is an error, never ``""``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from esb.model.money import Money, MoneyError, currency_code, rounding_mode
from esb.transforms import dates

if TYPE_CHECKING:
    from esb.transforms.functions import FnContext

#: Short rounding names a mapping may write (``half_up``), beside decimal's own (``ROUND_HALF_UP``).
_SHORT_ROUNDINGS = {
    "half_up": "ROUND_HALF_UP",
    "half_even": "ROUND_HALF_EVEN",
    "half_down": "ROUND_HALF_DOWN",
    "up": "ROUND_UP",
    "down": "ROUND_DOWN",
    "ceiling": "ROUND_CEILING",
    "floor": "ROUND_FLOOR",
}
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
#: The time zone whose calendar date a timestamp's rate is read on (the operator's books).
BOOKS_TZ = "Asia/Shanghai"


def rounding_name(rounding: Any) -> str:
    """Return decimal's name for ``rounding`` (``half_up`` or ``ROUND_HALF_UP``); MoneyError if unknown."""
    if not isinstance(rounding, str) or not rounding.strip():
        raise MoneyError(f"rounding must be named explicitly (e.g. half_up, half_even), got {rounding!r}")
    text = rounding.strip()
    try:
        return rounding_mode("CNY", _SHORT_ROUNDINGS.get(text.lower(), text))
    except MoneyError:
        raise MoneyError(f"unknown rounding {text!r}: use one of {', '.join(_SHORT_ROUNDINGS)}") from None


def rate_date(value: Any, tz: str = BOOKS_TZ) -> date:
    """Return the calendar date (in ``tz``) a rate must be valid on, from a date or an ISO 8601 time."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dates.zone(tz))
        return stamp.astimezone(dates.zone(tz)).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    if isinstance(value, str):
        return dates.parse_datetime(value, None, tz).astimezone(dates.zone(tz)).date()
    raise ValueError(f"the rate date must be a date or an ISO 8601 time, got {value!r}")


def _money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if isinstance(value, dict):
        return Money.from_json(value)
    raise ValueError(f"convert needs a money value {{unit, value}}, got {value!r}")


def convert(
    value: Any, currency: str, at: Any, rounding: str, tz: str = BOOKS_TZ, *, ctx: FnContext
) -> dict[str, str]:
    """Return ``value`` in ``currency`` at the rate valid on ``at``, rounded with ``rounding``.

    ``at`` is the date the rate must be valid on (``YYYY-MM-DD``, or a time whose date in ``tz`` counts);
    it is never taken from the clock. A missing ``at`` is an error, not "today".
    """
    if at is None or (isinstance(at, str) and not at.strip()):
        raise ValueError(
            f"convert to {currency}: no date to take the rate on (give at: an order or bill date)"
        )
    money = _money(value)
    return ctx.rates.convert(money, currency, rate_date(at, tz), rounding=rounding_name(rounding)).to_json()


def check_convert(ctx: FnContext, *args: Any, **kwargs: Any) -> None:
    """Compile-time check of constant arguments: currency, rounding, time zone, a constant date."""
    names = ("currency", "at", "rounding", "tz")
    given = dict(zip(names, args, strict=False)) | kwargs
    code, rounding, tz, at = given.get("currency"), given.get("rounding"), given.get("tz"), given.get("at")
    try:
        if _constant(code):
            currency_code(code)
        if _constant(rounding) or rounding is None:
            rounding_name(rounding)
        if _constant(tz):
            dates.zone(tz)
        if _constant(at):
            rate_date(at, tz if isinstance(tz, str) and _constant(tz) else BOOKS_TZ)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _constant(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("$")


def _texts(value: Any) -> dict[str, str]:
    """The usable (non-blank) texts of a LocalizedText or of a TMF list of {locale, value}, by tag."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for entry in value:
            if not isinstance(entry, dict) or "locale" not in entry:
                raise ValueError(f"a localized text list holds {{locale, value}} entries, got {entry!r}")
            pairs.append((entry["locale"], entry.get("value")))
    else:
        raise ValueError(
            f"expected a localized text (an object keyed by language, or a list of "
            f"{{locale, value}}), got {value!r}"
        )
    return {str(tag).lower(): text.strip() for tag, text in pairs if isinstance(text, str) and text.strip()}


def localized(value: Any, language: Any = None, fallback: list[str] | tuple[str, ...] = ()) -> str:
    """Return the text of ``value`` in ``language``, else in the first of ``fallback`` it has.

    Tags compare without case (``zh-hk`` is ``zh-HK``). A text in none of them is a ValueError naming the
    languages asked for and those the text has.
    """
    texts = _texts(value)
    asked = [t for t in ([language] if language else []) + list(fallback) if isinstance(t, str) and t]
    wanted = list(dict.fromkeys(asked))  # the receiver's language may be one of the fallbacks too
    for tag in wanted:
        text = texts.get(tag.lower())
        if text is not None:
            return text
    has = ", ".join(sorted(texts)) or "no text at all"
    raise ValueError(f"no text in {', '.join(wanted) or '(no language given)'}; the text has {has}")


def check_localized(ctx: FnContext, *args: Any, **kwargs: Any) -> None:
    """Compile-time check: the language and every fallback are BCP 47 tags; a fallback is a list."""
    language = kwargs.get("language", args[0] if args else None)
    fallback = kwargs.get("fallback", args[1] if len(args) > 1 else ())
    if not isinstance(fallback, (list, tuple)):
        raise ValueError(f"localized: fallback is a list of languages, e.g. [zh-CN, en], got {fallback!r}")
    if language is None and not fallback:
        raise ValueError("localized: give the receiver's language or a fallback list (e.g. [zh-CN, en])")
    for tag in [language, *fallback]:
        if _constant(tag) and not _LANGUAGE_TAG.match(tag):
            raise ValueError(f"localized: {tag!r} is not a language tag (BCP 47: zh-CN, zh-HK, en)")
