"""``esb console user``: make a console user entry (name, role, PBKDF2 hash) for ESB_CONSOLE__USERS."""

from __future__ import annotations

import click

from esb.console.users import ROLES, entry


@click.group()
def console() -> None:
    """The operators' web console served by the hub (docs/operations.md, "The console")."""


@console.command()
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="viewer looks; operator also retries, suspends, cancels.")
@click.password_option(help="The password (asked twice when not given).")
def user(name: str, role: str, password: str) -> None:
    """Print NAME's entry for console.users (ESB_CONSOLE__USERS or the secret file console__users).

    Only the hash is printed: the password is never stored. Put one entry per line.
    """
    click.echo(entry(name, role, password))
