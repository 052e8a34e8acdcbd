"""Reports and bulk output stream: a table read on each pass renders exactly as the same table held, in every format.

The published account of a province is written row by row (never held), so the streamed writers
must give the very bytes the held document gives, and a report that fails half-way must leave no
file behind.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from consultflow.cli.output import emit_json
from consultflow.domain.document import Document, Reread, Row, Table, held
from consultflow.domain.errors import ValidationError
from consultflow.export import formats

_text = st.text(st.characters(codec="utf-8"), max_size=12)
_cell = st.one_of(st.none(), st.integers(-(10**6), 10**6), _text, st.floats(allow_nan=False, allow_infinity=False))
_rows = st.lists(st.tuples(_cell, _cell, _cell), max_size=6)


def _streamed(doc: Document) -> tuple[Document, list[int]]:
    """`doc` with every table and figure list read afresh on each pass; counts the passes."""
    passes = [0]

    def again(rows: tuple[Row, ...]) -> Reread[Row]:
        def source() -> Iterator[Row]:
            passes[0] += 1
            yield from rows

        return Reread(source)

    tables = tuple(Table(t.key, t.title, t.headers, again(tuple(t.rows))) for t in doc.tables)
    items = doc.figures["items"]
    assert isinstance(items, list)
    figures = {**doc.figures, "items": Reread(lambda: iter(items)), "nested": {"more": Reread(lambda: iter(items))}}
    return Document(doc.title, doc.subtitle, tables, figures, doc.notes), passes


@st.composite
def documents(draw: st.DrawFn) -> Document:
    tables = tuple(
        Table(f"t{n}", draw(_text), ("a", "b", "c"), tuple(draw(_rows))) for n in range(draw(st.integers(0, 3)))
    )
    items = draw(st.lists(st.dictionaries(_text, _cell, max_size=3), max_size=4))
    notes = tuple(draw(st.lists(_text, max_size=2)))
    return Document(draw(_text), draw(_text), tables, {"n": draw(_cell), "items": items}, notes)


@settings(max_examples=150, deadline=None)
@given(documents())
def test_every_text_format_streams_the_bytes_it_would_hold(doc: Document) -> None:
    """A report written row by row gives the same bytes as the report held whole, in table, Markdown, CSV and JSON."""
    streamed, _passes = _streamed(doc)
    for fmt in ("table", "markdown", "csv", "json"):
        assert formats.render(streamed, fmt) == formats.render(held(streamed), fmt), fmt


@settings(max_examples=150, deadline=None)
@given(documents())
def test_streamed_json_is_the_json_of_the_held_document(doc: Document) -> None:
    """A streamed JSON report is the held document's JSON: title, subtitle, figures and every table's rows."""
    streamed, _passes = _streamed(doc)
    whole = held(streamed)
    expected = {
        "title": whole.title,
        "subtitle": whole.subtitle,
        "figures": whole.figures,
        "tables": [
            {"key": t.key, "title": t.title, "headers": list(t.headers), "rows": [list(r) for r in t.rows]}
            for t in whole.tables
        ],
    }
    assert formats.to_json(streamed) == json.dumps(expected, ensure_ascii=False, indent=2)


def test_markdown_ends_as_if_joined_and_stripped() -> None:
    """Trailing blank lines go, blank lines inside stay, the last line loses its trailing spaces."""
    doc = Document("T", "  ", (Table("k", "empty", ("a",), ()),), notes=("last note   ",))
    out = formats.render(doc, "markdown")
    assert out == "# T\n\n  \n\n## empty\n\n—\n\n> last note\n"


def test_an_xlsx_streams_the_same_cells_with_text_kept_as_text(tmp_path: Path) -> None:
    """A streamed spreadsheet has the same cells, keeps formula-like text as text, and a bold frozen header row."""
    rows: tuple[Row, ...] = (("=1+1", 2, "#N/A"), ("中文内容", None, 3.5))
    doc = Document("标题", "sub", (Table("k", "表", ("a", "b", "c"), rows),))
    streamed, passes = _streamed(Document(doc.title, doc.subtitle, doc.tables, {"items": []}))
    formats.write(streamed, "xlsx", tmp_path / "r.xlsx")
    assert passes[0] == 2  # the widths, then the rows
    book = load_workbook(tmp_path / "r.xlsx")
    sheet = book.worksheets[1]
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert values == [["a", "b", "c"], ["=1+1", 2, "#N/A"], ["中文内容", None, 3.5]]
    assert sheet["A2"].data_type == "s"
    assert sheet["C2"].data_type == "s"
    assert sheet["A1"].font.b
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 10  # 中文内容 is 8 columns wide, plus 2


def _failing_document() -> Document:
    def rows() -> Iterator[Row]:
        yield ("one", 1)
        msg = "the database went away"
        raise RuntimeError(msg)

    return Document("T", "S", (Table("k", "K", ("a", "b"), Reread(rows)),))


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "table", "xlsx"])
def test_a_report_that_fails_half_way_leaves_no_file(tmp_path: Path, fmt: str) -> None:
    """A report that fails half way leaves no file behind, in any format."""
    target = tmp_path / f"report.{fmt}"
    with pytest.raises(RuntimeError):
        formats.write(_failing_document(), fmt, target)
    assert list(tmp_path.iterdir()) == []


def test_a_forced_report_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    """A report written with force that fails half way leaves the old file as it was."""
    target = tmp_path / "report.csv"
    target.write_text("last month's account", encoding="utf-8")
    with pytest.raises(RuntimeError):
        formats.write(_failing_document(), "csv", target, force=True)
    assert target.read_text(encoding="utf-8") == "last month's account"
    assert list(tmp_path.iterdir()) == [target]


def test_an_existing_file_is_refused_before_any_row_is_read(tmp_path: Path) -> None:
    """A report onto an existing file is refused before any row is read, and the file is kept."""
    target = tmp_path / "report.csv"
    target.write_text("kept", encoding="utf-8")
    read: list[int] = []

    def rows() -> Iterator[Row]:
        read.append(1)
        yield ("x",)

    doc = Document("T", "S", (Table("k", "K", ("a",), Reread(rows)),))
    with pytest.raises(ValidationError, match="already a file"):
        formats.write(doc, "csv", target)
    assert read == []
    assert target.read_text(encoding="utf-8") == "kept"


def test_streamed_text_goes_out_as_written() -> None:
    """A report streamed to the terminal comes out exactly as the table would be written."""
    out = io.StringIO()
    doc = Document("T", "S", (Table("k", "K", ("a",), Reread(lambda: iter([("x",), ("yy",)]))),))
    formats.write_out(doc, "table", out)
    assert out.getvalue() == "T\nS\n\nK\na\n--\nx\nyy\n"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_cell, st.dictionaries(_text, _cell, max_size=3), st.lists(_cell, max_size=3)), max_size=5))
def test_a_bulk_commands_json_goes_out_item_by_item_as_one_document(items: list[object]) -> None:
    """`--json` of 800,000 moved opinions is written as it goes, and is the same document as held."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit_json(items, ZoneInfo("Asia/Shanghai"))
    assert out.getvalue() == json.dumps(items, ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True)
class _Report:
    name: str
    rows: Iterable[object]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_cell, st.dictionaries(_text, _cell, max_size=3)), max_size=5))
def test_a_streamed_result_is_the_json_of_the_same_result_held(items: list[object]) -> None:
    """`audit as-of --json` hands over an iterator, `audit rounds --json` a report whose rows are a Reread:
    both are written as they are read, and are the documents their held forms give."""
    tz = ZoneInfo("Asia/Shanghai")
    for streamed, whole in (
        (iter(items), items),
        (_Report("x", Reread(lambda: iter(items))), {"name": "x", "rows": items}),
    ):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            emit_json(streamed, tz)
        assert out.getvalue() == json.dumps(whole, ensure_ascii=False, indent=2) + "\n"
