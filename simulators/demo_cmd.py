"""``esb demo [--messages N]``: drive N messages through every route with the simulated systems."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.logging import configure_logging
from esb.project import Project


@click.command()
@click.option(
    "--messages",
    "-n",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Messages to send through each route.",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for every message to end.")
@click.pass_obj
def demo(obj: Obj, messages: int, timeout: float) -> None:
    """Run the hub with the simulated systems; print per-route counts; exit 0 only if all ended as planned."""
    from simulators.demo import run_demo, state_lines

    def announce(project: Project) -> None:
        click.echo("demo state (a fresh folder, kept after the run):")
        for line in state_lines(project):
            click.echo(f"  {line}")
        click.echo("")

    configure_logging("critical", "console")
    reports, seconds = run_demo(obj.project, obj.env, messages, timeout, announce)
    header = (
        f"{'route':<32} {'sent':>6} {'delivered':>10} {'filtered':>9} {'dead-letter':>11} {'pending':>8} "
        f"{'peer got':>9}  result"
    )
    click.echo(header)
    click.echo("-" * len(header))
    ok = True
    for r in reports:
        if r.skipped:
            click.echo(f"{r.route_id:<32} {'':>6} skipped: {r.skipped}")
            continue
        a, e = r.actual, r.expected
        click.echo(
            f"{r.route_id:<32} {r.sent:>6} {a['delivered']:>4}/{e['delivered']:<5} "
            f"{a['filtered']:>3}/{e['filtered']:<5}"
            f" {a['dead_lettered']:>4}/{e['dead_lettered']:<6} {a['pending']:>8} {r.received_by_peer:>9}  "
            f"{'OK' if r.ok else 'FAILED'}"
        )
        for line in r.mismatches[:20]:
            click.echo(f"    {line}")
        ok = ok and r.ok
    total = sum(r.sent for r in reports)
    click.echo(
        f"{total} messages in {seconds:.1f} s ({total / seconds:.0f} msg/s); counts are actual/expected"
    )
    if not ok:
        raise click.exceptions.Exit(1)
