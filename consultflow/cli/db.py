"""`consultflow db`: create or upgrade the schema; the database's roles and the logins that hold them.

Local-only owner commands: they connect to the database directly, as the owner (the login that
runs migrations), and never go through a server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.services import schema


@click.group("db")
def db_group() -> None:
    """Create and upgrade the database schema."""


ROLE_CHOICES = ("server", "worker", "reader")  # consultflow.domain.identity.ROLE_KINDS


@db_group.command("upgrade")
@pass_state
def upgrade(state: CliState) -> None:
    """Create the schema, or bring it up to date (safe to run again)."""
    ctx = state.services(check_schema=False, create=True)
    before, after = schema.upgrade(ctx)
    was = "" if before.database == after.database else f" (was {before.database or 'empty'})"
    click.echo(f"database at revision {after.database}{was}")
    from consultflow.bootstrap import role_admin  # noqa: PLC0415 - loads the store only here

    risk = role_admin(ctx).createrole_risk()
    if risk is not None:
        click.echo(f"warning: {risk}", err=True)


@db_group.command("current")
@json_flag
@pass_state
def current(state: CliState) -> None:
    """Show the schema revision of the database and of this consultflow."""
    info = schema.status(state.services(check_schema=False))
    state.emit(info, lambda: f"database: {info.database or 'empty'}\nhead:     {info.head}")


@db_group.command("roles")
@click.option(
    "--sql", "as_sql", is_flag=True, help="Print the SQL that creates the three roles, for a superuser to run."
)
@json_flag
@pass_state
def roles(state: CliState, as_sql: bool) -> None:
    """List this database's (and schema's) three roles and the logins that hold them (PostgreSQL).

    With --sql (before the first `db upgrade`), print the statements that create them, so that a
    cluster administrator creates them and the owner needs no CREATEROLE.
    """
    from consultflow.bootstrap import role_admin  # noqa: PLC0415 - loads the store only for this command

    if as_sql:
        for statement in role_admin(state.services(check_schema=False)).creating_sql():
            click.echo(statement)
        return
    found = role_admin(state.services()).members()

    def text() -> str:
        lines = []
        for r in found:
            held = ", ".join(r.members) if r.members else "(no members)"
            lines.append(f"{r.kind:<7} {r.role}: {held}" if r.exists else f"{r.kind:<7} {r.role}: (missing)")
        return "\n".join(lines)

    state.emit(found, text)


@db_group.command("login")
@click.argument("name")
@click.option("--role", "kind", type=click.Choice(ROLE_CHOICES), help="The role the login gets.")
@click.option("--existing", is_flag=True, help="Give the role to a login that exists already (create none).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the new login's password from this file's first line (else from standard input, else one is generated).",
)
@click.option("--revoke", is_flag=True, help="Take this database's roles from the login (the login itself stays).")
@json_flag
@pass_state
def login(
    state: CliState, name: str, kind: str | None, existing: bool, password_file: Path | None, revoke: bool
) -> None:
    """Create a login holding one of this database's roles, give a role to an existing login, or take them away.

    The password of a new login comes from --password-file, or from standard input when it is not
    a terminal; with neither, one is generated and printed once. Only a SCRAM verifier of it is sent
    to the database.
    """
    from consultflow.bootstrap import role_admin  # noqa: PLC0415 - loads the store only for this command

    if revoke and (kind or existing or password_file):
        msg = "--revoke takes every one of this database's roles from the login; give it no --role, --existing or --password-file"
        raise click.UsageError(msg)
    if not revoke and kind is None:
        raise click.UsageError("give --role server|worker|reader (or --revoke)")
    if existing and password_file:
        raise click.UsageError("--existing gives a role to a login that has its password already; drop --password-file")
    admin = role_admin(state.services())
    if revoke:
        change = admin.revoke_login(name)
        state.emit(change, lambda: f"revoked {', '.join(change.roles)} from {name}; the login itself remains")
        return
    assert kind is not None
    password = None if existing else _password(password_file)
    change = admin.add_login(name, kind, existing=existing, password=password)
    role = change.roles[0]

    def text() -> str:
        if not change.created:
            return f"granted {role} to the existing login {name}"
        said = f"created login {name} with {role}"
        if change.password is not None:
            said += f"\npassword (shown once; keep it where only the {kind} can read it): {change.password}"
        return said

    state.emit(change, text)


def _password(path: Path | None) -> str | None:
    """The new login's password: the file's first line, else standard input's when piped, else None (generate one)."""
    if path is not None:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--password-file") from None
        first = raw.splitlines()[0] if raw.splitlines() else ""
        if not first:
            raise click.BadParameter(f"{path} holds no password on its first line", param_hint="--password-file")
        return first
    if sys.stdin is None or sys.stdin.isatty():
        return None
    piped = sys.stdin.readline().rstrip("\r\n")
    return piped or None


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(db_group)
