"""Settings from the command line and CONSULTFLOW_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consultflow.domain.errors import ConfigurationError
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
