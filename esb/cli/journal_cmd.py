"""``esb journal stats|prune``: what the journal holds, and pruning it by the retention policy."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.ops.common import load, open_journal, to_json
from esb.ops.retention import policy, render_prune, render_usage


@click.group()
def journal() -> None:
    """The message journal: its size, and retention (docs/journal.md "Retention")."""


@journal.command()
@click.option(
    "--exact",
    is_flag=True,
    help="Count every row (seconds to minutes on millions of messages) instead of estimating from samples.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(obj: Obj, exact: bool, as_json: bool) -> None:
    """Rows per table, bytes, bytes per message, oldest and newest message, outcomes (rows and outcomes
    of a big journal estimated from samples of its keys unless --exact)."""
    project = load(obj.project, obj.env)
    with open_journal(project) as handle:
        found = handle.usage(exact=exact)
    click.echo(to_json(found.as_dict()) if as_json else render_usage(found))


@journal.command()
@click.option("--delivered-days", type=float, default=None, help="Override journal.retention.delivered_days.")
@click.option("--filtered-days", type=float, default=None, help="Override journal.retention.filtered_days.")
@click.option("--no-archive", is_flag=True, help="Delete without archiving (the original bytes are lost).")
@click.option(
    "--vacuum",
    is_flag=True,
    help="SQLite: first switch auto_vacuum to incremental with one VACUUM (an older file).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def prune(
    obj: Obj,
    delivered_days: float | None,
    filtered_days: float | None,
    no_archive: bool,
    vacuum: bool,
    as_json: bool,
) -> None:
    """Archive, then delete, finished messages older than the retention days; dead letters stay."""
    project = load(obj.project, obj.env)
    chosen = policy(
        project.settings,
        delivered_days=delivered_days,
        filtered_days=filtered_days,
        archive=False if no_archive else None,
    )
    if chosen.delivered_days is None and chosen.filtered_days is None:
        click.echo(
            "nothing to prune: set journal.retention.delivered_days / filtered_days "
            "(or --delivered-days / --filtered-days)"
        )
        return
    with open_journal(project) as handle:
        if vacuum and handle.switch_on_incremental_vacuum():
            click.echo("auto_vacuum is incremental (VACUUM done)")
        result = handle.prune(chosen)
    click.echo(to_json(result.as_dict()) if as_json else render_prune(result))
