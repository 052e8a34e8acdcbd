"""Privacy in every export: contacts never appear; names only as asked."""

from __future__ import annotations

import pytest

from consultflow.domain.document import Document, Row
from consultflow.domain.privacy import pseudonymise
from consultflow.domain.vocabulary import Field
from consultflow.export import formats
from consultflow.services import opinions, people, personal_data, reports
from consultflow.services.context import ServiceContext
from tests.helpers import COORD, EXPERT, PLANNER, Setup, seed, submit


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
    """Chinese names keep their first character and become one length; others keep an initial."""
    assert pseudonymise("张秀英") == "张某某"
    assert pseudonymise("李明") == "李某某"
    assert pseudonymise("Wang Fang") == "W."


def test_a_full_name_report_records_whom_it_shows_before_it_shows_them(sqlite_ctx: ServiceContext) -> None:
    """The plan table names only the people whose opinions a plan section answers, and that read is on record.

    The record is written in the transaction that streams the rows out, before the first: a report
    that fails half-way is taken back with its record (a file appears only whole, and the CLI holds
    full-name output to the terminal until the record has committed).
    """
    setup = seed(sqlite_ctx)
    other = people.add_participant(sqlite_ctx, acting=EXPERT, name="李明", village="金田村")
    adopted = submit(sqlite_ctx, setup)
    submit(sqlite_ctx, Setup(setup.consultation_id, other.id), "另一条意见")
    opinions.fire(sqlite_ctx, acting=EXPERT, opinion_id=adopted, trigger="screen", fields={})
    opinions.fire(
        sqlite_ctx,
        acting=PLANNER,
        opinion_id=adopted,
        trigger="adopt",
        fields={Field.TEXT: "采纳", Field.PLAN_REF: "§2"},
    )

    def show(doc: Document) -> list[Row]:
        return [r for t in doc.tables for r in t.rows]

    rows = reports.use_plan_report(sqlite_ctx, setup.consultation_id, show, names="full", acting=COORD, purpose="核对")
    assert [r[3] for r in rows] == ["张秀英"]
    record = personal_data.access_records(sqlite_ctx)[0]
    assert (record.what, record.participants) == (
        f"plan report of consultation {setup.consultation_id} with full names",
        1,
    )
    account = reports.use_account_report(
        sqlite_ctx, setup.consultation_id, show, names="full", acting=COORD, purpose="核对"
    )
    assert sorted(str(r[1]) for r in account) == ["张秀英", "李明"]
    assert personal_data.access_records(sqlite_ctx)[0].participants == 2

    def fail(_doc: Document) -> None:
        msg = "the terminal went away"
        raise OSError(msg)

    with pytest.raises(OSError, match="terminal"):
        reports.use_account_report(sqlite_ctx, setup.consultation_id, fail, names="full", acting=COORD, purpose="核对")
    assert len(personal_data.access_records(sqlite_ctx)) == 2
