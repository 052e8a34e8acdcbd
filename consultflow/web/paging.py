"""The published account and the plan table a page at a time, for phones.

A page shows `PAGE_ROWS` opinions, the report's tables one after another (a table cut by a page
break goes on on the next). Rows stream from the report's queries and only the page's rows are
kept; a page further in reads the rows before it (at most `PUBLIC_REPORT_ROWS` of them), so pages
stop there and say so: a province's whole account is a file (`consultflow report account`).
Every page is linkable: `?round=`, `?category=` and `?page=` in its address.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from consultflow.domain.document import Document, Row, Table
from consultflow.web.security import PUBLIC_REPORT_ROWS

PAGE_ROWS = 50
LAST_PAGE = max(1, PUBLIC_REPORT_ROWS // PAGE_ROWS)


@dataclass(frozen=True)
class Part:
    """One table's rows on this page; `first` is the place of its first row in the whole table (from 1)."""

    table: Table
    first: int


@dataclass(frozen=True)
class Window:
    """One page of a report: its parts, the tables one may narrow it to, and whether more pages follow."""

    title: str
    subtitle: str
    parts: tuple[Part, ...]
    choices: tuple[tuple[str, str], ...]  # (table key, title): the categories of the account
    page: int
    more: bool  # a next page exists within reach
    deep: bool  # rows exist past the last page a visitor can reach


def window(doc: Document, *, only: str | None, page: int) -> Window | None:
    """Page `page` (from 1) of `doc`'s rows, of the table keyed `only` or of all; None for no such table or page."""
    choices = tuple((t.key, t.title) for t in doc.tables)
    if (only is not None and only not in dict(choices)) or not 1 <= page <= LAST_PAGE:
        return None
    start, stop = (page - 1) * PAGE_ROWS, page * PAGE_ROWS
    position, parts, more = 0, [], False
    for table in doc.tables:
        if only is not None and table.key != only:
            continue
        rows: list[Row] = []
        first = 0
        for index, row in enumerate(table.rows):
            if position >= stop:
                more = True
                break
            if position >= start:
                first = first or index + 1
                rows.append(row)
            position += 1
        if rows:
            parts.append(Part(replace(table, rows=tuple(rows)), first))
        if more:
            break
    if page > 1 and not parts:
        return None
    deep = more and page == LAST_PAGE
    return Window(doc.title, doc.subtitle, tuple(parts), choices, page, more and not deep, deep)


def href(path: str, **params: object) -> str:
    """`path` with the query of the given parameters that are set (None, "" and page 1 are left out)."""
    query = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
    return f"{path}?{urlencode(query)}" if query else path
