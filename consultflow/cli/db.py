"""`consultflow db`: create or upgrade the schema; the database's roles and the logins that hold them.

Local-only owner commands: they connect to the database directly, as the owner (the login that
runs migrations), and never go through a server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.domain.heads import SignedHead, parse_lines
from consultflow.services import schema

if TYPE_CHECKING:
    from consultflow.services.backup import Verified


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


BACKUP_FAILED_EXIT_CODE = 4  # a backup or restore was written, and it does not verify


def _published(heads_from: str | None, public_key: str | None) -> tuple[SignedHead, ...]:
    from consultflow.cli.audit import read_published  # noqa: PLC0415

    if heads_from is None:
        if public_key is not None:
            raise click.UsageError("--public-key pins the key of --heads: give --heads too")
        return ()
    return tuple(parse_lines(read_published(heads_from), heads_from, public_key))


def _verified_lines(state: CliState, verified: Verified) -> list[str]:
    """One line per consultation and one for the account log, as `audit verify` says them."""
    from consultflow.cli.audit import account_log_line, chain_lines  # noqa: PLC0415 - loads with its command

    lines = chain_lines(verified.reports, state.settings.tz)
    if verified.account_log is not None:
        lines.append(account_log_line(verified.account_log))
    if verified.problem is not None:
        lines.append(f"NOT VERIFIED: {verified.problem}")
    if verified.skipped is not None:
        lines.append(f"not verified here: {verified.skipped}")
    return lines


def _summary(verified: Verified) -> str:
    chains = len(verified.reports)
    if verified.skipped is not None:
        return "not verified"
    if verified.intact:
        return f"verified: {chains} consultation chain(s) and the account log intact"
    bad = sum(not r.intact for r in verified.reports)
    if verified.account_log is not None and not verified.account_log.intact:
        bad += 1
    return f"VERIFICATION FAILED ({bad} chain(s) do not hold)" if bad else "VERIFICATION FAILED"


_HEADS_HELP = "Signed heads published earlier (file or URL, as for audit verify --heads): the backup must hold each."


@db_group.command("backup")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--heads", "heads_from", metavar="FILE|URL", help=_HEADS_HELP)
@click.option("--public-key", help="The key the heads must be signed with (base64, as the portal shows it).")
@pass_state
def backup(state: CliState, path: Path, force: bool, heads_from: str | None, public_key: str | None) -> None:
    """Back the database up to FILE (mode 600) while it runs, then verify exactly what was written.

    SQLite: the online backup API (every committed transaction, the WAL's too). PostgreSQL:
    pg_dump --format=custom of the schema, in a snapshot that the verification then reads. Exit 4
    when the backup does not verify: it is kept as FILE.failed.
    """
    from consultflow.bootstrap import backups  # noqa: PLC0415 - loads the store only here
    from consultflow.services import backup as backup_service  # noqa: PLC0415

    published = _published(heads_from, public_key)
    port = backups(state.settings)
    report = backup_service.backup(state.services(check_schema=False), port, path, force=force, published=published)
    for line in _verified_lines(state, report.verified):
        click.echo(line)
    revision = report.revision or "empty"
    if report.verified.intact:
        click.echo(
            f"backup written to {report.path} ({report.backend}, schema {revision}, mode 600); {_summary(report.verified)}"
        )
        return
    click.echo(
        f"backup kept as {report.path} ({report.backend}, schema {revision}); {_summary(report.verified)}: "
        "do not rely on it",
        err=True,
    )
    raise SystemExit(BACKUP_FAILED_EXIT_CODE)


@db_group.command("restore")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore into a database that is not empty, replacing what it holds.")
@click.option(
    "--grants-only",
    is_flag=True,
    help="PostgreSQL: only give this database's roles the backup's grants (after db roles).",
)
@click.option("--heads", "heads_from", metavar="FILE|URL", help=_HEADS_HELP)
@click.option("--public-key", help="The key the heads must be signed with (base64, as the portal shows it).")
@pass_state
def restore(
    state: CliState, path: Path, force: bool, grants_only: bool, heads_from: str | None, public_key: str | None
) -> None:
    """Restore FILE into the database (--db), which must be empty; upgrade it, then verify everything.

    The backup is read whole first: a damaged, truncated or other backend's file is refused with
    nothing written. Exit 4 when the restored database does not verify.
    """
    from consultflow.bootstrap import backups, restore_grants  # noqa: PLC0415 - loads the store only here
    from consultflow.services import backup as backup_service  # noqa: PLC0415

    if grants_only:
        if force or heads_from or public_key:
            raise click.UsageError("--grants-only only gives grants: drop --force, --heads and --public-key")
        click.echo(restore_grants(state.settings, path))
        return
    published = _published(heads_from, public_key)
    port = backups(state.settings)
    port.inspect(path)  # before the database is opened (a SQLite file would be created)
    ctx = state.services(check_schema=False, create=True)
    report = backup_service.restore(ctx, port, path, force=force, published=published)
    said = f"restored {path} ({report.backend}, schema {report.revision})"
    if report.upgraded_to is not None:
        said += f", upgraded to {report.upgraded_to}"
    click.echo(said)
    if report.grants is not None:
        click.echo(f"grants: {report.grants}")
    for line in _verified_lines(state, report.verified):
        click.echo(line)
    if report.verified.intact:
        click.echo(f"restore {_summary(report.verified)}")
        return
    click.echo(f"restore {_summary(report.verified)}: the restored data is not what was recorded", err=True)
    raise SystemExit(BACKUP_FAILED_EXIT_CODE)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(db_group)
