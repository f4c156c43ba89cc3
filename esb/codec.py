"""Turning a body that arrived as bytes into structured data: the one place JSON bodies are parsed."""

from __future__ import annotations

from typing import Any

import orjson

from esb.exceptions import DecodeError


def json_body(body: Any, what: str) -> Any:
    """Return ``body`` as JSON data: dicts and lists as they are, bytes and text parsed.

    ``what`` names the step in the error (``crm/order: body is not valid JSON ...``). Invalid JSON or
    invalid UTF-8 raises DecodeError, a permanent message error.
    """
    if isinstance(body, dict | list):
        return body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise DecodeError(f"{what}: expected a JSON body, got {type(body).__name__}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what}: body is not valid JSON (or not UTF-8): {exc}") from exc
