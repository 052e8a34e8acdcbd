"""`consultflow db`: create or upgrade the schema."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.services import schema


@click.group("db")
def db_group() -> None:
    """Create and upgrade the database schema."""


@db_group.command("upgrade")
@pass_state
def upgrade(state: CliState) -> None:
    """Create the schema, or bring it up to date (safe to run again)."""
    before, after = schema.upgrade(state.services(check_schema=False, create=True))
    was = "" if before.database == after.database else f" (was {before.database or 'empty'})"
    click.echo(f"database at revision {after.database}{was}")


@db_group.command("current")
@json_flag
@pass_state
def current(state: CliState) -> None:
    """Show the schema revision of the database and of this consultflow."""
    info = schema.status(state.services(check_schema=False))
    state.emit(info, lambda: f"database: {info.database or 'empty'}\nhead:     {info.head}")


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(db_group)
