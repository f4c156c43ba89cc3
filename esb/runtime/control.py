"""Suspending and resuming routes across processes: a small table in the journal's database.

``esb route suspend ID`` writes a row; every running hub reads the table every
``runtime.control_interval`` and sets its workers' ``suspended`` event, so the route stops reading its
source (its messages stay queued, nothing is lost) until ``esb route resume ID``.

The table is the hub's operational state, not message history, so it lives beside the journal's tables
rather than in its Alembic migrations (whose schema is compared with ``esb.journal.schema``): it is
created here with ``CREATE TABLE IF NOT EXISTS`` semantics, under the writer lock, on first use.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal.engine import DatabaseErrors, open_with_tables, writer
from esb.journal.schema import UTCDateTime
from esb.message import utcnow

metadata = sa.MetaData()

route_control = sa.Table(
    "esb_route_control",
    metadata,
    sa.Column("route", sa.String(), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("changed_by", sa.String(), nullable=True),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
)


def states_statement() -> sa.Select[Any]:
    """Every row of the route control table (:meth:`RouteControl.states`)."""
    return sa.select(route_control)


SUSPENDED = "suspended"
RUNNING = "running"


@dataclass(frozen=True)
class RouteState:
    """What an operator asked of one route, when, who, and why."""

    route: str
    state: str
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None


class RouteControl:
    """Reads and writes the route control table (one small engine of its own)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._errors = DatabaseErrors(url)

    def connect(self) -> None:
        """Open the database and create the table if it is missing (several processes may race)."""
        if self._engine is not None:
            return
        with self._errors("control connect"):
            self._engine = open_with_tables(self.url, route_control)

    def close(self) -> None:
        """Release the connections; harmless twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> RouteControl:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("RouteControl.connect() has not been called")
        return self._engine

    def set_state(self, route: str, state: str, reason: str | None = None) -> None:
        """Record that ``route`` should be ``suspended`` or ``running``."""
        if state not in (SUSPENDED, RUNNING):
            raise ValueError(f"unknown route state {state!r}")
        row = {"route": route, "state": state, "reason": reason, "changed_by": who(), "changed_at": utcnow()}
        with self._errors("control write"), writer(self._require()).begin() as conn:
            updated = conn.execute(
                route_control.update().where(route_control.c.route == route).values(**row)
            ).rowcount
            if not updated:
                conn.execute(route_control.insert().values(**row))

    def states(self) -> dict[str, RouteState]:
        """Return every route an operator has suspended or resumed, by id."""
        with self._errors("control read"), self._require().connect() as conn:
            rows = conn.execute(states_statement()).mappings().all()
        return {row["route"]: RouteState(**row) for row in rows}

    def suspended(self) -> set[str]:
        """Return the ids of the routes that are suspended now."""
        return {name for name, state in self.states().items() if state.state == SUSPENDED}


#: The operator acting in this context (the console's logged-in user); None: the OS account running us.
_ACTING: ContextVar[str | None] = ContextVar("esb_acting_operator", default=None)


@contextlib.contextmanager
def acting_as(operator: str) -> Iterator[None]:
    """Make :func:`who` answer ``operator`` inside the block (the console acting for a logged-in user)."""
    token = _ACTING.set(operator)
    try:
        yield
    finally:
        _ACTING.reset(token)


def who() -> str:
    """Return the operator's name for the journal: the one set by :func:`acting_as`, else the OS user
    (``unknown`` in a container without one)."""
    acting = _ACTING.get()
    if acting:
        return acting
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
