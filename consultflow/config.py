"""Settings: every CONSULTFLOW_* environment variable, declared once, read in one place, validated once.

`SETTINGS` lists each variable with its command-line option (if any), its default, what it
means and which part of consultflow reads it; `Environment` reads them all from the process
environment and checks each value, so a bad one is refused in one line before anything runs;
`settings_table` renders the list for `consultflow settings` and the documentation's configuration
reference (docs/reference/configuration.md). Command-line options that a variable also sets take
their defaults from the `Environment`, never from `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consultflow.domain.audit import ChainKey
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.identity import UNBOUND_MODES, UnboundLogins
from consultflow.domain.labels import Lang

if TYPE_CHECKING:
    from consultflow.domain.heads import HeadPublishing

DEFAULT_DB = "sqlite:///consultflow.sqlite"
DEFAULT_TZ = "Asia/Shanghai"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            msg = f"{text!r} is not one of: {', '.join(allowed)}"
            raise ValueError(msg)
        return value

    return parse


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"{text!r} is not 1/0, true/false, yes/no or on/off"
    raise ValueError(msg)


def _number(low: float, high: float, kind: type[int | float] = int) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text.strip())
        except ValueError:
            msg = f"{text!r} is not a{'n integer' if kind is int else ' number'}"
            raise ValueError(msg) from None
        if not low <= value <= high:
            msg = f"{text!r} is outside {low:g} to {high:g}"
            raise ValueError(msg)
        return value

    return parse


def _zone(text: str) -> str:
    load_zone(text)
    return text


def _text(text: str) -> str:
    return text


@dataclass(frozen=True)
class Setting:
    """One CONSULTFLOW_* variable: what sets it, its default, what it means, who reads it."""

    env: str
    meaning: str
    part: str  # every command, the client, the server, the worker
    option: str | None = None
    default: str = ""
    secret: bool = False  # its value is never shown (a password, a key, a token)
    parse: Callable[[str], Any] = field(default=_text, repr=False)


# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("CONSULTFLOW_DB", "database URL or SQLite file path", "every command", "--db", DEFAULT_DB),
    Setting("CONSULTFLOW_ACTOR", "who is acting, on a local database", "every command", "--as"),
    Setting("CONSULTFLOW_LANG", "language of labels: zh or en", "every command", "--lang", "zh",
            parse=_choice("zh", "en")),
    Setting("CONSULTFLOW_TZ", "time zone times are shown in (stored in UTC)", "every command", "--tz", DEFAULT_TZ,
            parse=_zone),
    Setting("CONSULTFLOW_WORKFLOWS", "directory of workflow files", "every command", "--workflows",
            "the package's workflows/"),
    Setting("CONSULTFLOW_CHAIN_KEY_FILE", "file holding the secret that HMAC-keys new audit chains", "the server",
            "--chain-key-file"),
    Setting("CONSULTFLOW_CHAIN_KEY", "the chain key itself, instead of a file", "the server", secret=True),
    Setting("CONSULTFLOW_SIGNING_KEY_FILE", "file holding the Ed25519 key chain heads are signed with "
            "(0600; `consultflow audit keygen`)", "the server"),
    Setting("CONSULTFLOW_HEADS_FILE", "the server's own record of every head it signs (JSON lines, public; one per "
            "database; needed with a signing key)", "the server"),
    Setting("CONSULTFLOW_HEADS_MAIL", "e-mail addresses each signed chain head is sent to, comma-separated",
            "the server"),
    Setting("CONSULTFLOW_HEADS_SECONDS", "seconds between the server's signing of grown chain heads", "the server",
            default="3600", parse=_number(10, 604_800, float)),
    Setting("CONSULTFLOW_AUTO_CLOSE_SECONDS", "seconds between the server's closing of rounds past their time",
            "the server", default="60", parse=_number(1, 86_400, float)),
    Setting("CONSULTFLOW_SERVER_JOBS", "0: this server process runs no scheduled jobs (signing, closing rounds)",
            "the server", default="1", parse=_flag),
    Setting("CONSULTFLOW_UNBOUND_LOGINS", "before the server: what a PostgreSQL login bound to nobody may do",
            "every command", default="read", parse=_choice("read", "none")),
    Setting("CONSULTFLOW_ERROR_LOG", "file that internal errors' tracebacks go to", "every command",
            default="~/.local/state/consultflow/errors.log"),
    Setting("CONSULTFLOW_CREDENTIALS", "the file `login` keeps the server and token in (0600)", "the client",
            default="~/.config/consultflow/credentials.json"),
    Setting("CONSULTFLOW_SERVER", "the server to work through, instead of a credentials file", "the client"),
    Setting("CONSULTFLOW_TOKEN", "a personal access token for CONSULTFLOW_SERVER (scripts)", "the client",
            secret=True),
    Setting("CONSULTFLOW_WEB_HOST", "address the server listens on", "the server", "--host", "127.0.0.1"),
    Setting("CONSULTFLOW_WEB_PORT", "port the server listens on", "the server", "--port", "8000",
            parse=_number(1, 65535)),
    Setting("CONSULTFLOW_WEB_WORKERS", "server processes", "the server", "--workers", "1", parse=_number(1, 64)),
    Setting("CONSULTFLOW_WEB_FORWARDED_ALLOW_IPS", "proxies whose X-Forwarded-For gives the client address",
            "the server", "--forwarded-allow-ips", "127.0.0.1"),
    Setting("CONSULTFLOW_WEB_SECRET", "at least 32 characters that key client hashes and form tokens", "the server",
            default="random per start", secret=True),
    Setting("CONSULTFLOW_WEB_SECRET_FILE", "file holding CONSULTFLOW_WEB_SECRET", "the server"),
    Setting("CONSULTFLOW_WEB_SECURE_COOKIES", "1 behind HTTPS: the portal's cookies only over HTTPS", "the server",
            default="0", parse=_flag),
    Setting("CONSULTFLOW_WEB_LIMITS", "the portal's rate limits, NAME=COUNT/SECONDS,...", "the server",
            default="submits=20/3600,lookups=10/900,code=30/3600"),
    Setting("CONSULTFLOW_METRICS_TOKEN", "a bearer token that lets /metrics answer a scrape from elsewhere "
            "than this machine", "the server", secret=True),
    Setting("CONSULTFLOW_OIDC_ISSUER", "single sign-on: the OpenID Connect provider's issuer URL (the oidc extra)",
            "the server"),
    Setting("CONSULTFLOW_OIDC_CLIENT_ID", "single sign-on: this server's client id at the provider", "the server"),
    Setting("CONSULTFLOW_OIDC_CLIENT_SECRET", "single sign-on: this server's client secret at the provider",
            "the server", secret=True),
    Setting("CONSULTFLOW_OIDC_CLIENT_SECRET_FILE", "file holding CONSULTFLOW_OIDC_CLIENT_SECRET", "the server"),
    Setting("CONSULTFLOW_OIDC_CLAIM", "single sign-on: the ID token's claim that names the consultflow actor",
            "the server", default="preferred_username"),
    Setting("CONSULTFLOW_OIDC_PUBLIC_URL", "single sign-on: the server's external URL, which the provider sends "
            "people back to", "the server"),
    Setting("CONSULTFLOW_LOG_JSON", "1: the server's logs as JSON lines (set by --log-json)", "the server",
            default="0", parse=_flag),
    Setting("CONSULTFLOW_LOG_LEVEL", "the server's log level (set by -q and -v)", "the server", default="INFO",
            parse=_choice("debug", "info", "warning", "error")),
    Setting("CONSULTFLOW_CHANNELS", "delivery channels: log, email, webhook", "the worker", "--channels",
            "log plus every configured one"),
    Setting("CONSULTFLOW_SMTP_HOST", "SMTP server for email", "the worker", "--smtp-host"),
    Setting("CONSULTFLOW_SMTP_PORT", "SMTP port", "the worker", "--smtp-port", "25", parse=_number(1, 65535)),
    Setting("CONSULTFLOW_SMTP_SECURITY", "none, starttls or ssl", "the worker", "--smtp-security", "none",
            parse=_choice("none", "starttls", "ssl")),
    Setting("CONSULTFLOW_SMTP_USER", "SMTP user name", "the worker", "--smtp-user"),
    Setting("CONSULTFLOW_SMTP_PASSWORD", "SMTP password (never a command-line flag)", "the worker", secret=True),
    Setting("CONSULTFLOW_SMTP_PASSWORD_FILE", "file holding the SMTP password", "the worker", "--smtp-password-file"),
    Setting("CONSULTFLOW_SMTP_ALLOW_PLAIN_AUTH", "allow SMTP login without TLS", "the worker",
            "--smtp-allow-plain-auth", "0", parse=_flag),
    Setting("CONSULTFLOW_SMTP_FROM", "sender address", "the worker", "--smtp-from", "consultflow@localhost"),
    Setting("CONSULTFLOW_WEBHOOK_URL", "URL that receives a JSON POST per message", "the worker", "--webhook-url"),
    Setting("CONSULTFLOW_WEBHOOK_TIMEOUT", "seconds one webhook request may take in all", "the worker",
            "--webhook-timeout", "10", parse=_number(0.1, 300, float)),
    Setting("CONSULTFLOW_WEBHOOK_ALLOW_PRIVATE", "allow a webhook on a private or loopback address", "the worker",
            "--webhook-allow-private", "0", parse=_flag),
    Setting("CONSULTFLOW_SEND_DEADLINE", "seconds one delivery may take in all, on any channel (its connection is "
            "then cut)", "the worker", "--send-deadline", "30", parse=_number(0.5, 600, float)),
    Setting("CONSULTFLOW_CHANNEL_CONCURRENCY", "deliveries sent at once on each channel", "the worker",
            "--channel-concurrency", "4", parse=_number(1, 32)),
    Setting("CONSULTFLOW_MAX_ATTEMPTS", "tries before a delivery is dead-lettered", "the worker", "--max-attempts",
            "5", parse=_number(1, 100)),
    Setting("CONSULTFLOW_SWEEP_SECONDS", "seconds between sweeps", "the worker", "--interval", "60",
            parse=_number(0.1, 86_400, float)),
    Setting("CONSULTFLOW_DIGEST_CRON", "when the daily digest goes (crontab), or off", "the worker",
            "--digest-cron", "0 8 * * *"),
    Setting("CONSULTFLOW_DIGEST_TZ", "time zone of the digest's crontab", "the worker", "--digest-tz", "--tz",
            parse=_zone),
)
# fmt: on
KNOWN = frozenset(s.env for s in SETTINGS)
# Variables of the test suite and the benchmarks, not of consultflow itself.
TOOLING_PREFIXES = ("CONSULTFLOW_TEST_", "CONSULTFLOW_BENCH_", "CONSULTFLOW_REQUIRE_", "CONSULTFLOW_SCREENSHOTS")


class Environment:
    """The CONSULTFLOW_* variables of one process, each checked once; the only reader of them."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Read and check every setting.

        Raises:
            ConfigurationError: a value its setting does not allow, in one line naming both.
        """
        source = os.environ if environ is None else environ
        # One pass over the environment (a few dozen variables), not a lookup per setting: click asks
        # for an option's default several times in each command.
        given = {k: v for k, v in source.items() if k.startswith("CONSULTFLOW_")}
        self._values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = given.get(setting.env)
            if raw is None or raw == "":
                continue
            try:
                self._values[setting.env] = setting.parse(raw)
            except (ValueError, ConfigurationError) as exc:
                shown = "(hidden)" if setting.secret else str(exc)
                msg = f"{setting.env}: {shown} — {setting.meaning}"
                raise ConfigurationError(msg) from None
        self.unknown = sorted(k for k in given if k not in KNOWN and not k.startswith(TOOLING_PREFIXES))

    def get(self, env: str, default: Any = None) -> Any:
        """A setting's checked value, or `default` when it is not set."""
        assert env in KNOWN, f"{env} is not declared in SETTINGS"
        return self._values.get(env, default)

    def text(self, env: str, default: str = "") -> str:
        """A setting as text."""
        return str(self.get(env, default))


def environment() -> Environment:
    """The process's settings, read now (cheap: a few dozen variables)."""
    return Environment()


def env_default(env: str, fallback: Any = None) -> Callable[[], Any]:
    """A click option's default: the setting's value, read through `Environment` when the option is used.

    A bad value gives the fallback here; the command refuses it in one line when it starts (`Environment()`).
    """

    def default() -> Any:
        try:
            return environment().get(env, fallback)
        except ConfigurationError:
            return fallback

    return default


def settings_table() -> str:
    """Every setting as a Markdown table (the documentation's configuration reference is generated from it)."""
    lines = [
        "| variable | option | default | used by | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        plain = not s.default or s.default.startswith(("random", "the ", "log ", "--"))
        default = s.default if plain else f"`{s.default}`"
        lines.append(f"| `{s.env}` | {f'`{s.option}`' if s.option else ''} | {default} | {s.part} | {s.meaning} |")
    return "\n".join(lines)


def default_workflows_dir() -> Path:
    """The workflows shipped in the package (`workflows/` in a source checkout)."""
    from importlib.resources import files  # noqa: PLC0415 - only commands that read workflows need it

    return Path(str(files("consultflow.workflows")))


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about its environment."""

    db_url: str = DEFAULT_DB
    actor: str | None = None
    workflows_dir: Path | None = None
    tz_name: str = DEFAULT_TZ
    lang: Lang = "zh"
    json_output: bool = False
    log_json: bool = False
    log_level: str = "INFO"
    chain_key_file: Path | None = None
    db_given: bool = False  # --db or CONSULTFLOW_DB was given: work on that database, not through a server

    @property
    def unbound_logins(self) -> UnboundLogins:
        """What a PostgreSQL login bound to no actor may do once logins are bound: read, or nothing.

        Raises:
            ConfigurationError: CONSULTFLOW_UNBOUND_LOGINS is neither.
        """
        given = environment().get("CONSULTFLOW_UNBOUND_LOGINS", "read")
        assert given in UNBOUND_MODES
        return "none" if given == "none" else "read"

    def chain_key(self) -> ChainKey | None:
        """The audit chain key: from `chain_key_file` or CONSULTFLOW_CHAIN_KEY, never the database.

        Raises:
            ConfigurationError: both are given, the file cannot be read, or the key is too short.
        """
        from_env = environment().text("CONSULTFLOW_CHAIN_KEY")
        if self.chain_key_file is not None and from_env:
            msg = "both --chain-key-file and CONSULTFLOW_CHAIN_KEY are set; give the audit chain key one way"
            raise ConfigurationError(msg)
        if self.chain_key_file is not None:
            try:
                secret = self.chain_key_file.read_bytes().strip()
            except OSError as exc:
                msg = f"cannot read the chain key file {self.chain_key_file}: {exc.strerror}"
                raise ConfigurationError(msg) from None
            return ChainKey(secret)
        return ChainKey(from_env.encode()) if from_env else None

    @property
    def tz(self) -> ZoneInfo:
        """The display time zone."""
        return load_zone(self.tz_name)

    @property
    def workflows(self) -> Path:
        """Where workflow files are read from."""
        return self.workflows_dir or default_workflows_dir()


def load_zone(name: str) -> ZoneInfo:
    """A time zone by IANA name, or one clear error (naming tzdata when the system's zones are missing)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if not zone_database():
            msg = (
                f"time zone {name!r} cannot be read: this system's time zone database is missing or incomplete; "
                "install the system's tzdata package or pip install tzdata"
            )
        else:
            msg = f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or UTC"
        raise ConfigurationError(msg) from None


def zone_database() -> bool:
    """Whether the IANA zones can be read here: the default zone loads (the system's files, or tzdata).

    The core installs tzdata on Windows only; Linux and macOS keep the zones in /usr/share/zoneinfo,
    but a minimal container may have none, or only UTC.
    """
    try:
        ZoneInfo(DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def head_publishing() -> HeadPublishing | None:
    """The server's head signing key and where signed heads go, or None without a key.

    Raises:
        ConfigurationError: the key file is unreadable, readable by others or not an Ed25519 key, or
            heads are to be published with no key to sign them.
    """
    env = environment()
    key_file, heads_file, mail = (
        env.text(name) for name in ("CONSULTFLOW_SIGNING_KEY_FILE", "CONSULTFLOW_HEADS_FILE", "CONSULTFLOW_HEADS_MAIL")
    )
    if not key_file:
        if heads_file or mail:
            msg = "CONSULTFLOW_HEADS_FILE or _MAIL is set but CONSULTFLOW_SIGNING_KEY_FILE is not: heads need a key"
            raise ConfigurationError(msg)
        return None
    addresses = tuple(a.strip() for a in mail.split(",") if a.strip())
    for address in addresses:
        if "@" not in address or any(c.isspace() for c in address):
            msg = f"CONSULTFLOW_HEADS_MAIL: {address!r} is not an e-mail address"
            raise ConfigurationError(msg)
    from consultflow.domain.heads import HeadPublishing, HeadSigner  # noqa: PLC0415 - the server's, not every command's

    signer = HeadSigner.from_file(Path(key_file).expanduser())
    if not heads_file:
        msg = (
            "CONSULTFLOW_SIGNING_KEY_FILE is set but CONSULTFLOW_HEADS_FILE is not: give the file the server keeps "
            "its record of every head it signs in (one per database, e.g. /srv/consultflow/county/heads.jsonl)"
        )
        raise ConfigurationError(msg)
    return HeadPublishing(signer, Path(heads_file).expanduser(), addresses)
