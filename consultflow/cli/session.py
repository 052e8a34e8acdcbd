"""`consultflow login`, `logout`, `whoami`: signing in to a consultflow server from the CLI."""

from __future__ import annotations

import sys
from typing import Any

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import local_time
from consultflow.cli.remote import Client, SignedIn, checked_server, forget_sign_in, load_sign_in, store_sign_in
from consultflow.services.inputs import parse_time


@click.command("login")
@click.argument("server")
@click.option("--name", help="Your name as registered (default: --as / CONSULTFLOW_ACTOR, or asked).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--totp", "ask_totp", is_flag=True, help="Ask for a code from your authenticator app too.")
@click.option(
    "--expires-days", type=click.IntRange(1, 366), default=30, show_default=True, help="How long the token lasts."
)
@click.option("--read-only", is_flag=True, help="A token that may only read (for auditors' scripts and dashboards).")
@pass_state
def login_command(
    state: CliState, server: str, name: str | None, password_stdin: bool, ask_totp: bool, expires_days: int,
    read_only: bool,
) -> None:  # fmt: skip
    """Sign in to the consultflow server at SERVER; later commands go through it.

    The password is asked for (never a command-line argument); the server answers with a personal
    access token, kept in a file only you may read. `--db` still works on a database directly.
    """
    url = checked_server(server)
    who = name or state.actor or click.prompt("Name (姓名)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password (密码)", hide_input=True)
    code = click.prompt("Authenticator code (动态验证码)") if ask_totp else None
    body: dict[str, Any] = {
        "name": who,
        "password": password,
        "totp_code": code,
        "token_name": f"cli on {_host()}",
        "scope": "read" if read_only else "write",
        "expires_days": expires_days,
    }
    issued = Client(url).json("POST", "/api/v1/auth/signin", body)
    path = store_sign_in(
        SignedIn(url, str(issued["token"]), who),
        {"token_id": issued["token_id"], "scope": issued["scope"], "expires_at": issued["expires_at"]},
    )
    expires = local_time(parse_time(str(issued["expires_at"]), state.settings.tz), state.settings.tz)
    state.emit(
        {
            "server": url,
            "name": who,
            "token_id": issued["token_id"],
            "scope": issued["scope"],
            "expires_at": issued["expires_at"],
            "credentials": str(path),
        },
        lambda: (
            f"signed in to {url} as {who} (token #{issued['token_id']}, {issued['scope']}, until {expires}); "
            f"kept in {path}"
        ),
    )


def _host() -> str:
    import socket  # noqa: PLC0415

    return socket.gethostname()[:60] or "this machine"


@click.command("logout")
@pass_state
def logout_command(state: CliState) -> None:
    """Revoke this machine's token on the server and forget it."""
    signed = load_sign_in()
    revoked = None
    if signed is not None:
        revoked = Client(signed.server, signed.token).json("POST", "/api/v1/auth/signout")
    had = forget_sign_in()
    state.emit(
        {"revoked": revoked.get("revoked") if isinstance(revoked, dict) else None, "forgotten": had},
        lambda: "signed out" if signed is not None or had else "not signed in",
    )


@click.command("whoami")
@json_flag
@pass_state
def whoami_command(state: CliState) -> None:
    """Who commands act as: the signed-in person on a server, or --as on a local database."""
    signed = None if state.settings.db_given else load_sign_in()
    if signed is None:
        state.emit(
            {"mode": "local", "database": state.settings.db_url, "actor": state.actor},
            lambda: f"local mode on {state.settings.db_url}; acting as {state.actor or '(nobody: give --as)'}",
        )
        return
    me = Client(signed.server, signed.token).json("GET", "/api/v1/auth/whoami")
    tz = state.settings.tz
    state.emit(
        {"mode": "server", "server": signed.server, **me},
        lambda: (
            f"{me['name']} ({', '.join(me['roles'])}) on {signed.server}; token #{me['token_id']} "
            f"({me['scope']}) until {local_time(parse_time(str(me['expires_at']), tz), tz)}"
        ),
    )
