"""Run the Alembic migrations from code (`consultflow db upgrade`, tests, the demo)."""

from __future__ import annotations

import random
import time
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from consultflow.domain.errors import RetryableConflictError
from consultflow.store.errors import translate

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions, so commands can check the schema without importing
# Alembic (and Mako) at every start; a test proves it equals Alembic's own head.
SCHEMA_HEAD = "0020"


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


# On PostgreSQL a migration's ALTER TABLE waits at most this long for its table lock: a waiting
# ACCESS EXCLUSIVE request holds up every later reader and writer of that table, so a running
# server would stall behind it. A migration that takes table locks in another order than the
# server's transactions can deadlock with them; either way the transaction rolls back whole
# and the upgrade starts again, up to UPGRADE_ATTEMPTS times.
LOCK_TIMEOUT = "3s"
UPGRADE_ATTEMPTS = 8


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` in one transaction (again, if it lost a lock race).

    Raises:
        DBAPIError: the database refused, or the locks were not had after every attempt.
    """
    from alembic import command  # noqa: PLC0415

    cfg = alembic_config(engine)
    for attempt in range(1, UPGRADE_ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except DBAPIError as exc:
            if attempt == UPGRADE_ATTEMPTS or not isinstance(translate(exc), RetryableConflictError):
                raise  # SqlDatabase.upgrade says it in words
            time.sleep(min(0.1 * 2**attempt, 2.0) * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
        else:
            return


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
