"""Counting and peeking the embedded SQLite queues without kombu (``esb dlq list``, ``esb health``).

The SQLite transport (:mod:`adapters.queue.sqlite_transport`) keeps each message as one row of
``esb_messages`` whose payload is kombu's virtual message (JSON) and whose ``body`` BLOB holds the body
as is (rows written before that column keep it base64 in the payload). Counting a queue and reading its
oldest rows need only ``sqlite3``: the statements live here, and the transport's channel runs the same
ones, so a cold operator's command does not import kombu and open a kombu connection per queue.

The read path answers only when it can answer exactly as the transport would: a broker that is not
SQLite, a queue file with no queue table yet, a payload kombu would decompress or decode with a codec
other than base64, or any SQLite error give ``None``, and the caller goes through kombu as before.
A missing queue file holds no messages (kombu's path would create it empty).
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlparse

import orjson

T = TypeVar("T")

#: The kombu transport alias of the embedded broker (``sqlite:////abs/path/queues.db``).
ALIAS = "sqlite"
#: ``ready``, ``in_flight`` and ``delayed`` counts of one queue (named parameters ``now`` and ``q``).
STATS_SQL = """SELECT COALESCE(SUM(visible_at <= :now), 0),
                      COALESCE(SUM(visible_at > :now AND in_flight = 1), 0),
                      COALESCE(SUM(visible_at > :now AND in_flight = 0), 0)
               FROM esb_messages WHERE queue = :q"""
#: The oldest rows of one queue in hand-out order, not claimed.
PEEK_SQL = (
    "SELECT payload, delivery_count, body FROM esb_messages WHERE queue = ? ORDER BY visible_at, id LIMIT ?"
)


def register(alias: str = ALIAS) -> None:
    """Make ``Connection("sqlite:///...")`` resolve to the SQLite transport (idempotent; imports only
    kombu's alias table, not the transport)."""
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES.setdefault(alias, "adapters.queue.sqlite_transport:Transport")


def queue_stats(db: sqlite3.Connection, queue: str) -> dict[str, int]:
    """Return ``{"ready", "in_flight", "delayed"}`` counts of ``queue``."""
    row = db.execute(STATS_SQL, {"now": time.time(), "q": queue}).fetchone()
    return {"ready": int(row[0]), "in_flight": int(row[1]), "delayed": int(row[2])}


def peek_payloads(db: sqlite3.Connection, queue: str, limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` raw messages (kombu payloads, their delivery count in
    ``properties.delivery_info``) of ``queue`` in hand-out order, without claiming them."""
    out = []
    for payload, count, body in db.execute(PEEK_SQL, (queue, limit)).fetchall():
        message = orjson.loads(payload)
        if body is not None:  # stored as is (the transport's rows since the body column)
            message["body"] = body
        message.setdefault("properties", {}).setdefault("delivery_info", {})["delivery_count"] = count
        out.append(message)
    return out


def database_path(url: str) -> str | None:
    """The queue file of a ``sqlite:`` broker URL, read as kombu reads it (its virtual host); None for
    another broker or a URL without a path."""
    if urlparse(url).scheme != ALIAS:
        return None
    path = urlparse("http://" + url[len(ALIAS) + 3 :]).path
    path = unquote(path[1:] if path.startswith("/") else path)
    return path or None


def wire_body(payload: dict[str, Any]) -> bytes | None:
    """The body bytes kombu's virtual message would hand out for ``payload``; None when only kombu can
    tell (a compressed body, a codec other than base64)."""
    headers = payload.get("headers") or {}
    if headers.get("compression"):
        return None
    body = payload.get("body")
    encoding = (payload.get("properties") or {}).get("body_encoding")
    if body and encoding and encoding.lower() != "utf-8":
        if encoding != "base64" or not isinstance(body, str):
            return None
        try:
            body = base64.b64decode(body.encode("utf-8"))
        except (binascii.Error, ValueError):
            return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return None  # no body at all, or JSON kombu would hand out as is: left to kombu


def read_stats(url: str, queue: str, busy_timeout: float = 10.0) -> dict[str, int] | None:
    """The counts of ``queue`` on a SQLite broker read through ``sqlite3``; None when kombu must answer."""
    empty = {"ready": 0, "in_flight": 0, "delayed": 0}
    return _read(url, busy_timeout, lambda db: queue_stats(db, queue), empty)


def read_peek(
    url: str, queue: str, limit: int, busy_timeout: float = 10.0
) -> list[tuple[bytes, dict[str, Any]]] | None:
    """Up to ``limit`` messages of ``queue`` on a SQLite broker as (body, headers), oldest first, read
    through ``sqlite3`` without claiming them; None when kombu must answer."""

    def rows(db: sqlite3.Connection) -> list[tuple[bytes, dict[str, Any]]] | None:
        out = []
        for payload in peek_payloads(db, queue, limit):
            body = wire_body(payload)
            if body is None:
                return None
            out.append((body, dict(payload.get("headers") or {})))
        return out

    none: list[tuple[bytes, dict[str, Any]]] = []
    return _read(url, busy_timeout, rows, none)


def _read(
    url: str, busy_timeout: float, read: Callable[[sqlite3.Connection], T | None], empty: T
) -> T | None:
    """Run ``read`` on the broker's queue file opened read-write without creating it (a reader of a WAL
    database needs its shared-memory file); ``empty`` when there is no file yet in a folder that exists
    (kombu would create it there, empty), None on any SQLite error or a folder that is not one (kombu
    then answers, and fails as the broker would: ``esb health`` says down)."""
    path = database_path(url)
    if path is None:
        return None
    if not os.path.exists(path):
        return empty if os.path.isdir(os.path.dirname(path) or ".") else None
    try:
        db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=busy_timeout)
    except sqlite3.Error:
        return None
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        return read(db)
    except sqlite3.Error:
        return None
    finally:
        db.close()
