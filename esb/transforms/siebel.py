"""Siebel XML names: the two ways Siebel turns a repository name into an XML name.

Siebel repository names may hold characters that XML names cannot (``Order Entry (Sales)``).

* ``escaped`` (``EscapeNames=True`` on the XML converters, their default): each such character becomes an
  escape sequence (``Order_spcEntry_spc_lprSales_rpr``). The table is Oracle's ("XML Reference: Siebel
  Enterprise Application Integration", *Element and Attribute Naming*), all fifteen entries; any other
  illegal character becomes ``_<decimal code point>``. Hyphens, dots and digits are legal in XML names and
  stay as they are (``Order Entry - Orders`` is ``Order_spcEntry_spc-_spcOrders``).
* ``stripped`` (``EscapeNames=False``, and the default *XML Tag* the integration-object wizard gives a
  component or field): the illegal characters are removed (``OrderEntrySales``, ``OrderEntry-Orders``);
  underscores stay.

The table has no ``_sl`` or ``_dot``: a slash is ``_slh`` and a dot is a legal name character.

The ``_<code>`` form is ambiguous when a digit follows it (``=9`` and ``ɫ`` both give ``_619``); names in
repositories rarely hold such characters, and mappings name tags through the table's characters.
"""

from __future__ import annotations

import re

ESCAPES: dict[str, str] = {
    " ": "_spc",
    "_": "_und",
    '"': "_dqt",
    "'": "_sqt",
    ":": "_cln",
    ";": "_scn",
    "(": "_lpr",
    ")": "_rpr",
    "&": "_amp",
    ",": "_cma",
    "#": "_pnd",
    "/": "_slh",
    "?": "_qst",
    "<": "_lst",
    ">": "_grt",
}
_UNESCAPES = {v: k for k, v in ESCAPES.items()}
_ESCAPE_RE = re.compile(
    "|".join(sorted((re.escape(v) for v in _UNESCAPES), key=len, reverse=True)) + r"|_(\d+)"
)
_NAME_CHAR = re.compile(r"[\w.\-]")
_TOKEN = re.compile("|".join(re.escape(v) for v in _UNESCAPES if v != "_und"))

ESCAPED = "escaped"
STRIPPED = "stripped"
STYLES = (ESCAPED, STRIPPED)


def siebel_escape(name: str) -> str:
    """Return the XML tag Siebel writes for the repository name ``name`` (``A B`` -> ``A_spcB``)."""
    out = []
    for ch in name:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif _NAME_CHAR.match(ch):
            out.append(ch)
        else:
            out.append(f"_{ord(ch)}")
    return "".join(out)


def siebel_unescape(tag: str) -> str:
    """Return the Siebel repository name behind the XML tag ``tag`` (``A_spcB`` -> ``A B``)."""

    def repl(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return chr(int(match.group(1)))
        return _UNESCAPES[match.group(0)]

    return _ESCAPE_RE.sub(repl, tag)


def siebel_strip(name: str) -> str:
    """Return the XML tag Siebel writes for ``name`` without escapes (``A (B)`` -> ``AB``)."""
    return "".join(ch for ch in name if ch == "_" or _NAME_CHAR.match(ch))


def siebel_tag(name: str, style: str) -> str:
    """Return the XML tag of the repository name ``name`` in ``style`` (escaped or stripped)."""
    return siebel_escape(name) if style == ESCAPED else siebel_strip(name)


def has_escapes(tag: str) -> bool:
    """Whether ``tag`` holds one of Siebel's escape sequences for a character that is illegal in names.

    ``_und`` is left out: a stripped name keeps its underscores, so ``Field_under`` proves nothing.
    """
    return _TOKEN.search(tag) is not None
