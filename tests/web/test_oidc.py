"""Single sign-on with OpenID Connect: a fake provider on loopback, the server in-process and as a process, the CLI.

The provider is real HTTP on 127.0.0.1: a discovery document, its JWKS (an RSA key made with
joserfc), an authorize endpoint that signs the person in at once and sends the browser back with a
code, and a token endpoint that checks the client secret and PKCE and answers with a signed ID
token, which a test may spoil (audience, nonce, expiry, signature, the person it names).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from consultflow.cli import session
from consultflow.cli.main import main
from consultflow.config import Environment
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ConfigurationError, PermissionDeniedError
from consultflow.services import accounts, people
from consultflow.services.context import ServiceContext
from consultflow.web.app import create_app
from consultflow.web.common import WebSettings
from consultflow.web.oidc import NEEDS_EXTRA, OidcSettings
from tests.conftest import START, WORKFLOWS, make_context
from tests.helpers import COORD, PLANNER
from tests.web.portal import SECRET, _free_port, client

CLIENT_ID, CLIENT_SECRET = "consultflow-county", "county-client-secret-1234"
LISTENER = 43210  # the CLI's loopback port as the server is told it (nothing listens there in-process)
VERIFIER = "the-cli-keeps-this-verifier-to-itself-0123456789"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
PUBLIC = "http://testserver"


@pytest.fixture(name="keys", scope="module")
def _keys() -> tuple[RSAKey, RSAKey]:
    """The provider's signing key, and an impostor's with the same key id."""
    return (
        RSAKey.generate_key(2048, parameters={"kid": "county-1", "use": "sig"}),
        RSAKey.generate_key(2048, parameters={"kid": "county-1", "use": "sig"}),
    )


@dataclass
class Provider:
    """A fake OpenID provider: what it will vouch for next, and what it was asked."""

    key: RSAKey
    impostor: RSAKey
    now: Callable[[], datetime]
    issuer: str = ""
    person: str = COORD  # the preferred_username of the next ID token
    spoil: dict[str, Any] = field(default_factory=dict)  # claims of the next ID token to replace
    wrong_key: bool = False  # sign the next ID token with the impostor's key
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    jwks_reads: int = 0

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Sign the person in at once: where the browser goes back to, with a code."""
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert "openid" in query["scope"].split() and query["code_challenge_method"] == "S256"
        code = f"code-{len(self.codes) + 1}"
        self.codes[code] = {k: query[k] for k in ("nonce", "code_challenge", "redirect_uri")}
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """Exchange a code (once) for an ID token, after the client secret and PKCE check out."""
        self.token_requests.append(form)
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        asked = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if asked is None or asked["code_challenge"] != challenge or asked["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        moment = int(self.now().timestamp())
        claims = {
            "iss": self.issuer,
            "sub": f"county-{hashlib.sha256(self.person.encode()).hexdigest()[:12]}",
            "aud": CLIENT_ID,
            "iat": moment,
            "exp": moment + 300,
            "nonce": asked["nonce"],
            "preferred_username": self.person,
            **self.spoil,
        }
        signing = self.impostor if self.wrong_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, signing)
        return 200, {"access_token": "provider-access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}


@contextmanager
def serving(provider: Provider) -> Iterator[Provider]:
    """The provider on a free loopback port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.metadata())
            elif parts.path == "/jwks":
                provider.jwks_reads += 1
                self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif parts.path == "/authorize":
                back = provider.authorize({k: v[0] for k, v in parse_qs(parts.query).items()})
                self.send_response(302)
                self.send_header("Location", back)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._json(*provider.token(form, self.headers.get("Authorization", "")))

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for serve_forever to poll again: every half second by default, 0.05 s here
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(name="provider")
def _provider(keys: tuple[RSAKey, RSAKey]) -> Iterator[Provider]:
    """The provider, its clock at the tests' start."""
    with serving(Provider(*keys, now=lambda: START)) as provider:
        yield provider


def sso_client(ctx: ServiceContext, provider: Provider) -> TestClient:
    """The server in-process, with single sign-on at `provider` (reached as http://testserver)."""
    settings = OidcSettings(provider.issuer, CLIENT_ID, PUBLIC, client_secret=CLIENT_SECRET)
    app = create_app(replace(ctx, acting_proven=True), WebSettings(SECRET, oidc=settings))
    return TestClient(app, follow_redirects=False, raise_server_exceptions=False)


def at_provider(url: str) -> str:
    """The browser at the provider: where it is sent back to (the person is signed in at once)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert answer.status == 302
    return str(answer.getheader("Location"))


def round_trip(web: TestClient, *, back: Callable[[str], str] = lambda url: url, **params: Any) -> dict[str, str]:
    """Start in the browser, sign in at the provider, come back: what the CLI's listener is sent (grant or error)."""
    start = web.get("/api/v1/auth/oidc/start", params={"port": LISTENER, "challenge": CHALLENGE, **params})
    assert start.status_code == 303, start.text
    answer = web.get(back(at_provider(start.headers["location"])))
    assert answer.status_code == 303, answer.text
    target = urlsplit(answer.headers["location"])
    assert (target.scheme, target.hostname, target.port, target.path) == ("http", "127.0.0.1", LISTENER, "/callback")
    return {k: v[0] for k, v in parse_qs(target.query).items()}


def exchange(web: TestClient, grant: str, verifier: str = VERIFIER, **extra: Any) -> Any:
    """The CLI's exchange of a grant for a token."""
    return web.post("/api/v1/auth/oidc/token", json={"grant": grant, "verifier": verifier, **extra})


def events(ctx: ServiceContext, kind: str) -> list[accounts.AccountEventView]:
    """The account log's events of one kind, newest first."""
    return accounts.account_events(replace(ctx, acting_proven=True), acting=COORD, kind=kind)


def staff(ctx: ServiceContext) -> None:
    """A coordinator and a planner, neither with a password: single sign-on needs none."""
    people.add_actor(ctx, acting=None, name=COORD, roles=["coordinator"])
    people.add_actor(ctx, acting=COORD, name=PLANNER, roles=["planner"])


def test_the_right_person_gets_a_working_token_and_a_signin_on_record(ctx: ServiceContext, provider: Provider) -> None:
    """PKCE, state and nonce go to the provider; the token it leads to works, and the sign-in is on record via oidc."""
    staff(ctx)
    web = sso_client(ctx, provider)
    back = round_trip(web)
    assert set(back) == {"grant"} and "cft_" not in back["grant"]
    [asked] = provider.token_requests
    assert asked["grant_type"] == "authorization_code" and len(asked["code_verifier"]) >= 43
    assert asked["redirect_uri"] == f"{PUBLIC}/api/v1/auth/oidc/callback" and "client_secret" not in asked
    answer = exchange(web, back["grant"], expires_days=7, token_name="cli on laptop")
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert (token["owner"], token["scope"], token["name"]) == (COORD, "write", "cli on laptop")
    bearer = {"Authorization": f"Bearer {token['token']}"}
    me = web.get("/api/v1/auth/whoami", headers=bearer).json()
    assert (me["name"], me["roles"], me["token_id"]) == (COORD, ["coordinator"], token["token_id"])
    assert web.post("/api/v1/commands/consultation.list", json={}, headers=bearer).status_code == 200
    [signin] = events(ctx, "signin")
    assert (signin.actor, signin.subject) == (COORD, COORD)
    assert signin.payload["via"] == "oidc" and signin.payload["issuer"] == provider.issuer
    assert signin.payload["oidc_subject"].startswith("county-") and signin.payload["token_id"] == token["token_id"]
    assert token["token"] not in json.dumps(signin.payload) and events(ctx, "signin_failed") == []


@pytest.mark.parametrize(
    ("spoil", "wrong_key", "check"),
    [
        ({"aud": "another-client"}, False, "audience"),
        ({"nonce": "not-the-nonce-sent"}, False, "nonce"),
        ({"exp": int((START - timedelta(minutes=10)).timestamp())}, False, "expiry"),
        ({}, True, "signature"),
        ({"iss": "https://impostor.example"}, False, "issuer"),
        ({"preferred_username": None}, False, "claim"),
    ],
)
def test_an_id_token_that_does_not_check_out_is_refused_in_one_line(
    ctx: ServiceContext, provider: Provider, spoil: dict[str, Any], wrong_key: bool, check: str
) -> None:
    """A wrong audience, nonce or issuer, an expired or forged ID token: the CLI is told in one line, and it is on record."""
    staff(ctx)
    provider.spoil, provider.wrong_key = spoil, wrong_key
    back = round_trip(sso_client(ctx, provider))
    assert set(back) == {"error"} and "\n" not in back["error"]
    if check == "claim":
        assert (
            back["error"]
            == "sign-in refused: the identity provider's answer has no preferred_username to name a consultflow person"
        )
    else:
        assert back["error"] == f"sign-in refused: the identity provider's ID token failed the {check} check"
    [failed] = events(ctx, "signin_failed")
    assert (failed.actor, failed.subject) == (None, None)
    assert {k: failed.payload[k] for k in ("via", "issuer", "reason", "check")} == {
        "via": "oidc", "issuer": provider.issuer, "reason": "bad_id_token", "check": check,
    }  # fmt: skip
    assert events(ctx, "signin") == []


@pytest.mark.parametrize("who", ["unknown", "disabled"])
def test_an_unknown_or_disabled_person_is_refused_and_no_account_is_made(
    ctx: ServiceContext, provider: Provider, who: str
) -> None:
    """Single sign-on never creates an account nor opens a disabled one: one line, and a signin_failed saying why."""
    staff(ctx)
    provider.person = "何未登记" if who == "unknown" else PLANNER
    if who == "disabled":
        accounts.disable_account(ctx, acting=COORD, name=PLANNER)
    web = sso_client(ctx, provider)
    refused = exchange(web, round_trip(web)["grant"])
    assert refused.status_code == 403
    assert refused.json() == {"error": accounts.EXTERNAL_REFUSED, "exit_code": 1, "kind": "permission_denied"}
    [failed] = events(ctx, "signin_failed")
    assert failed.subject == (None if who == "unknown" else PLANNER)
    assert (failed.payload["reason"], failed.payload["via"]) == (
        "unknown_account" if who == "unknown" else "disabled",
        "oidc",
    )
    assert [a.name for a in people.list_actors(ctx)] == [COORD, PLANNER]
    assert events(ctx, "signin") == []


def test_a_tampered_state_is_refused_before_the_provider_is_asked(ctx: ServiceContext, provider: Provider) -> None:
    """A state that is not the one sent: one line to the CLI, on record, and the code is never exchanged."""
    staff(ctx)
    back = round_trip(sso_client(ctx, provider), back=lambda url: url.replace("state=", "state=x"))
    assert back == {
        "error": "sign-in refused: the answer does not belong to this sign-in (state or code missing or wrong)"
    }
    assert provider.token_requests == []
    [failed] = events(ctx, "signin_failed")
    assert (failed.subject, failed.payload["reason"], failed.payload["check"]) == (None, "bad_state", "state")


def test_an_answer_in_another_browser_is_refused_in_one_line(ctx: ServiceContext, provider: Provider) -> None:
    """The provider's answer in a browser without the sign-in's cookie (or after 10 minutes): refused, on record."""
    staff(ctx)
    started = sso_client(ctx, provider)
    start = started.get("/api/v1/auth/oidc/start", params={"port": LISTENER, "challenge": CHALLENGE})
    cookie = start.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "Path=/api/v1/auth/oidc" in cookie
    elsewhere = sso_client(ctx, provider).get(at_provider(start.headers["location"]))
    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"].startswith("sign-in refused: this sign-in did not start in this browser")
    assert "\n" not in elsewhere.json()["error"] and provider.token_requests == []
    [failed] = events(ctx, "signin_failed")
    assert (failed.payload["reason"], failed.payload["check"]) == ("bad_state", "cookie")


def test_a_grant_needs_the_clis_verifier_and_expires(
    ctx: ServiceContext, clock: FixedClock, provider: Provider
) -> None:
    """Without the verifier, forged or two minutes late, a grant is refused in one line and no token is issued."""
    staff(ctx)
    web = sso_client(ctx, provider)
    grant = round_trip(web)["grant"]
    wrong = exchange(web, grant, verifier="someone-else-s-verifier-" + "x" * 30)
    forged = exchange(web, grant[:-6] + ("AAAAAA" if not grant.endswith("AAAAAA") else "BBBBBB"))
    clock.advance(timedelta(minutes=3))
    late = exchange(web, grant)
    for refused in (wrong, forged, late):
        assert refused.status_code == 403
        assert (
            refused.json()["error"]
            == "sign-in refused: the single sign-on answer is not valid (forged, expired, or from another sign-in)"
        )
    assert [(e.subject, e.payload["reason"], e.payload["check"]) for e in events(ctx, "signin_failed")] == [
        (None, "bad_grant", "grant"),
        (None, "bad_grant", "grant"),
        (COORD, "bad_grant", "verifier"),
    ]
    assert events(ctx, "signin") == []


def test_a_name_locked_by_failed_passwords_is_locked_for_single_sign_on_too(
    ctx: ServiceContext, provider: Provider
) -> None:
    """The sign-in limits are shared: five wrong passwords lock the name for single sign-on as well (HTTP 429)."""
    staff(ctx)
    accounts.set_password(ctx, acting=None, name=COORD, password="correct horse battery")
    for _ in range(5):
        with pytest.raises(PermissionDeniedError):
            accounts.sign_in(
                ctx, name=COORD, password="wrong horse battery", totp_code=None, client="elsewhere", token_name="cli"
            )
    web = sso_client(ctx, provider)
    locked = exchange(web, round_trip(web)["grant"])
    assert locked.status_code == 429 and locked.headers["retry-after"]
    assert locked.json()["error"].startswith("too many failed sign-ins; try again after ")
    newest = events(ctx, "signin_failed")[0]
    assert (newest.subject, newest.payload["reason"], newest.payload["via"]) == (COORD, "locked", "oidc")


def test_keys_the_provider_rotates_are_read_again(ctx: ServiceContext, provider: Provider) -> None:
    """A provider that signs with a new key after the server read its JWKS: the keys are read again, and it works."""
    staff(ctx)
    web = sso_client(ctx, provider)
    assert exchange(web, round_trip(web)["grant"]).status_code == 200
    assert exchange(web, round_trip(web)["grant"]).status_code == 200
    assert provider.jwks_reads == 1  # kept while the provider signs with the same key
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "county-2", "use": "sig"})
    assert exchange(web, round_trip(web)["grant"]).status_code == 200
    assert provider.jwks_reads == 2 and len(events(ctx, "signin")) == 3


def test_without_the_settings_the_routes_do_not_exist(sqlite_ctx: ServiceContext) -> None:
    """A server without CONSULTFLOW_OIDC_ISSUER answers 404 on every single sign-on route."""
    web = client(sqlite_ctx)
    for path in (
        "/api/v1/auth/oidc",
        f"/api/v1/auth/oidc/start?port={LISTENER}&challenge={CHALLENGE}",
        "/api/v1/auth/oidc/callback?code=x&state=y",
    ):
        assert web.get(path).status_code == 404, path
    assert exchange(web, "grant").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"port": 80},
        {"port": 70000},
        {"port": "http://evil.example/"},
        {"challenge": "too-short"},
        {"challenge": CHALLENGE + "!"},
    ],
)
def test_start_takes_only_a_loopback_port_and_a_challenge(
    sqlite_ctx: ServiceContext, provider: Provider, params: dict[str, Any]
) -> None:
    """A port outside 1024-65535 or a malformed challenge is a usage error in one line; nothing is set."""
    answer = sso_client(sqlite_ctx, provider).get(
        "/api/v1/auth/oidc/start", params={"port": LISTENER, "challenge": CHALLENGE, **params}
    )
    assert answer.status_code == 422 and answer.json()["exit_code"] == 2 and "\n" not in answer.json()["error"]
    assert "set-cookie" not in answer.headers


def test_a_redirect_asked_for_is_ignored(sqlite_ctx: ServiceContext, provider: Provider) -> None:
    """Whatever the request says, the browser goes back only to http://127.0.0.1:PORT/callback."""
    people.add_actor(sqlite_ctx, acting=None, name=COORD, roles=["coordinator"])
    back = round_trip(
        sso_client(sqlite_ctx, provider), redirect_uri="https://evil.example/", next="https://evil.example/"
    )
    assert set(back) == {"grant"}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CONSULTFLOW_OIDC_CLIENT_ID": "x"}, "CONSULTFLOW_OIDC_CLIENT_ID is set but CONSULTFLOW_OIDC_ISSUER is not"),
        ({"CONSULTFLOW_OIDC_ISSUER": "http://sso.province.example"}, "is not an https:// URL"),
        ({"CONSULTFLOW_OIDC_ISSUER": "https://sso.province.example"}, "CONSULTFLOW_OIDC_PUBLIC_URL must be"),
        (
            {
                "CONSULTFLOW_OIDC_ISSUER": "https://sso.province.example",
                "CONSULTFLOW_OIDC_PUBLIC_URL": "https://yj.example",
            },
            "CONSULTFLOW_OIDC_CLIENT_ID is needed",
        ),
        (
            {
                "CONSULTFLOW_OIDC_ISSUER": "https://sso.province.example",
                "CONSULTFLOW_OIDC_PUBLIC_URL": "https://yj.example",
                "CONSULTFLOW_OIDC_CLIENT_ID": "x",
                "CONSULTFLOW_OIDC_CLIENT_SECRET": "y",
                "CONSULTFLOW_OIDC_CLIENT_SECRET_FILE": "/nonexistent",
            },
            "give it one way",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(env: dict[str, str], says: str) -> None:
    """A server with half a single sign-on set-up does not start: one line naming the setting."""
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        OidcSettings.from_env(Environment(env))


def test_settings_from_the_environment(tmp_path: Path) -> None:
    """The secret may come from a file; the public URL loses its trailing slash; no issuer, no single sign-on."""
    (tmp_path / "secret").write_text("from-a-file\n", encoding="utf-8")
    got = OidcSettings.from_env(
        Environment(
            {
                "CONSULTFLOW_OIDC_ISSUER": "https://sso.province.example/realms/county",
                "CONSULTFLOW_OIDC_CLIENT_ID": "consultflow",
                "CONSULTFLOW_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
                "CONSULTFLOW_OIDC_PUBLIC_URL": "https://yijian.county.example/",
            }
        )
    )
    assert got == OidcSettings(
        "https://sso.province.example/realms/county", "consultflow", "https://yijian.county.example",
        "preferred_username", "from-a-file",
    )  # fmt: skip
    assert got is not None and "from-a-file" not in repr(got)
    assert got.redirect_uri == "https://yijian.county.example/api/v1/auth/oidc/callback" and got.secure
    assert OidcSettings.from_env(Environment({})) is None


# The CLI and a real server


@pytest.mark.slow
def test_serve_without_the_oidc_extra_stops_in_one_line(tmp_path: Path) -> None:
    """With the issuer set and Authlib missing, `consultflow serve` stops before it listens, in one line."""
    shadow = tmp_path / "shadow" / "authlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed, for this test')\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "shadow"),
        "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
        "CONSULTFLOW_OIDC_ISSUER": "https://sso.province.example",
        "CONSULTFLOW_OIDC_CLIENT_ID": "consultflow",
        "CONSULTFLOW_OIDC_PUBLIC_URL": "https://yijian.county.example",
    }
    db = str(tmp_path / "x.sqlite")
    run = [sys.executable, "-m", "consultflow", "--db", db]
    subprocess.run([*run, "db", "upgrade"], env=env, capture_output=True, check=True, timeout=120)
    served = subprocess.run(
        [*run, "serve", "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert served.returncode == 1
    assert served.stderr.strip() == f"Error: {NEEDS_EXTRA}"


@contextmanager
def server_with_sso(db_url: str, folder: Path, provider: Provider) -> Iterator[str]:
    """`consultflow serve` with single sign-on at `provider`, until the block ends."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CONSULTFLOW_WORKFLOWS": str(WORKFLOWS),
        "CONSULTFLOW_WEB_SECRET": "s" * 40,
        "CONSULTFLOW_OIDC_ISSUER": provider.issuer,
        "CONSULTFLOW_OIDC_CLIENT_ID": CLIENT_ID,
        "CONSULTFLOW_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "CONSULTFLOW_OIDC_PUBLIC_URL": base,
    }
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consultflow", "--db", db_url, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/api/v1/auth/oidc", timeout=1) as answer:
                    assert json.loads(answer.read()) == {"issuer": provider.issuer}
                    break
            except OSError:
                time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail(f"consultflow serve did not start: {log.read_text(encoding='utf-8')[-2000:]}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "grant=" not in log.read_text(encoding="utf-8") and "cft_" not in log.read_text(encoding="utf-8")


class Browser:
    """The person's browser: opens a URL in the background, follows every redirect, keeps cookies; what it showed."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.opened: list[str] = []
        self.done = threading.Event()

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        """Load `url` as a browser would, without holding up the caller."""
        self.opened.append(url)

        def visit() -> None:
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(CookieJar())
            )
            try:
                with opener.open(url, timeout=30) as page:
                    self.pages.append(page.read().decode("utf-8"))
            finally:
                self.done.set()

        threading.Thread(target=visit, daemon=True).start()
        return True


@pytest.mark.slow
def test_login_sso_through_a_real_server(
    db_url: str, tmp_path: Path, keys: tuple[RSAKey, RSAKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`login URL --sso`: the browser signs in at the provider, the CLI keeps the token and says what a password login says."""
    ctx = make_context(db_url, FixedClock(START))
    staff(ctx)
    ctx.database.dispose()
    monkeypatch.setenv("DISPLAY", ":0")
    with (
        serving(Provider(*keys, now=lambda: datetime.now(timezone.utc))) as provider,
        server_with_sso(db_url, tmp_path, provider) as base,
    ):
        browser = Browser()
        monkeypatch.setattr("webbrowser.open", browser.open)
        signed = CliRunner().invoke(main, ["login", base, "--sso", "--expires-days", "7"])
        assert signed.exit_code == 0, signed.output
        assert re.fullmatch(
            rf"signed in to {re.escape(base)} as {COORD} \(token #1, write, until [^)]+\); kept in \S+credentials\.json\n",
            signed.stdout,
        ), signed.stdout
        assert f"{base}/api/v1/auth/oidc/start?port=" in signed.stderr and browser.opened
        assert browser.done.wait(10) and f"Signed in to consultflow as {COORD}" in browser.pages[0]
        me = CliRunner().invoke(main, ["--json", "whoami"])
        assert me.exit_code == 0 and json.loads(me.stdout)["name"] == COORD

        provider.person = "何未登记"
        refused = CliRunner().invoke(main, ["login", base, "--sso"])
        assert refused.exit_code == 1
        assert refused.stderr.strip().splitlines()[-1] == f"Error: {accounts.EXTERNAL_REFUSED}"

        usage = CliRunner().invoke(main, ["login", base, "--sso", "--name", COORD])
        assert usage.exit_code == 2 and "--sso takes who you are from the identity provider" in usage.stderr

        monkeypatch.setattr(session, "SSO_TIMEOUT_S", 0.5)
        monkeypatch.setattr("webbrowser.open", lambda url, new=0, autoraise=True: True)  # nobody signs in
        waited = CliRunner().invoke(main, ["login", base, "--sso"])
        assert waited.exit_code == 1 and "sign-in not finished: no answer from the browser" in waited.stderr


def test_login_sso_at_a_server_without_it_is_one_line(provider: Provider) -> None:
    """A server that does not offer single sign-on (404 there): one line, exit 1, and no browser opened."""
    done = CliRunner().invoke(main, ["login", provider.issuer, "--sso"])
    assert done.exit_code == 1
    assert done.stderr.strip() == (
        f"Error: the server at {provider.issuer} does not offer single sign-on; sign in with a password (leave out --sso)"
    )


@pytest.mark.parametrize("name", ["CONSULTFLOW_OIDC_CLIENT_ID", "CONSULTFLOW_OIDC_PUBLIC_URL"])
def test_the_servers_settings_refuse_half_a_set_up_and_have_no_sign_on_without_one(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read as the server reads them: a stray single sign-on setting stops it in one line; none, no sign-on."""
    for each in [v for v in os.environ if v.startswith("CONSULTFLOW_OIDC_")]:
        monkeypatch.delenv(each)
    monkeypatch.setenv("CONSULTFLOW_WEB_SECRET", "s" * 40)
    assert WebSettings.from_env().oidc is None
    monkeypatch.setenv(name, "https://yj.example")
    with pytest.raises(ConfigurationError, match=f"{name} is set but CONSULTFLOW_OIDC_ISSUER is not"):
        WebSettings.from_env()
