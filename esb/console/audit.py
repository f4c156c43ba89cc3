"""The console's audit trail: every operator action, with who, when, what and how it ended.

A small table beside the journal's tables (``esb_console_audit``), created on first use like the route
control table (``esb.runtime.control``): it is operational history kept in the journal's database, not
message history, so it stays out of the journal's Alembic migrations and their schema comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal.engine import DatabaseErrors, open_with_tables, writer
from esb.journal.schema import JSONType, UTCDateTime
from esb.message import utcnow

metadata = sa.MetaData()

audit_log = sa.Table(
    "esb_console_audit",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target", sa.String(), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("detail", JSONType, nullable=True),
    sa.Index("ix_esb_console_audit_at", "at"),
)


@dataclass(frozen=True)
class AuditEntry:
    """One audited action."""

    id: int
    at: datetime
    user: str
    role: str
    client: str | None
    action: str
    target: str
    outcome: str
    detail: dict[str, Any] | None


class AuditLog:
    """Writes and pages the audit table (one small engine of its own)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._errors = DatabaseErrors(url)

    def connect(self) -> None:
        """Open the database and create the table if it is missing (several processes may race)."""
        if self._engine is not None:
            return
        with self._errors("audit connect"):
            self._engine = open_with_tables(self.url, *metadata.sorted_tables, pool_size=2)

    def close(self) -> None:
        """Release the connections; harmless twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def _require(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("AuditLog.connect() has not been called")
        return self._engine

    def record(
        self,
        *,
        user: str,
        role: str,
        client: str | None,
        action: str,
        target: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Write one action (a TransportError when the database cannot be written)."""
        row = {"at": utcnow(), "user": user, "role": role, "client": client, "action": action,
               "target": target, "outcome": outcome, "detail": detail}
        with self._errors("audit write"), writer(self._require()).begin() as conn:
            conn.execute(audit_log.insert().values(**row))

    def page(self, limit: int, offset: int = 0, user: str | None = None) -> list[AuditEntry]:
        """Return one page of actions, newest first (only ``user``'s when given)."""
        stmt = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
        if user:
            stmt = stmt.where(audit_log.c.user == user)
        with self._errors("audit read"), self._require().connect() as conn:
            return [AuditEntry(**row) for row in conn.execute(stmt).mappings()]
