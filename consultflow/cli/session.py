"""`consultflow login`, `logout`, `whoami`: signing in to a consultflow server from the CLI."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import os
import secrets
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from consultflow import extras
from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import local_time
from consultflow.cli.remote import (
    Client,
    RemoteRefusalError,
    SignedIn,
    checked_server,
    forget_sign_in,
    load_sign_in,
    store_sign_in,
)
from consultflow.domain.errors import ConsultflowError, PermissionDeniedError
from consultflow.services.inputs import parse_time

SSO_TIMEOUT_S = 300.0  # how long `login --sso` waits for the browser


@click.command("login")
@click.argument("server")
@click.option("--name", help="Your name as registered (default: --as / CONSULTFLOW_ACTOR, or asked).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--totp", "ask_totp", is_flag=True, help="Ask for a code from your authenticator app too.")
@click.option(
    "--expires-days", type=click.IntRange(1, 366), default=30, show_default=True, help="How long the token lasts."
)
@click.option("--read-only", is_flag=True, help="A token that may only read (for auditors' scripts and dashboards).")
@click.option(
    "--sso", is_flag=True,
    help="Sign in at your county's or province's identity provider in the browser (single sign-on), not with a "
    "password; the browser must run on this machine.",
)  # fmt: skip
@pass_state
def login_command(
    state: CliState, server: str, name: str | None, password_stdin: bool, ask_totp: bool, expires_days: int,
    read_only: bool, sso: bool,
) -> None:  # fmt: skip
    """Sign in to the consultflow server at SERVER; later commands go through it.

    The password is asked for (never a command-line argument); the server answers with a personal
    access token, kept in a file only you may read. With `--sso` you sign in in the browser at the
    identity provider the server trusts instead. `--db` still works on a database directly.
    """
    extras.require(extras.REMOTE)  # before a password is asked for: commands could not be sent without it
    url = checked_server(server)
    wanted: dict[str, Any] = {
        "token_name": f"cli on {_host()}",
        "scope": "read" if read_only else "write",
        "expires_days": expires_days,
    }
    if sso:
        if name or password_stdin or ask_totp:
            msg = "--sso takes who you are from the identity provider; leave out --name, --password-stdin and --totp"
            raise click.UsageError(msg)
        issued = single_sign_on(url, wanted)
        who = str(issued["owner"])
    else:
        who = name or state.actor or click.prompt("Name (姓名)")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("Password (密码)", hide_input=True)
        code = click.prompt("Authenticator code (动态验证码)") if ask_totp else None
        body: dict[str, Any] = {"name": who, "password": password, "totp_code": code, **wanted}
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


def single_sign_on(server: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """Sign in at the server's identity provider in the browser; the server's answer with the token.

    The CLI listens on 127.0.0.1 (a random port) and keeps a random verifier to itself; it sends
    only the verifier's SHA-256 with the browser. The browser goes through the server and the
    provider and comes back to the listener with a grant (or the refusal), which the CLI exchanges,
    with the verifier, for a personal access token: the token itself never passes through the
    browser (`consultflow.web.oidc` describes the whole hand-off). `wanted` holds the token's name,
    scope and lifetime.

    Raises:
        RemoteRefusalError: the server does not offer single sign-on, or refused the sign-in.
        PermissionDeniedError: no answer from the browser within 5 minutes.
    """
    client = Client(server)
    with client.request("GET", "/api/v1/auth/oidc") as response:
        offered = response.status == 200
    if not offered:
        msg = f"the server at {server} does not offer single sign-on; sign in with a password (leave out --sso)"
        raise RemoteRefusalError(msg, 1)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()

    def exchange(grant: str) -> dict[str, Any]:
        answer = client.json("POST", "/api/v1/auth/oidc/token", {"grant": grant, "verifier": verifier, **wanted})
        if not isinstance(answer, dict) or not isinstance(answer.get("owner"), str) or "token" not in answer:
            msg = f"the server at {server} answered the sign-in with something that is not consultflow's"
            raise RemoteRefusalError(msg, 1)
        return answer

    with _Listener(exchange) as listener:
        start = f"{server}/api/v1/auth/oidc/start?port={listener.server_address[1]}&challenge={challenge}"
        click.echo(
            "Sign in in your browser (在浏览器中登录); if it does not open, open this address on this machine:",
            err=True,
        )
        click.echo(f"  {start}", err=True)
        _open_browser(start)
        deadline = time.monotonic() + SSO_TIMEOUT_S
        while listener.outcome is None:
            left = deadline - time.monotonic()
            if left <= 0:
                minutes = max(1, round(SSO_TIMEOUT_S / 60))
                msg = f"sign-in not finished: no answer from the browser within {minutes} minutes; run 'login --sso' again"
                raise PermissionDeniedError(msg)
            listener.timeout = min(left, 1.0)
            listener.handle_request()
    if isinstance(listener.outcome, ConsultflowError):
        raise listener.outcome
    return listener.outcome


def _open_browser(url: str) -> None:
    """Open `url` in a graphical browser, if there is one (a text browser would take over the terminal)."""
    import webbrowser  # noqa: PLC0415 - only `login --sso` needs it

    desktop = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform in ("darwin", "win32") or desktop:
        with contextlib.suppress(webbrowser.Error):  # the address is printed: it can be opened by hand
            webbrowser.open(url, new=2)


class _Listener(HTTPServer):
    """The CLI's listener on 127.0.0.1 for the browser's return; it takes one /callback."""

    def __init__(self, exchange: Callable[[str], dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Returned)
        self.exchange = exchange
        self.outcome: dict[str, Any] | ConsultflowError | None = None


class _Returned(BaseHTTPRequestHandler):
    """The browser's return: a grant to exchange, or the server's refusal; shown in the browser too."""

    timeout = 30  # a connection that sends nothing does not hold the listener for long

    def do_GET(self) -> None:
        """Exchange the grant (or take the refusal) and tell the browser how it went."""
        listener = self.server
        assert isinstance(listener, _Listener)
        parts = urlsplit(self.path)
        if parts.path != "/callback" or listener.outcome is not None:
            self._page(404, "Not found.")
            return
        query = parse_qs(parts.query)
        try:
            if "grant" not in query:
                refusal = (query.get("error") or ["sign-in refused: the browser came back without an answer"])[0]
                raise RemoteRefusalError(" ".join(refusal.split())[:300], 1)
            issued = listener.exchange(query["grant"][0])
            listener.outcome = issued
            text = (
                f"Signed in to consultflow as {issued['owner']}; close this tab and go back to the terminal. 已登录。"
            )
        except ConsultflowError as exc:
            listener.outcome = exc
            text = str(exc)
        self._page(200, text)

    def _page(self, status: int, text: str) -> None:
        body = f'<!doctype html><meta charset="utf-8"><title>consultflow</title><p>{html.escape(text)}</p>\n'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Log nothing: the request line carries the grant."""


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
