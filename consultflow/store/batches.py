"""Bounded batches: no statement grows with the input (PostgreSQL takes at most 65,535 parameters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, func
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")

BATCH_SIZE = 1000
STREAM_ROWS = 2000  # rows fetched at a time from a streamed read (yield_per)


def chunked(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def matching(session: Session, stmt: Any, column: InstrumentedAttribute[str | None], values: Sequence[str]) -> Any:
    """`stmt` narrowed to rows whose `column` is one of a batch of text `values`.

    On PostgreSQL the values travel as one array, joined through `unnest`. psycopg prepares a
    statement after its fifth run, and PostgreSQL may then reuse a generic plan. For `column IN
    (:v1, …, :v1000)`, or `= ANY(:array)`, made while a table was small, that plan kept scanning
    the table and comparing each row with every value. During an import the table grows, so the
    key lookup cost 0.3 s a batch at 30,000 rows and the import slowed with its own size. Joined
    to `unnest`, the generic plan probes the index once per value. SQLite searches an IN list by
    index and keeps it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return stmt.where(column.in_(list(values)))
    from sqlalchemy.dialects.postgresql import ARRAY  # noqa: PLC0415 - PostgreSQL's dialect loads only there

    wanted = (
        func.unnest(bindparam(None, list(values), type_=ARRAY(String))).table_valued("key").render_derived("wanted")
    )
    return stmt.join(wanted, column == wanted.c.key)
