"""`consultflow db`: create or upgrade the schema."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.store import migrate


@click.group("db")
def db_group() -> None:
    """Create and upgrade the database schema."""


@db_group.command("upgrade")
@pass_state
def upgrade(state: CliState) -> None:
    """Create the schema, or bring it up to date (safe to run again)."""
    ctx = state.services(check_schema=False)
    before = migrate.current_revision(ctx.engine)
    migrate.upgrade(ctx.engine)
    after = migrate.current_revision(ctx.engine)
    click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db_group.command("current")
@json_flag
@pass_state
def current(state: CliState) -> None:
    """Show the schema revision of the database and of this consultflow."""
    ctx = state.services(check_schema=False)
    info = {
        "database": migrate.current_revision(ctx.engine),
        "head": migrate.head_revision(),
    }
    state.emit(
        info,
        lambda: f"database: {info['database'] or 'empty'}\nhead:     {info['head']}",
    )


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(db_group)
