"""Run the Alembic migrations from code (`consultflow db upgrade`, tests, the demo)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions, so commands can check the schema without importing
# Alembic (and Mako) at every start; a test proves it equals Alembic's own head.
SCHEMA_HEAD = "0019"


def migrations_dir() -> Path:
    """The migrations shipped in the package (`migrations/` in a source checkout)."""
    return Path(str(files("consultflow.migrations")))


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at `migrations/`, sharing `engine` when given."""
    from alembic.config import Config  # noqa: PLC0415 - Alembic loads only when migrating

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` in one transaction."""
    from alembic import command  # noqa: PLC0415

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision`."""
    from alembic import command  # noqa: PLC0415

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been upgraded."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """The newest revision in `migrations/` (kept as a constant; see SCHEMA_HEAD)."""
    return SCHEMA_HEAD


def alembic_head_revision() -> str | None:
    """The newest revision as Alembic finds it by reading every migration script."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
