"""`consultflow account`: passwords, personal access tokens and two-step sign-in for the server's staff."""

from __future__ import annotations

import sys

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, table
from consultflow.services.commands.accounts import (
    DisableTotp,
    IssueToken,
    ListTokens,
    OfAccount,
    OfToken,
    SetPassword,
    TotpCode,
)
from consultflow.services.commands.core import Nothing


@click.group("account")
def account_group() -> None:
    """Staff accounts on the server: passwords, tokens, two-step sign-in."""


def _passwords(from_stdin: bool, own: bool) -> tuple[str | None, str]:
    """(the current password when changing your own, the new one): asked, or two lines of standard input."""
    if from_stdin:
        current = sys.stdin.readline().rstrip("\r\n") if own else None
        return current, sys.stdin.readline().rstrip("\r\n")
    current = str(click.prompt("Current password (当前密码)", hide_input=True)) if own else None
    return current, str(click.prompt("New password (新密码)", hide_input=True, confirmation_prompt=True))


def _current(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Current password (当前密码)", hide_input=True))


@account_group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@as_option
@pass_state
def account_set_password(state: CliState, name: str, password_stdin: bool) -> None:
    """Set NAME's password: your own (asked for the current one first), or anyone's as a coordinator.

    On the server's machine, with `--db` and no `--as`, the administrator sets the first
    coordinator's password (nobody can sign in before that); it is on the account log too. With
    --password-stdin, your own change reads two lines: the current password, then the new one.
    """
    me = state.signed_in_as if state.remote is not None else state.actor
    current, new = _passwords(password_stdin, own=me == name)
    done = state.call("account.set-password", SetPassword(name, new, current))
    state.emit(done, lambda: done.done)


@account_group.command("tokens")
@click.option("--everyone", is_flag=True, help="Everyone's tokens (coordinators).")
@json_flag
@pass_state
def account_tokens(state: CliState, everyone: bool) -> None:
    """Personal access tokens (never the token itself): name, scope, expiry, last use."""
    tokens = list(state.call("account.tokens", ListTokens(everyone)).tokens)
    tz = state.settings.tz
    state.emit(
        tokens,
        lambda: table(
            ["id", "owner", "name", "prefix", "scope", "status", "expires", "last used"],
            [
                (
                    t.id,
                    t.owner,
                    t.name,
                    t.prefix,
                    t.scope,
                    t.status,
                    local_time(t.expires_at, tz),
                    local_time(t.last_used_at, tz),
                )
                for t in tokens
            ],
        ),
    )


@account_group.command("issue-token")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
@click.option("--expires-days", type=click.IntRange(1, 366), default=90, show_default=True)
@as_option
@pass_state
def account_issue_token(state: CliState, name: str, scope: str, expires_days: int) -> None:
    """Issue another token called NAME for yourself (a script, a dashboard); it is shown once."""
    issued = state.call("account.issue-token", IssueToken(name, scope, expires_days))
    tz = state.settings.tz
    state.emit(
        {
            "token": issued.token,
            "token_id": issued.token_id,
            "name": issued.name,
            "scope": issued.scope,
            "expires_at": issued.expires_at,
        },
        lambda: (
            f"token #{issued.token_id} ({issued.scope}, until {local_time(issued.expires_at, tz)}):\n"
            f"{issued.token}\n(keep it like a password; it cannot be shown again)"
        ),
    )


@account_group.command("revoke-token")
@click.argument("token_id", type=ID)
@as_option
@pass_state
def account_revoke_token(state: CliState, token_id: int) -> None:
    """Revoke token TOKEN_ID: yours, or anyone's as a coordinator."""
    done = state.call("account.revoke-token", OfToken(token_id))
    state.emit(done, lambda: done.done)


@account_group.group("totp")
def totp_group() -> None:
    """Two-step sign-in with an authenticator app (TOTP)."""


@totp_group.command("enable")
@as_option
@pass_state
def totp_enable(state: CliState) -> None:
    """Start two-step sign-in: enter the secret in your app, then run 'account totp confirm CODE'."""
    setup = state.call("account.totp-enable", Nothing())
    state.emit(
        {"secret": setup.secret, "provisioning_uri": setup.provisioning_uri},
        lambda: (
            f"secret: {setup.secret}\nURI (for a QR code): {setup.provisioning_uri}\n"
            "then: consultflow account totp confirm CODE"
        ),
    )


@totp_group.command("confirm")
@click.argument("code")
@click.option("--password-stdin", is_flag=True, help="Read your current password from standard input (for scripts).")
@as_option
@pass_state
def totp_confirm(state: CliState, code: str, password_stdin: bool) -> None:
    """Confirm two-step sign-in with the first CODE your app shows (and your current password)."""
    done = state.call("account.totp-confirm", TotpCode(code, _current(password_stdin)))
    state.emit(done, lambda: done.done)


@totp_group.command("disable")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read your current password from standard input (for scripts).")
@as_option
@pass_state
def totp_disable(state: CliState, name: str, password_stdin: bool) -> None:
    """Turn two-step sign-in off for NAME (yourself, with your current password; or anyone as a coordinator)."""
    me = state.signed_in_as if state.remote is not None else state.actor
    current = _current(password_stdin) if me == name else None
    done = state.call("account.totp-disable", DisableTotp(name, current))
    state.emit(done, lambda: done.done)


@account_group.command("disable")
@click.argument("name")
@as_option
@pass_state
def account_disable(state: CliState, name: str) -> None:
    """Disable NAME's account: no sign-in, every token revoked (coordinators)."""
    done = state.call("account.disable", OfAccount(name))
    state.emit(done, lambda: done.done)


@account_group.command("enable")
@click.argument("name")
@as_option
@pass_state
def account_enable(state: CliState, name: str) -> None:
    """Enable NAME's account again (coordinators)."""
    done = state.call("account.enable", OfAccount(name))
    state.emit(done, lambda: done.done)
