"""The statements ``esb health`` also runs without SQLAlchemy on a SQLite journal (:mod:`esb.ops.healthread`).

Each is the statement the SQLAlchemy path runs, taken from where that path builds it (the journal's
counts and stuck-message queries, route control's states, the process status counts), with its variable
parts as named parameters. ``python -m esb.journal.sqlgen`` compiles them for SQLite into
esb/journal/sqltext.py beside the other cold commands' statements (a unit test fails on drift).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from esb.journal.queries import (
    counts_statement,
    dead_lettered_since_statement,
    stuck_count_statement,
    stuck_statement,
)
from esb.journal.schema import UTCDateTime
from esb.ops.processes import status_statements
from esb.runtime.control import states_statement


@cache  # built once per process: the running hub's /health reads them on every probe
def health_statements() -> dict[str, sa.Select[Any]]:
    """By name: ``counts_since`` (events per route and state since ``since``), ``dead_lettered_since``
    (``dead_lettered`` events per route since ``since``, whole minutes from ``whole_from`` counted in
    ``route_minutes``), ``stuck`` (ingress messages in flight
    received before ``received_before`` with their latest state, the oldest ``STUCK_LIMIT``),
    ``stuck_count`` (how many), ``route_states`` (the route
    control table), ``process_counts`` and ``process_held`` (at most ``sample``)."""
    counted, held = status_statements()
    return {
        "counts_since": counts_statement(since=sa.bindparam("since", type_=UTCDateTime())),
        "dead_lettered_since": dead_lettered_since_statement(
            sa.bindparam("since", type_=UTCDateTime()), sa.bindparam("whole_from", type_=UTCDateTime())
        ),
        "stuck": stuck_statement(sa.bindparam("received_before", type_=UTCDateTime())),
        "stuck_count": stuck_count_statement(sa.bindparam("received_before", type_=UTCDateTime())),
        "route_states": states_statement(),
        "process_counts": counted,
        "process_held": held,
    }
