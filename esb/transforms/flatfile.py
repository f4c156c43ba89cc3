"""``flat_text``: text made safe for one field of a delimited batch file (NCR extracts, commission files).

A free text (a description, a resolution, a customer's name) may hold the file's delimiter or a line
break, which would shift every later field or split the record; the batch writer does not quote. The
delimiter becomes its full-width form (``|`` -> ``｜``, a character GBK has), line breaks and tabs a
space. A character the file's encoding cannot hold is an error for this record (a MessageError: dead
letter naming it), so one record never makes a whole file fail to render.
"""

from __future__ import annotations

import codecs
from typing import Any

_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\t": " ", "\u2028": " ", "\u2029": " "})


def flat_text(value: Any, delimiter: str = "|", encoding: str = "utf-8") -> str:
    """Return ``value`` as one line without ``delimiter``, checked to be writable in ``encoding``."""
    text = " ".join(str(value).translate(_BREAKS).split())
    if len(delimiter) == 1 and 0x21 <= ord(delimiter) <= 0x7E:
        text = text.replace(delimiter, chr(ord(delimiter) + 0xFEE0))
    else:
        text = text.replace(delimiter, " ")
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise ValueError(
            f"{bad!r} (U+{ord(bad):04X}) in {text!r} cannot be written in {encoding}"
        ) from None
    return text


def check_flat_text(ctx: Any, *args: Any, **kwargs: Any) -> None:
    """Compile-time check: the encoding exists and the delimiter is not empty."""
    encoding = kwargs.get("encoding", args[1] if len(args) > 1 else "utf-8")
    delimiter = kwargs.get("delimiter", args[0] if args else "|")
    if isinstance(encoding, str) and not encoding.startswith("$"):
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"flat_text: unknown encoding {encoding!r}") from None
    if isinstance(delimiter, str) and not delimiter:
        raise ValueError("flat_text: the delimiter is empty")
