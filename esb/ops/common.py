"""What the operators' commands share: opening project and journal, time windows, tables, JSON."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from esb.config.durations import parse_duration
from esb.config.settings import Settings
from esb.exceptions import ConfigError
from esb.message import iso as iso  # the commands' time format, kept here for them

if TYPE_CHECKING:
    from esb.journal import Journal
    from esb.project import Project

_AGO = re.compile(r"^\d+(\.\d+)?\s*(ms|s|m|h|d)?$")


def load(root: Path, env: str | None) -> Project:
    """Load the project (strict: a broken project is a ConfigError, exit 2)."""
    from esb.project import Project  # imported when used: esb trace needs only the settings

    return Project.load(root, env)


@contextlib.contextmanager
def open_journal(project: Project | Settings) -> Iterator[Journal]:
    """Open the journal of a project (or of its settings alone) for the length of a command."""
    from esb.journal import Journal  # imported when used: esb trace on SQLite reads without it

    settings = (project if isinstance(project, Settings) else project.settings).journal
    journal = Journal(settings.url, keep_bodies=settings.keep_bodies, pool_size=2)
    journal.connect()
    try:
        yield journal
    finally:
        journal.close()


def parse_when(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """Parse ``--since``/``--until``: a duration ago (``15m``, ``2h``, ``1d``) or an ISO 8601 time.

    A time without a zone is taken as UTC. None stays None.
    """
    if text is None or text == "":
        return None
    now = now or datetime.now(UTC)
    if _AGO.match(text.strip()):
        return now - timedelta(seconds=parse_duration(text.strip()))
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is neither a duration ago ('15m', '2h') nor an ISO time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_key(text: str) -> tuple[str, str]:
    """Parse ``NAME=VALUE`` (a business key such as ``order_id=SO2026...``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        raise ConfigError(f"{text!r} is not NAME=VALUE (e.g. order_id=SO20260000000001, msisdn=13307550001)")
    return name.strip(), value


def to_json(value: Any) -> str:
    """Serialise for ``--json`` output (datetimes as ISO, bytes as text)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, bytes | bytearray | memoryview):
            return bytes(obj).decode("utf-8", "backslashreplace")
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(type(obj).__name__)

    return orjson.dumps(value, default=default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a plain text table with aligned columns (no colours: it goes to logs and tickets too)."""
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in text_rows)
    return "\n".join(lines)


def display_body(body: bytes | None, limit: int = 4000) -> str:
    """Return a body for people: text as it is (GBK/GB18030 decoded too), else hex; cut at ``limit``."""
    if body is None:
        return "(no body kept)"
    for encoding in ("utf-8", "gb18030"):
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = body.hex(" ")
    if len(text) > limit:
        return text[:limit] + f"\n... ({len(body)} bytes in all; --raw FILE for every byte)"
    return text
