"""Set-based writes the ORM has no single spelling for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Boolean, Table, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session

from consultflow.store.types import UTCDateTime


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


def insert_plain(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows through the driver: one executemany on SQLite, COPY on PostgreSQL.

    SQLAlchemy's executemany binds each value of each row through its column type; for the tens
    of thousands of audit events a bulk change writes, that cost more than the INSERT itself. Here
    the driver takes the rows as they are, with times in the form the store keeps them (naive UTC
    text on SQLite, as SQLAlchemy writes it; `timestamptz` on PostgreSQL), each distinct time
    formatted once. Driver errors come out as SQLAlchemy's, so `store.errors` reads them as usual.
    """
    if not rows:
        return
    names = [table.c[name].name for name in rows[0]]  # the table's own columns (a KeyError otherwise)
    connection = session.connection()
    quoted = ", ".join(f'"{name}"' for name in names)
    if connection.dialect.name == "postgresql":
        copy_sql = f"COPY {table.name} ({quoted}) FROM STDIN"
        driver: Any = connection.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
        except driver.Error as exc:  # psycopg's own: made SQLAlchemy's, as executing a statement would
            raise DBAPIError(copy_sql, None, exc) from exc
        return
    times = [i for i, name in enumerate(names) if isinstance(table.c[name].type, UTCDateTime)]
    flags = [i for i, name in enumerate(names) if isinstance(table.c[name].type, Boolean)]
    stored: dict[datetime, str] = {}

    def as_stored(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        text = stored.get(moment)
        if text is None:
            if moment.tzinfo is None:
                msg = "naive datetime given to the database; use timezone-aware UTC"
                raise ValueError(msg)
            utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
            text = stored[moment] = utc.isoformat(" ", "microseconds")  # SQLAlchemy's SQLite form
        return text

    values = []
    for row in rows:
        value = [row[name] for name in names]
        for i in times:
            value[i] = as_stored(value[i])
        for i in flags:
            value[i] = None if value[i] is None else int(value[i])
        values.append(tuple(value))
    placeholders = ", ".join("?" for _ in names)
    insert_sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})"  # noqa: S608 - known columns
    connection.exec_driver_sql(insert_sql, values)
