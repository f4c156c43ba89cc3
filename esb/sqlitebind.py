"""``None``, ``bytes`` and ``memoryview`` parameters bound by Python 3.11's sqlite3 without its adapter
search.

For every parameter that is not exactly ``int``, ``float``, ``str`` or ``bytearray``, CPython 3.11's
sqlite3 looks for an adapter (``pysqlite_microprotocols_adapt``): a registry look-up, then ``__adapt__``
on its protocol and ``__conform__`` on the value, both missing for ``None``, ``bytes`` and ``memoryview``
(SQLAlchemy's ``LargeBinary`` binds ``sqlite3.Binary``, a memoryview): ~3,300 instructions a parameter
(callgrind), ~31 parameters a message on the CRM-order route (the journal's rows, the queue transport's).
A registered adapter ends the search at the registry: :func:`register` registers, for exactly these
types, C callables that return the value (``{}.get`` answers None for None; ``bytes`` returns an exact
``bytes`` object unchanged; ``memoryview`` a view of the same buffer), so the same value is bound (NULL,
the same BLOB) and the search is skipped. The registry is the process's: every sqlite3 connection gains
the shortcut, with the same stored values (``tests/unit/test_sqlitebind.py`` compares them).
"""

from __future__ import annotations

import sqlite3

#: The adapters :func:`register` installs: each returns its argument (bound exactly as without it).
ADAPTERS: dict[type, object] = {type(None): {}.get, bytes: bytes, memoryview: memoryview}


def register() -> None:
    """Register the identity adapters, each unless its type already has one (idempotent; an
    application's own adapter is left alone)."""
    for kind, adapter in ADAPTERS.items():
        if (kind, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(kind, adapter)  # type: ignore[arg-type]  # C callables, typed loosely
