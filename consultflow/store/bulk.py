"""Set-based writes the ORM has no single spelling for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, literal, select
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session


def insert_ignoring_duplicates(
    session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: rows whose unique key exists are skipped, not errors."""
    if not rows:
        return
    session.execute(_insert(session, model), list(rows))


def insert_selected_ignoring_duplicates(
    session: Session,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    target: str,
    source: InstrumentedAttribute[int],
    keys: Sequence[int],
) -> None:
    """INSERT…SELECT: a row per key in `keys` (as found in `source`) into column `target`, `values` in the rest.

    The constants are bound once for the statement, not once per row as an executemany binds
    them. Rows whose unique key exists are skipped.
    """
    table = _table(model)
    constants = [literal(v, table.c[name].type) for name, v in values.items()]
    selected = select(*constants, source).where(source.in_(list(keys)))
    into = [*(table.c[name] for name in values), table.c[target]]
    session.execute(_insert(session, model).from_select(into, selected))


def _table(model: type[DeclarativeBase]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert(session: Session, model: type[DeclarativeBase]) -> Any:
    table = _table(model)
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
    return stmt
