"""Privacy in every export: contacts never appear; names only as asked."""

from __future__ import annotations

import pytest

from consultflow.domain.privacy import pseudonymise
from consultflow.domain.vocabulary import Field
from consultflow.export import formats
from consultflow.services import opinions, reports
from consultflow.services.context import ServiceContext
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json", "xlsx"])
def test_no_contact_in_any_report_format(sqlite_ctx: ServiceContext, fmt: str) -> None:
    """The participant's phone number is in the database but in no report, whatever the format."""
    setup = seed(sqlite_ctx)
    oid = submit(sqlite_ctx, setup)
    opinions.fire(sqlite_ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(
        sqlite_ctx,
        acting=PLANNER,
        opinion_id=oid,
        trigger="adopt",
        fields={Field.TEXT: "采纳", Field.PLAN_REF: "v2 §5.3"},
    )
    for doc in (
        reports.adoption_report(sqlite_ctx, setup.consultation_id),
        reports.account_report(sqlite_ctx, setup.consultation_id, names="full", acting=COORD, purpose="核对"),
        reports.plan_report(sqlite_ctx, setup.consultation_id, names="full", acting=COORD, purpose="核对"),
    ):
        content = formats.render(doc, fmt)
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        assert b"13812345678" not in data


def test_names_are_pseudonymised_or_left_out(sqlite_ctx: ServiceContext) -> None:
    """Pseudonym keeps the surname; 'none' drops the column."""
    setup = seed(sqlite_ctx)
    submit(sqlite_ctx, setup)
    pseudo = reports.account_report(sqlite_ctx, setup.consultation_id)
    rows = [r for t in pseudo.tables for r in t.rows]
    assert rows[0][1] == "张某某"
    hidden = reports.account_report(sqlite_ctx, setup.consultation_id, names="none")
    table = next(t for t in hidden.tables if t.rows)
    assert "提出人" not in table.headers
    assert all("张" not in str(c) for r in table.rows for c in r)


def test_pseudonymise_forms() -> None:
    """Chinese names keep the surname; others keep an initial."""
    assert pseudonymise("张秀英") == "张某某"
    assert pseudonymise("李明") == "李某"
    assert pseudonymise("Wang Fang") == "W."
