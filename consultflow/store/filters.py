"""Turning a filter's optional values into WHERE clauses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement


def equal_where_given(pairs: Iterable[tuple[Any, object]]) -> list[ColumnElement[bool]]:
    """`column == value` for each pair whose value was given (not None): every filter must hold."""
    return [column == value for column, value in pairs if value is not None]
