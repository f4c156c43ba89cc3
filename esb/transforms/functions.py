"""The mapping functions: code lists, dates, money, string normalisation.

Each function takes the value first, then its arguments: ``{codelist: order_item_action, system: siebel}``
in a pipeline calls ``codelist(value, "order_item_action", system="siebel")``; in a JMESPath expression
the same function is ``codelist(@, 'order_item_action', 'siebel')``. A missing value (``None``) passes
through every function except those marked ``none_ok`` (``default``). Functions raise ``ValueError``
with a readable message; the rule runner turns it into a MappingError naming the rule and source path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from esb.exceptions import MessageError
from esb.model.codelists import CodeLists, UnknownCode, load_codelists
from esb.model.rates import RatesTable, load_rates
from esb.transforms import dates, flatfile, fx, money
from esb.transforms.siebel import siebel_escape, siebel_unescape


@dataclass
class FnContext:
    """What context-aware functions see: the project (for code lists) and the transform's name."""

    project_dir: Path
    transform: str = ""

    _tables: dict[tuple[str, str, bool], dict[str, str]] = field(default_factory=dict)

    @cached_property
    def codelists(self) -> CodeLists:
        """The project's code lists, loaded once."""
        return load_codelists(self.project_dir)

    @cached_property
    def rates(self) -> RatesTable:
        """The project's exchange rates (canonical_model/rates.yaml), loaded once."""
        return load_rates(self.project_dir)

    def table(self, name: str, system: str, outgoing: bool) -> dict[str, str]:
        """Return the plain lookup dict of a list for ``system`` (built once; misses go the slow way)."""
        key = (name, system, outgoing)
        if key not in self._tables:
            codes = self.codelists.get(name).systems.get(system, {})
            if outgoing:
                first: dict[str, str] = {}
                for code, canonical in codes.items():
                    first.setdefault(canonical, code)
                codes = first
            self._tables[key] = dict(codes)
        return self._tables[key]


@dataclass(frozen=True)
class FnDef:
    """One registered function: the callable and how the pipeline treats it."""

    func: Callable[..., Any]
    none_ok: bool = False
    needs_ctx: bool = False
    check: Callable[..., None] | None = field(default=None)


FUNCTIONS: dict[str, FnDef] = {}


def register(name: str, *, none_ok: bool = False, needs_ctx: bool = False,
             check: Callable[..., None] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as mapping function ``name`` (decorator)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name] = FnDef(func, none_ok, needs_ctx, check)
        return func

    return deco


# ---- strings -------------------------------------------------------------------------------------------
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


@register("trim")
def trim(value: Any) -> str:
    """Strip leading and trailing whitespace, the ideographic space (U+3000) included."""
    return str(value).strip()


@register("upper")
def upper(value: Any) -> str:
    """Upper-case."""
    return str(value).upper()


@register("lower")
def lower(value: Any) -> str:
    """Lower-case."""
    return str(value).lower()


@register("halfwidth")
def halfwidth(value: Any) -> str:
    """Full-width ASCII forms (U+FF01-U+FF5E) and the ideographic space to half-width; CJK untouched."""
    return str(value).translate(_HALFWIDTH)


@register("nfkc")
def nfkc(value: Any) -> str:
    """Unicode NFKC normalisation (also folds full-width forms, circled digits, ligatures)."""
    return unicodedata.normalize("NFKC", str(value))


@register("collapse_spaces")
def collapse_spaces(value: Any) -> str:
    """Trim, and collapse every run of whitespace to one space."""
    return " ".join(str(value).split())


#: The characters ``halfwidth`` changes: a text without any is left as it is (translate is per character).
_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")


@register("clean")
def clean(value: Any) -> str | None:
    """Half-width, trim and collapse spaces; an all-blank value becomes missing."""
    text = value if type(value) is str else str(value)
    if not text.isascii() and _FULLWIDTH.search(text) is not None:
        text = text.translate(_HALFWIDTH)
    return " ".join(text.split()) or None


@register("string")
def string(value: Any) -> str:
    """The value as text (Decimal without exponent)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


@register("prefix")
def prefix(value: Any, text: str) -> str:
    """Prepend ``text``."""
    return f"{text}{value}"


@register("template")
def template(value: Any, fmt: str) -> str:
    """Format with ``str.format``: ``{template: "MSISDN-{}"}``."""
    return fmt.format(value)


@register("split")
def split(value: Any, sep: str = ",") -> list[str]:
    """Split text on ``sep``, trimming each part and dropping empty ones."""
    return [p.strip() for p in str(value).split(sep) if p.strip()]


@register("join")
def join(value: Any, sep: str = ",") -> str:
    """Join a list with ``sep`` (missing items skipped)."""
    items = value if isinstance(value, list) else [value]
    return sep.join(str(v) for v in items if v is not None)


@register("siebel_unescape")
def _siebel_unescape(value: Any) -> str:
    """``Order_spcEntry`` -> ``Order Entry``."""
    return siebel_unescape(str(value))


@register("siebel_escape")
def _siebel_escape(value: Any) -> str:
    """``Order Entry`` -> ``Order_spcEntry``."""
    return siebel_escape(str(value))


# ---- values --------------------------------------------------------------------------------------------
@register("default", none_ok=True)
def default(value: Any, fallback: Any) -> Any:
    """``fallback`` when the value is missing or blank."""
    return fallback if value is None or value == "" else value


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


@register("integer")
def integer(value: Any) -> int:
    """A whole number (``"2"``, ``"2.0"``); anything else is an error."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit() and value.isascii():  # "12": what the Decimal way gives
        return int(value)
    number = _number(value)
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


@register("decimal")
def decimal(value: Any) -> str:
    """A decimal number as a string, exactly as given (never through float)."""
    return format(_number(value), "f")


_TRUE = {"y", "yes", "true", "1", "t", "是"}
_FALSE = {"n", "no", "false", "0", "f", "否", ""}


@register("flag")
def flag(value: Any) -> bool:
    """Siebel's ``Y``/``N`` (and true/false, 1/0) as a boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a Y/N flag: {value!r}")


@register("lookup")
def lookup(value: Any, table: dict[str, Any], fallback: Any = None) -> Any:
    """Inline code table: ``{lookup: {table: {A: x, B: y}}}``; unknown without fallback is an error."""
    key = str(value)
    if key in table:
        return table[key]
    if fallback is not None:
        return fallback
    raise ValueError(f"{value!r} is not in the table ({', '.join(map(str, table))})")


# ---- code lists ----------------------------------------------------------------------------------------
def _check_codelist(ctx: FnContext, name: str, system: str) -> None:
    try:
        ctx.codelists.get(name)._system(system)
    except UnknownCode as exc:
        raise ValueError(str(exc)) from None


@register("codelist", needs_ctx=True, check=_check_codelist)
def codelist(value: Any, name: str, system: str, *, ctx: FnContext) -> str:
    """The canonical value of ``system``'s code (``{codelist: order_item_action, system: siebel}``)."""
    hit = ctx.table(name, system, False).get(value) if isinstance(value, str) else None
    if hit is not None:
        return hit
    try:
        return ctx.codelists.to_canonical(name, system, value)
    except UnknownCode as exc:
        raise ValueError(str(exc)) from None


@register("codelist_out", needs_ctx=True, check=_check_codelist)
def codelist_out(value: Any, name: str, system: str, *, ctx: FnContext) -> str:
    """``system``'s code for the canonical value (``{codelist_out: order_item_action, system: iom}``)."""
    hit = ctx.table(name, system, True).get(value) if isinstance(value, str) else None
    if hit is not None:
        return hit
    try:
        return ctx.codelists.from_canonical(name, system, value)
    except UnknownCode as exc:
        raise ValueError(str(exc)) from None


# ---- dates and money -----------------------------------------------------------------------------------
def _check_tz(ctx: FnContext, *args: Any, **kwargs: Any) -> None:
    for key in ("tz", "to"):
        if isinstance(kwargs.get(key), str) and not kwargs[key].startswith("$"):
            dates.zone(kwargs[key])


def _check_currency(ctx: FnContext, *args: Any, **kwargs: Any) -> None:
    code = kwargs.get("currency", args[0] if args else None)
    if isinstance(code, str) and not code.startswith("$"):
        try:
            money.minor_unit(code)
        except MessageError as exc:
            raise ValueError(str(exc)) from None


register("datetime", check=_check_tz)(dates.iso_datetime)
register("date", check=_check_tz)(dates.iso_date)
register("format_datetime", check=_check_tz)(dates.format_datetime)
register("money", check=_check_currency)(money.money)
register("to_minor", check=_check_currency)(money.to_minor)
register("from_minor", check=_check_currency)(money.from_minor)
register("convert", needs_ctx=True, check=fx.check_convert)(fx.convert)
register("localized", check=fx.check_localized)(fx.localized)
register("flat_text", check=flatfile.check_flat_text)(flatfile.flat_text)
