"""Alembic environment: shares the caller's connection, or opens one from the URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from consultflow.store.engine import make_engine
from consultflow.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Use the connection `consultflow db upgrade` passes in; else the configured URL."""
    shared = config.attributes.get("connection")
    if shared is not None:
        _run(shared)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("CONSULTFLOW_DB", "sqlite:///consultflow.sqlite")
    engine = make_engine(url)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
