"""The console's users: names, roles and PBKDF2 password hashes, never plaintext passwords.

An entry is ``name:role:pbkdf2_sha256$iterations$salt$hash`` (salt and hash URL-safe base64); entries
are separated by newlines, spaces or commas so that one environment variable can hold several.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from esb.exceptions import ConfigError

VIEWER = "viewer"
OPERATOR = "operator"
ROLES = (VIEWER, OPERATOR)
SCHEME = "pbkdf2_sha256"
#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
ITERATIONS = 600_000
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class User:
    """One console user: a name, a role, and a password hash."""

    name: str
    role: str
    password_hash: str

    def may_act(self) -> bool:
        """True when the user may change things (retry, suspend, cancel), not only look."""
        return self.role == OPERATOR


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """Return ``pbkdf2_sha256$iterations$salt$hash`` for ``password`` (a fresh random salt by default)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the hash ``encoded`` (compared in constant time)."""
    scheme, iterations, salt, digest = encoded.split("$")
    if scheme != SCHEME:
        return False
    given = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(given, _unb64(digest))


def parse_users(text: str) -> dict[str, User]:
    """Read user entries; ConfigError (naming the entry, never a password) for any malformed one."""
    users: dict[str, User] = {}
    for number, entry in enumerate(re.split(r"[\s,]+", text.strip()), start=1):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        role, _, encoded = rest.partition(":")
        where = f"console.users entry {number} ({name or '?'})"
        if not _NAME.match(name):
            raise ConfigError(f"{where}: a user name is 1-64 letters, digits or _.@-")
        if role not in ROLES:
            raise ConfigError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        if not _is_hash(encoded):
            raise ConfigError(
                f"{where}: not a {SCHEME} password hash (plaintext passwords are refused; "
                "make an entry with: esb console user NAME --role ROLE)"
            )
        if name in users:
            raise ConfigError(f"{where}: the user is listed twice")
        users[name] = User(name, role, encoded)
    return users


def entry(name: str, role: str, password: str) -> str:
    """Return the user entry for ``name`` (what ``esb console user`` prints)."""
    found = parse_users(f"{name}:{role}:{hash_password(password)}")
    user = found[name]
    return f"{user.name}:{user.role}:{user.password_hash}"


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """Return the user when the name and password match, else None (same work either way)."""
    user = users.get(name)
    # an unknown name is checked against a hash nothing matches, so it costs as long as a wrong password
    dummy = f"{SCHEME}${ITERATIONS}${_b64(bytes(16))}${_b64(bytes(32))}"
    ok = verify_password(password, user.password_hash if user else dummy)
    return user if user is not None and ok else None


def _is_hash(encoded: str) -> bool:
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit() or int(parts[1]) < 1000:
        return False
    try:
        return len(_unb64(parts[2])) >= 8 and len(_unb64(parts[3])) == 32
    except ValueError:
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
