"""``esb stats``: throughput, latency percentiles and error rates per route over a time window."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.ops.common import load, open_journal, parse_when, to_json
from esb.ops.stats import as_dicts, compute, render, window
from esb.ops.stats_exact import compute_exact


@click.command()
@click.option("--since", default="1h", show_default=True, help="Window start: 15m, 2h ago or an ISO time.")
@click.option("--until", default=None, help="Window end (default: now).")
@click.option("--route", default=None, help="One route only.")
@click.option(
    "--exact",
    is_flag=True,
    help="Read every event of the window: exact percentiles and window (slower: ~8 µs an event).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(obj: Obj, since: str, until: str | None, route: str | None, exact: bool, as_json: bool) -> None:
    """Per route: messages in, delivered, filtered, dead-lettered, retries, msg/s, error rate, latency.

    Read from the per-minute figures: the window starts at its first minute's start, and latencies are
    upper bounds of 19 % buckets ("<=" in the table); ``--exact`` reads the events instead.
    """
    project = load(obj.project, obj.env)
    if route is not None:
        project.route(route)
    start, end = window(parse_when(since), parse_when(until))
    with open_journal(project):  # creates and migrates a journal that does not exist yet
        results = (compute_exact if exact else compute)(project.settings.journal.url, start, end, route)
    if as_json:
        report = {"since": start.isoformat(), "until": end.isoformat(), "routes": as_dicts(results)}
        click.echo(to_json(report))
    else:
        click.echo(render(results, start, end))
