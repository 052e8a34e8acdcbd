"""Set-based writes the ORM has no single spelling for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase, Session


def insert_ignoring_duplicates(
    session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: rows whose unique key exists are skipped, not errors."""
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    # Each dialect's module loads only on its own backend (PostgreSQL's costs ~20 ms to import).
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported backends are above
        msg = f"unsupported database dialect {dialect}"
        raise NotImplementedError(msg)
    session.execute(stmt, list(rows))
