"""HTTP basic credentials checked by the hub's listeners, in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import os


def check_basic(header: str | None, users: dict[str, str]) -> str | None:
    """Return the user an ``Authorization: Basic`` header proves, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if matches(user, password.encode(), users) else None


def basic_user(header: str | None) -> str | None:
    """Return the user name an ``Authorization: Basic`` header gives (for the audit log), or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user[:100] or None


def matches(user: str, password: bytes, users: dict[str, str]) -> bool:
    """True when ``password`` is ``user``'s (constant time, also for unknown users)."""
    expected = users.get(user)
    # compare against something even for unknown users so timing does not tell which users exist
    ok = hmac.compare_digest(password, (expected if expected is not None else os.urandom(16).hex()).encode())
    return ok and expected is not None
