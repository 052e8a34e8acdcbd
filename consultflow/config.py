"""Settings from the command line and CONSULTFLOW_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consultflow.domain.audit import ChainKey
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.identity import UNBOUND_MODES, UnboundLogins
from consultflow.domain.labels import Lang

DEFAULT_DB = "sqlite:///consultflow.sqlite"
DEFAULT_TZ = "Asia/Shanghai"


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
        given = os.environ.get("CONSULTFLOW_UNBOUND_LOGINS", "read").strip().lower()
        if given == "none":
            return "none"
        if given != "read":
            msg = f"CONSULTFLOW_UNBOUND_LOGINS is {given!r}; allowed: {', '.join(UNBOUND_MODES)}"
            raise ConfigurationError(msg)
        return "read"

    def chain_key(self) -> ChainKey | None:
        """The audit chain key: from `chain_key_file` or CONSULTFLOW_CHAIN_KEY, never the database.

        Raises:
            ConfigurationError: both are given, the file cannot be read, or the key is too short.
        """
        from_env = os.environ.get("CONSULTFLOW_CHAIN_KEY", "")
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
    """A time zone by IANA name, or one clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or UTC"
        raise ConfigurationError(msg) from None
