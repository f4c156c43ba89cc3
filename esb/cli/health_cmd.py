"""``esb health``: a line per component; exit 0 healthy, 1 degraded, 2 down; ``--json`` for scripts."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from esb.cli.main import Obj
from esb.config.durations import parse_duration
from esb.exceptions import EsbError
from esb.ops.common import load, to_json
from esb.ops.health import EXIT, as_dict, overall, run_checks
from esb.ops.healthread import ColdJournal

if TYPE_CHECKING:
    from esb.journal import Journal


@click.command()
@click.option("--stuck-after", default="5m", show_default=True,
              help="A message without a final state for longer than this is stuck.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def health(obj: Obj, stuck_after: str, as_json: bool) -> None:
    """Broker and queue depths, journal, endpoints, scheduler, hub, suspended routes, dead letters, stuck."""
    project = load(obj.project, obj.env)
    journal = _open_journal(project.settings.journal.url)
    try:
        checks = run_checks(project, journal, timedelta(seconds=parse_duration(stuck_after)))
    finally:
        if journal is not None:
            journal.close()
    verdict = overall(checks)
    if as_json:
        click.echo(to_json(as_dict(checks)))
    else:
        width = max(len(c.component) for c in checks)
        for c in checks:
            click.echo(f"{c.status.upper():<9} {c.component:<{width}}  {c.detail}")
        click.echo(f"overall: {verdict}")
    raise click.exceptions.Exit(EXIT[verdict])


def _open_journal(url: str) -> ColdJournal | Journal | None:
    """The journal to check: read without SQLAlchemy at the head schema (SQLite or PostgreSQL), else opened
    (created and migrated) as a :class:`~esb.journal.Journal`; None when it cannot be opened."""
    cold = ColdJournal.open(url)
    if cold is not None:
        return cold
    from esb.journal import Journal  # SQLAlchemy: only when the cold path cannot read it

    journal = Journal(url, pool_size=2)
    try:
        journal.connect()
    except EsbError:
        return None
    return journal
