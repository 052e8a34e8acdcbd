"""Single sign-on with OpenID Connect: staff sign in at the county's or province's identity provider.

Optional: the routes exist only when CONSULTFLOW_OIDC_ISSUER is set, and they need the `oidc`
extra. Authlib does the OpenID Connect work: discovery (`/.well-known/openid-configuration`,
checked by its `OpenIDProviderMetadata`), the authorization-code flow with PKCE (S256), state and
nonce, the code exchange with the client secret, and the ID token's checks: its signature against
the provider's JWKS (joserfc, Authlib's JOSE library; refetched once when the provider rotates its
keys), then issuer, audience, expiry, issue time and nonce (`CodeIDToken`). consultflow never
creates an account from single sign-on: the configured claim (`preferred_username` by default)
must name a registered person with a staff role whose account is enabled, and the sign-in is
recorded in the account log and limited like a password sign-in (`accounts.sign_in_external`).

How the token reaches the CLI (the hand-off). The token never passes through the browser:

1. `consultflow login URL --sso` listens on http://127.0.0.1:PORT/callback (a random port) and
   keeps a random verifier to itself. It opens `GET /api/v1/auth/oidc/start?port=PORT&challenge=C`
   in the browser, C being the verifier's SHA-256 in base64url (PKCE's S256, between the CLI and
   this server).
2. /start makes the state, the nonce and the PKCE verifier for the provider, seals them with PORT
   and C into a cookie, and sends the browser to the provider. Sealed means encrypted and
   authenticated (JWE, dir + A256GCM) with a key derived from the server secret
   (CONSULTFLOW_WEB_SECRET), expiring after 10 minutes; the cookie is HttpOnly, SameSite=Lax, only
   for /api/v1/auth/oidc, and Secure when the public URL is https.
3. /callback opens the cookie (from the same browser, in time, or the answer is refused), lets
   Authlib check the state and exchange the code, checks the ID token, and sends the browser to
   http://127.0.0.1:PORT/callback?grant=G: never anywhere else, whatever a request says. G is
   sealed like the cookie: the person the provider vouched for, bound to C, for 2 minutes. It is
   not a token, and it is worth nothing without the verifier, which never left the CLI. A refusal
   goes the same way as ?error=LINE, so the CLI says it at once instead of waiting.
4. The CLI posts G and its verifier to `POST /api/v1/auth/oidc/token`. The server checks that the
   verifier hashes to C and issues a personal access token in the JSON answer, as a password
   sign-in does.

So no access token is ever in a URL, a browser's history, a page or a log. A grant seen on its
way (the history, an extension) cannot become a token, and a grant for someone else pushed into a
person's listener (login CSRF) fails its challenge. Nothing is kept on the server between the
steps, so any worker process may serve each. The request log has paths only, never the codes.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from consultflow import extras
from consultflow.config import Environment, environment
from consultflow.domain.accounts import SIGNIN_TOKEN_DAYS, FailureReason
from consultflow.domain.errors import ConfigurationError, ConsultflowError
from consultflow.services import accounts
from consultflow.services.context import ServiceContext
from consultflow.web.common import OIDC_NAMED_BY, WebSettings, client_of

try:
    import httpx2
    from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
    from authlib.common.security import generate_token, is_secure_transport  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
    from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
    from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
    from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url  # type: ignore[import-untyped]
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, ClaimError, InvalidKeyIdError, JoseError
    from joserfc.jwe import JWERegistry
    from joserfc.jwk import KeySet, OctKey
    from joserfc.jws import JWSRegistry
except ImportError:  # pragma: no cover - the oidc extra is not installed: OidcSettings.from_env says so
    HAVE_AUTHLIB = False
else:
    HAVE_AUTHLIB = True

PREFIX = "/api/v1/auth/oidc"
COOKIE = "consultflow_oidc"
FLOW_SECONDS = 600  # from /start to /callback: signing in at the provider
GRANT_SECONDS = 120  # from /callback to the CLI's exchange
LEEWAY_S = 60  # clock difference allowed with the provider
HTTP_TIMEOUT_S = 10.0
CACHE_S = 300.0  # how long the discovery document is kept
DEFAULT_CLAIM = "preferred_username"
NEEDS_EXTRA = extras.message("OpenID Connect", "oidc")
STATE_REFUSED = (
    "sign-in refused: this sign-in did not start in this browser, or took over 10 minutes; "
    "run 'consultflow login URL --sso' again"
)
GRANT_REFUSED = "sign-in refused: the single sign-on answer is not valid (forged, expired, or from another sign-in)"
CHALLENGE_PATTERN = r"^[A-Za-z0-9_-]{43}$"
_ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_CHECKS = {"iss": "issuer", "aud": "audience", "exp": "expiry", "iat": "issue time", "nbf": "not-before",
           "nonce": "nonce", "sub": "subject", "azp": "authorized party", "at_hash": "access token hash"}  # fmt: skip
_NO_STORE = {"Cache-Control": "no-store"}
_FLOW, _GRANT = "flow", "grant"


@dataclass(frozen=True)
class OidcSettings:
    """Where the provider is, who this server is there, and which claim names the consultflow actor."""

    issuer: str
    client_id: str
    public_url: str  # the server's external URL, without a trailing slash
    claim: str = DEFAULT_CLAIM
    client_secret: str | None = field(default=None, repr=False)

    @property
    def redirect_uri(self) -> str:
        """Where the provider sends the browser back (register it with the provider)."""
        return f"{self.public_url}{PREFIX}/callback"

    @property
    def secure(self) -> bool:
        """Whether the server is reached over HTTPS (the flow's cookie then goes only that way)."""
        return self.public_url.startswith("https://")

    @classmethod
    def from_env(cls, env: Environment | None = None) -> OidcSettings | None:
        """The CONSULTFLOW_OIDC_* settings; None when single sign-on is not configured.

        Raises:
            ConfigurationError: the issuer is set and Authlib is missing, or a setting that cannot
                work (one line naming it).
        """
        env = env or environment()
        issuer = env.text("CONSULTFLOW_OIDC_ISSUER").strip()
        if not issuer:
            for stray in OIDC_NAMED_BY[1:]:
                if env.text(stray):
                    msg = f"{stray} is set but CONSULTFLOW_OIDC_ISSUER is not; set both for single sign-on, or neither"
                    raise ConfigurationError(msg)
            return None
        if not HAVE_AUTHLIB:
            raise ConfigurationError(NEEDS_EXTRA)
        public_url = env.text("CONSULTFLOW_OIDC_PUBLIC_URL").strip().rstrip("/")
        client_id = env.text("CONSULTFLOW_OIDC_CLIENT_ID").strip()
        claim = env.text("CONSULTFLOW_OIDC_CLAIM", DEFAULT_CLAIM).strip()
        if not _served_safely(issuer):
            msg = f"CONSULTFLOW_OIDC_ISSUER {issuer!r} is not an https:// URL (http:// only on this machine)"
            raise ConfigurationError(msg)
        if not _served_safely(public_url):
            msg = (
                "CONSULTFLOW_OIDC_PUBLIC_URL must be the server's external https:// URL, such as "
                "https://yijian.county.example (http:// only on this machine)"
            )
            raise ConfigurationError(msg)
        if not client_id:
            msg = "CONSULTFLOW_OIDC_CLIENT_ID is needed with CONSULTFLOW_OIDC_ISSUER: this server's client id there"
            raise ConfigurationError(msg)
        if not claim or len(claim) > 100:
            msg = "CONSULTFLOW_OIDC_CLAIM must name an ID token claim, such as preferred_username"
            raise ConfigurationError(msg)
        return cls(issuer, client_id, public_url, claim, _client_secret(env))


def _served_safely(url: str) -> bool:
    parts = urlsplit(url)
    return bool(is_secure_transport(url)) and not parts.query and not parts.fragment and "@" not in parts.netloc


def _client_secret(env: Environment) -> str | None:
    """CONSULTFLOW_OIDC_CLIENT_SECRET or the file it is in; None: a public client (PKCE alone)."""
    secret = env.text("CONSULTFLOW_OIDC_CLIENT_SECRET")
    path = env.text("CONSULTFLOW_OIDC_CLIENT_SECRET_FILE")
    if secret and path:
        msg = "both CONSULTFLOW_OIDC_CLIENT_SECRET and CONSULTFLOW_OIDC_CLIENT_SECRET_FILE are set; give it one way"
        raise ConfigurationError(msg)
    if path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"CONSULTFLOW_OIDC_CLIENT_SECRET_FILE {path!r} cannot be read: {exc.strerror}"
            raise ConfigurationError(msg) from None
    return secret or None


class _RefusedError(ConsultflowError):
    """The provider's answer did not check out: why (a FailureReason), and which check."""

    def __init__(self, reason: str, check: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.check = check


class _Provider:
    """The provider's discovery document and keys, fetched on use and kept a while (each worker its own)."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._fetched = 0.0
        self._keys: KeySet | None = None

    def metadata(self) -> dict[str, Any]:
        """The discovery document, checked by Authlib, naming the configured issuer.

        Raises:
            ConfigurationError: it cannot be read, is not usable, or names another issuer.
        """
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._fetched < CACHE_S:
                return self._metadata
        issuer = self.settings.issuer
        document = OpenIDProviderMetadata(_fetched(get_well_known_url(issuer, external=True), "discovery document"))
        try:
            document.validate()
        except ValueError as exc:
            msg = f"the identity provider's discovery document is not usable: {exc}".replace("\n", " ")
            raise ConfigurationError(msg) from None
        if document.get("issuer") != issuer:
            msg = "the identity provider's discovery document names another issuer than CONSULTFLOW_OIDC_ISSUER"
            raise ConfigurationError(msg)
        metadata = dict(document)
        with self._lock:
            self._metadata, self._fetched, self._keys = metadata, time.monotonic(), None
        return metadata

    def keys(self, *, fresh: bool = False) -> KeySet:
        """The provider's public keys (its JWKS); `fresh` reads them again (keys rotated)."""
        with self._lock:
            keys = self._keys
        if keys is None or fresh:
            try:
                keys = KeySet.import_key_set(_fetched(str(self.metadata()["jwks_uri"]), "keys (JWKS)"))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                msg = "the identity provider's keys (JWKS) cannot be read as keys"
                raise ConfigurationError(msg) from None
            with self._lock:
                self._keys = keys
        return keys

    def client(self) -> Any:
        """Authlib's OAuth 2 client for this server: PKCE S256, scope openid, the client secret if any."""
        settings = self.settings
        offered = self.metadata().get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        method = "none"
        if settings.client_secret is not None:
            method = "client_secret_basic" if "client_secret_basic" in offered else "client_secret_post"
        return OAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=method,
            scope="openid",
            redirect_uri=settings.redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_S,
            follow_redirects=False,
        )


def _fetched(url: str, what: str) -> dict[str, Any]:
    """A JSON document from the provider.

    Raises:
        ConfigurationError: it cannot be fetched, or is not a JSON object.
    """
    try:
        with httpx2.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False) as http:
            answer = http.get(url, headers={"Accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
    except (httpx2.HTTPError, ValueError) as exc:
        msg = f"the identity provider's {what} cannot be read ({type(exc).__name__}); is the provider up?"
        raise ConfigurationError(msg) from None
    if not isinstance(document, dict):
        msg = f"the identity provider's {what} is not a JSON object"
        raise ConfigurationError(msg)
    return document


# Sealing: the flow's cookie and the grant, encrypted and authenticated with the server secret


def _key(secret: bytes, purpose: str) -> OctKey:
    """A 256-bit key for one purpose, derived from the server secret (so a grant never opens as a cookie)."""
    key: OctKey = OctKey.import_key(hmac.new(secret, f"consultflow oidc {purpose}".encode(), hashlib.sha256).digest())
    return key


def _sealed_registry() -> JWERegistry:
    return JWERegistry(algorithms=["dir", "A256GCM"])


def _seal(secret: bytes, purpose: str, claims: dict[str, Any], now: datetime, seconds: int) -> str:
    body = {**claims, "exp": int(now.timestamp()) + seconds}
    return jwt.encode({"alg": "dir", "enc": "A256GCM"}, body, _key(secret, purpose), registry=_sealed_registry())


def _opened(secret: bytes, purpose: str, text: str | None, now: datetime) -> dict[str, Any] | None:
    """What `_seal` sealed for `purpose`, if it is intact and not expired; else None."""
    if not text or len(text) > 4096:
        return None
    try:
        token = jwt.decode(text, _key(secret, purpose), registry=_sealed_registry())
        jwt.JWTClaimsRegistry(now=int(now.timestamp()), exp={"essential": True}).validate(token.claims)
    except (JoseError, ValueError, TypeError):
        return None
    return token.claims


def _verifies(verifier: str, challenge: str) -> bool:
    """Whether the CLI's verifier hashes to the challenge it sent to /start (PKCE's S256)."""
    if not 43 <= len(verifier) <= 128 or not challenge:
        return False
    return hmac.compare_digest(str(create_s256_code_challenge(verifier)), challenge)


# The provider's answer


def _vouched(provider: _Provider, request: Request, flow: dict[str, Any], now: datetime) -> tuple[str, str]:
    """The consultflow name and the provider's subject id the answer vouches for.

    Raises:
        _RefusedError: the provider refused, the state does not match, or the ID token or its
            naming claim does not check out.
        ConfigurationError: the provider cannot be reached or read.
    """
    settings = provider.settings
    query = request.query_params
    if "error" in query:
        code = "".join(c for c in query.get("error", "")[:40] if c.isalnum() or c == "_") or "error"
        raise _RefusedError(FailureReason.PROVIDER_REFUSED, code, f"sign-in refused by the identity provider ({code})")
    if "iss" in query and query["iss"] != settings.issuer:  # RFC 9207: an answer from another provider
        raise _RefusedError(FailureReason.BAD_STATE, "issuer", "sign-in refused: the answer came from another provider")
    metadata = provider.metadata()
    with provider.client() as oauth:
        try:
            token = oauth.fetch_token(
                metadata["token_endpoint"],
                authorization_response=str(request.url),
                state=str(flow["state"]),
                code_verifier=str(flow["verifier"]),
            )
        except AuthlibBaseError as exc:
            if exc.error in ("mismatching_state", "missing_code"):
                msg = "sign-in refused: the answer does not belong to this sign-in (state or code missing or wrong)"
                raise _RefusedError(FailureReason.BAD_STATE, "state", msg) from None
            code = "".join(c for c in str(exc.error)[:40] if c.isalnum() or c == "_") or "error"
            msg = f"sign-in refused: the identity provider would not exchange its code ({code})"
            raise _RefusedError(FailureReason.PROVIDER_REFUSED, code, msg) from None
        except (httpx2.HTTPError, ValueError) as exc:
            msg = f"sign-in refused: the identity provider's token endpoint failed ({type(exc).__name__})"
            raise _RefusedError(FailureReason.PROVIDER_REFUSED, "token endpoint", msg) from None
    claims = _id_token_claims(provider, token, str(flow["nonce"]), now)
    name = claims.get(settings.claim)
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        msg = f"sign-in refused: the identity provider's answer has no {settings.claim} to name a consultflow person"
        raise _RefusedError(FailureReason.BAD_ID_TOKEN, "claim", msg)
    return name.strip(), str(claims["sub"])


def _id_token_claims(provider: _Provider, token: dict[str, Any], nonce: str, now: datetime) -> dict[str, Any]:
    """The ID token's claims once its signature (the provider's JWKS) and claims (Authlib's CodeIDToken) check out.

    Raises:
        _RefusedError: which check failed: signature, issuer, audience, expiry, nonce, ...
    """
    settings = provider.settings
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        msg = "sign-in refused: the identity provider answered without an ID token (is the scope openid allowed?)"
        raise _RefusedError(FailureReason.BAD_ID_TOKEN, "presence", msg)
    offered = provider.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
    registry = JWSRegistry(algorithms=[a for a in offered if a in _ASYMMETRIC] or ["RS256"], strict_check_header=False)
    try:
        try:
            decoded = jwt.decode(id_token, provider.keys(), registry=registry)
        except InvalidKeyIdError:  # the provider may have rotated its keys since they were read
            decoded = jwt.decode(id_token, provider.keys(fresh=True), registry=registry)
        expected = {"iss": settings.issuer, "aud": settings.client_id}
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {claim: {"essential": True, "value": value} for claim, value in expected.items()},
            {"nonce": nonce, "client_id": settings.client_id, "access_token": token.get("access_token")},
        )
        claims.validate(now=int(now.timestamp()), leeway=LEEWAY_S)
    except BadSignatureError:
        check = "signature"
    except InvalidKeyIdError:
        check = "signing key"
    except ClaimError as exc:
        check = ", ".join(_CHECKS.get(c, c) for c in str(exc.claim).split(","))
    except (JoseError, AuthlibBaseError, ValueError, TypeError):
        check = "format"
    else:
        return dict(claims)
    msg = f"sign-in refused: the identity provider's ID token failed the {check} check"
    raise _RefusedError(FailureReason.BAD_ID_TOKEN, check, msg)


# The routes


@dataclass(frozen=True)
class SsoExchange:
    """The CLI's grant (from its loopback listener) and the verifier only it knows."""

    grant: str
    verifier: str
    token_name: str = "cli"  # noqa: S105 - a label, not a secret
    scope: str = "write"
    expires_days: int = SIGNIN_TOKEN_DAYS


@dataclass(frozen=True)
class SsoToken:
    """A personal access token: shown once, stored only as a hash; `owner` is who signed in."""

    token: str
    token_id: int
    name: str
    scope: str
    expires_at: datetime
    owner: str


@dataclass(frozen=True)
class SsoOffered:
    """This server offers single sign-on, at this provider."""

    issuer: str


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _secret(request: Request) -> bytes:
    web: WebSettings = request.app.state.web
    return web.secret


def _to_cli(flow: dict[str, Any], params: dict[str, str]) -> Response:
    """Send the browser to the CLI's listener on this machine: the only place /callback ever sends it."""
    url = f"http://127.0.0.1:{int(flow['port'])}/callback?{urlencode(params)}"
    answer = RedirectResponse(url, status_code=303, headers=_NO_STORE)
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer


def router(settings: OidcSettings) -> APIRouter:
    """The single sign-on routes (only when it is configured): what is offered, start, callback, token."""
    provider = _Provider(settings)
    made = APIRouter(prefix=PREFIX, tags=["sign-in"])

    @made.get("", summary="Single sign-on: whether this server offers it, and at which provider")
    def offered() -> SsoOffered:
        return SsoOffered(settings.issuer)

    @made.get("/start", summary="Single sign-on, step 1 (the browser): off to the identity provider")
    def start(
        request: Request,
        port: Annotated[int, Query(ge=1024, le=65535, description="the CLI's listener on 127.0.0.1")],
        challenge: Annotated[str, Query(pattern=CHALLENGE_PATTERN, description="SHA-256 of the CLI's verifier")],
    ) -> Response:
        metadata = provider.metadata()
        state, nonce, verifier = generate_token(48), generate_token(48), generate_token(64)
        with provider.client() as oauth:
            url, _state = oauth.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        flow = {"state": state, "nonce": nonce, "verifier": verifier, "port": port, "challenge": challenge}
        sealed = _seal(_secret(request), _FLOW, flow, _ctx(request).clock.now(), FLOW_SECONDS)
        answer = RedirectResponse(str(url), status_code=303, headers=_NO_STORE)
        answer.set_cookie(
            COOKIE, sealed, max_age=FLOW_SECONDS, path=PREFIX, secure=settings.secure, httponly=True, samesite="lax"
        )
        return answer

    @made.get("/callback", summary="Single sign-on, step 2 (the browser): back from the provider, on to the CLI")
    def callback(request: Request) -> Response:
        ctx, client = _ctx(request), client_of(request)
        now = ctx.clock.now()
        flow = _opened(_secret(request), _FLOW, request.cookies.get(COOKIE), now)
        if flow is None:
            raise accounts.refuse_external_sign_in(
                ctx, issuer=settings.issuer, client=client, reason=FailureReason.BAD_STATE, check="cookie",
                message=STATE_REFUSED,
            )  # fmt: skip
        try:
            name, subject = _vouched(provider, request, flow, now)
        except _RefusedError as refused:
            error = accounts.refuse_external_sign_in(
                ctx, issuer=settings.issuer, client=client, reason=refused.reason, check=refused.check,
                message=str(refused),
            )  # fmt: skip
            return _to_cli(flow, {"error": str(error)})
        except ConsultflowError as exc:  # the provider cannot be reached or read: the CLI says so at once
            return _to_cli(flow, {"error": str(exc)})
        grant = {"name": name, "sub": subject, "challenge": flow["challenge"]}
        return _to_cli(flow, {"grant": _seal(_secret(request), _GRANT, grant, now, GRANT_SECONDS)})

    @made.post("/token", summary="Single sign-on, step 3 (the CLI): the grant and its verifier for a token")
    def exchange(request: Request, body: SsoExchange) -> SsoToken:
        ctx, client = _ctx(request), client_of(request)
        grant = _opened(_secret(request), _GRANT, body.grant, ctx.clock.now())
        if grant is None or not _verifies(body.verifier, str(grant.get("challenge", ""))):
            raise accounts.refuse_external_sign_in(
                ctx, issuer=settings.issuer, client=client, reason=FailureReason.BAD_GRANT,
                check="grant" if grant is None else "verifier", name=None if grant is None else str(grant["name"]),
                message=GRANT_REFUSED,
            )  # fmt: skip
        issued = accounts.sign_in_external(
            ctx,
            name=str(grant["name"]),
            issuer=settings.issuer,
            subject=str(grant["sub"]),
            client=client,
            token_name=body.token_name,
            scope=body.scope,
            expires_days=body.expires_days,
        )
        return SsoToken(issued.token, issued.token_id, issued.name, issued.scope, issued.expires_at, issued.owner)

    return made
