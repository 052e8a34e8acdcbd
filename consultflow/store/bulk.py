"""Set-based writes the ORM has no single spelling for."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, literal, select
from sqlalchemy.exc import DBAPIError
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
    table = table_of(model)
    constants = [literal(v, table.c[name].type) for name, v in values.items()]
    selected = select(*constants, source).where(source.in_(list(keys)))
    into = [*(table.c[name] for name in values), table.c[target]]
    session.execute(_insert(session, model).from_select(into, selected))


def table_of(model: type[DeclarativeBase]) -> Table:
    """A mapped class's Core table, for the statements that skip the ORM."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert(session: Session, model: type[DeclarativeBase]) -> Any:
    table = table_of(model)
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
    the driver takes the rows with each distinct value bound once, through its column's own type on
    SQLite (UTCDateTime to the UTC text SQLAlchemy writes), and as they are for COPY on PostgreSQL.
    Driver errors come out as SQLAlchemy's, so `store.errors` reads them as usual.
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
    # Each column's own bind processing (UTCDateTime to SQLAlchemy's UTC text, booleans to 0/1),
    # applied once per distinct value: the events of one change share their moment.
    processors: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = [
        (i, processor, {})
        for i, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(connection.dialect).bind_processor(connection.dialect))
        is not None
    ]
    values = []
    for row in rows:
        value = [row[name] for name in names]
        for i, bind, seen in processors:
            raw = value[i]
            if raw is not None:
                if raw not in seen:
                    seen[raw] = bind(raw)
                value[i] = seen[raw]
        values.append(tuple(value))
    placeholders = ", ".join("?" for _ in names)
    insert_sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})"  # noqa: S608 - known columns
    connection.exec_driver_sql(insert_sql, values)
