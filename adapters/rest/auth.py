"""Who is calling: HTTP basic (the SOAP listener's check, shared) or a bearer token, on every resource.

A bearer token is an account's secret (``password_env``/``password_file``) sent as
``Authorization: Bearer <secret>``; it is compared with every account's secret in constant time
(``hmac.compare_digest``), so neither timing nor the answer tells which accounts exist. Neither the
header nor a secret is ever logged: refusals name the account a basic header claims, nothing more.
"""

from __future__ import annotations

import hmac
from typing import Any

from adapters.http.credentials import basic_user, check_basic
from adapters.rest.errors import Refusal


def bearer_user(header: str, users: dict[str, str]) -> str | None:
    """Return the account whose secret the ``Bearer`` header carries, or None."""
    token = header[7:].strip().encode()
    found = None
    for user, secret in users.items():
        if hmac.compare_digest(token, secret.encode()) and found is None:
            found = user
    return found


def authenticate(environ: dict[str, Any], users: dict[str, str], modes: list[str]) -> str:
    """Return the account the request's credentials prove; a 401 Refusal otherwise."""
    header = str(environ.get("HTTP_AUTHORIZATION") or "")
    scheme = header[:7].lower()
    if not header:
        raise Refusal(401, "401", "authentication required", audit="missing_credentials")
    if scheme.startswith("basic ") and "basic" in modes:
        user = check_basic(header, users)
        if user is not None:
            return user
        raise Refusal(401, "401", "authentication failed", audit="bad_credentials", user=basic_user(header))
    if scheme == "bearer " and "bearer" in modes:
        user = bearer_user(header, users)
        if user is not None:
            return user
        raise Refusal(401, "401", "authentication failed", audit="bad_credentials")
    raise Refusal(401, "401", f"accepted credentials: {', '.join(modes)}", audit="bad_credentials")


def challenge(modes: list[str]) -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` header of a 401 answer: one challenge per accepted mode."""
    return [("WWW-Authenticate", ", ".join(f'{m.capitalize()} realm="esb"' for m in modes))]
