"""Siebel XML name escapes (``EscapeNames=True`` on the EAI XML Converter).

Siebel repository names may hold characters that XML names cannot (``Order Entry (Sales)``); the XML
Converter writes them as escape sequences (``Order_spcEntry_spc_lprSales_rpr``). The table is Oracle's
("XML Reference: Siebel Enterprise Application Integration", *Element and Attribute Naming*); any other
illegal character becomes ``_<decimal code point>``. Hyphens, dots and digits are legal in XML names and
stay as they are (``Order Entry - Orders`` is ``Order_spcEntry_spc-_spcOrders``).

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
    "|".join(sorted((re.escape(v) for v in _UNESCAPES), key=len, reverse=True)) + r"|_(\d+)")
_NAME_CHAR = re.compile(r"[\w.\-]")


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
