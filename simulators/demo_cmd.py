"""``esb demo [--messages N]``: drive N messages through every route with the simulated systems."""

from __future__ import annotations

from typing import Any

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
@click.option(
    "--orders",
    default=100,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Orders through the order processes (0: none, the hub runs no process).",
)
@click.option("--rim-refusals", default=0.05, show_default=True, help="Share of orders RIM refuses.")
@click.option("--oss-timeouts", default=0.05, show_default=True, help="Share of orders OSS never answers.")
@click.option(
    "--cancellations",
    default=0.02,
    show_default=True,
    help="Share of orders the CRM cancels: in flight (cancelled) and after completion (refused), in turn.",
)
@click.option(
    "--faults",
    default=20,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="112 faults through the assurance process (10% rejected, 10% never answered, 5% completed late), "
    "and one 10000 complaint per ten faults (at least one).",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for every message to end.")
@click.pass_obj
def demo(
    obj: Obj,
    messages: int,
    orders: int,
    rim_refusals: float,
    oss_timeouts: float,
    cancellations: float,
    faults: int,
    timeout: float,
) -> None:
    """Run the hub with the simulated systems; print per-route counts and how each order scenario ended;
    exit 0 only if every message and every order ended as planned."""
    from simulators.demo import run_demo, state_lines
    from simulators.process_orders import Rates

    try:
        rates = Rates(rim_refusals, oss_timeouts, cancellations)
    except ValueError as exc:
        raise click.BadParameter(
            str(exc), param_hint="--rim-refusals/--oss-timeouts/--cancellations"
        ) from None

    def announce(project: Project) -> None:
        click.echo("demo state (a fresh folder, kept after the run):")
        for line in state_lines(project):
            click.echo(f"  {line}")
        click.echo("")

    configure_logging("critical", "console")
    result = run_demo(
        obj.project, obj.env, messages, timeout, announce, orders=orders, rates=rates, faults=faults
    )
    reports, seconds = result.routes, result.seconds
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
    if result.scenarios:
        click.echo("")
        _scenario_table(result.scenarios, "order scenario", "orders")
    _queries("status queries (CRM and 10000, by order number)", result.queries)
    if result.orders_skipped:
        click.echo(f"order processes: skipped: {result.orders_skipped}")
    if result.fault_scenarios:
        click.echo("")
        _scenario_table(result.fault_scenarios, "112 fault scenario", "faults")
    _queries("ticket status queries (10000, by ticket id)", result.ticket_queries)
    if result.faults_skipped:
        click.echo(f"assurance process: skipped: {result.faults_skipped}")
    for note in result.notes:
        click.echo(f"!! {note}")
    click.echo(
        f"{total} messages, {sum(s.orders for s in result.scenarios)} orders and "
        f"{sum(s.orders for s in result.fault_scenarios)} faults in {seconds:.1f} s; "
        "counts are actual/expected"
    )
    if not (ok and result.ok):
        raise click.exceptions.Exit(1)


def _queries(what: str, counts: tuple[int, int]) -> None:
    """The line saying how many of the demo's status queries were answered as expected (none: no line)."""
    if counts != (0, 0):
        click.echo(f"{what}: {counts[0]} answered as expected, {counts[1]} not")


def _scenario_table(scenarios: list[Any], title: str, unit: str) -> None:
    """One row per scenario: how many, how many ended as expected, their end states."""
    header = f"{title:<32} {unit:>6} {'as expected':>12}  {'ended':<36} result"
    click.echo(header)
    click.echo("-" * len(header))
    for s in scenarios:
        ends = ", ".join(f"{state} {n}" for state, n in sorted(s.ends.items()))
        click.echo(
            f"{s.scenario:<32} {s.orders:>6} {s.as_expected:>5}/{s.orders:<6}  {ends:<36} "
            f"{'OK' if s.ok else 'FAILED'}"
        )
        for line in s.mismatches[:20]:
            click.echo(f"    {line}")
