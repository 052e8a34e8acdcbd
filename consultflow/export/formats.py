"""One renderer per format for any `Document`."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from consultflow import extras
from consultflow.domain.document import Cell, Document, Reread, Row, Table
from consultflow.domain.errors import ValidationError
from consultflow.domain.text import without_control_characters
from consultflow.export.files import write_new_file_from
from consultflow.export.text import display_width, table_lines

FORMATS = ("table", "markdown", "csv", "xlsx", "json")
BINARY_FORMATS = frozenset({"xlsx"})


def write_text(doc: Document, out: TextIO) -> None:
    """For the terminal."""
    lines = _Lines(out, strip_end=False)
    lines.add(doc.title, doc.subtitle)
    for t in doc.tables:
        lines.add("", f"{t.title}")
        lines.extend(table_lines(t.headers, t.rows))
    lines.extend(f"* {n}" for n in doc.notes)
    lines.close()


class _Lines:
    """Lines joined by newlines as they are written, ending in one newline.

    With `strip_end`, trailing blank lines and the last line's trailing spaces are dropped, as
    joining them all and calling `rstrip()` would, without holding the lines: one is held back.
    """

    def __init__(self, out: TextIO, *, strip_end: bool) -> None:
        self.out, self.strip_end = out, strip_end
        self.blank: list[str] = []
        self.last: str | None = None

    def add(self, *lines: str) -> None:
        self.extend(lines)

    def extend(self, lines: Iterable[str]) -> None:
        """Each of `lines`, as it comes (a generator is not held)."""
        for line in lines:
            if self.strip_end and not line.strip():
                self.blank.append(line)
                continue
            if self.last is not None:
                self.out.write(self.last + "\n")
            self.out.write("".join(b + "\n" for b in self.blank))
            self.blank.clear()
            self.last = line

    def close(self) -> None:
        if self.last is not None:
            self.out.write((self.last.rstrip() if self.strip_end else self.last) + "\n")
        elif not self.strip_end:
            self.out.write("\n")


def _md_cell(value: object) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def write_markdown(doc: Document, out: TextIO) -> None:
    """For publishing: a heading per table and pipe tables."""
    lines = _Lines(out, strip_end=True)
    lines.add(f"# {doc.title}", "", doc.subtitle, "")
    for t in doc.tables:
        lines.add(f"## {t.title}", "")
        rows = iter(t.rows)
        first = next(rows, None)
        if first is None:
            lines.add("—", "")
            continue
        lines.add("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
        lines.add("|" + "|".join("---" for _ in t.headers) + "|")
        lines.add("| " + " | ".join(_md_cell(v) for v in first) + " |")
        lines.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows)
        lines.add("")
    lines.extend(f"> {n}" for n in doc.notes)
    lines.close()


_EVALUATED_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """Text a spreadsheet shows as written: no formula (OWASP "CSV injection"), no control character.

    A cell starting with = + - @ tab or CR is evaluated by Excel and LibreOffice; a leading
    apostrophe makes it text. A lone "-" (an empty placeholder) cannot be a formula and stays.
    """
    value = without_control_characters(value)
    if value.startswith(_EVALUATED_PREFIXES) and value != "-":
        return "'" + value
    return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    return spreadsheet_text(value) if isinstance(value, str) else value


def write_csv(doc: Document, out: TextIO) -> None:
    """For Excel: sections of title, header and rows (saved as UTF-8 with a BOM so Chinese opens right)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_cell(doc.title)])
    writer.writerow([_csv_cell(doc.subtitle)])
    for t in doc.tables:
        writer.writerow([])
        writer.writerow([_csv_cell(t.title)])
        writer.writerow([_csv_cell(h) for h in t.headers])
        writer.writerows([_csv_cell(v) for v in row] for row in t.rows)


def _sheet_title(t: Table, used: set[str]) -> str:
    base = "".join(ch for ch in t.title if ch not in "[]:*?/\\")[:28] or t.key[:28]
    title, n = base, 2
    while title in used:
        title, n = f"{base[:26]}~{n}", n + 1
    used.add(title)
    return title


def write_xlsx(doc: Document, out: BinaryIO) -> None:
    """One sheet per table, numbers as numbers, bold headers, widths that fit Chinese text.

    Written in openpyxl's write-only mode, so rows stream to the file: a pass over each table
    finds the column widths (which must precede the rows), a second writes them.
    """
    from openpyxl import Workbook  # noqa: PLC0415 - loaded only when an XLSX is asked for
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415
    from openpyxl.styles import Font  # noqa: PLC0415
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    book = Workbook(write_only=True)
    cover = book.create_sheet("说明" if any(ord(ch) > 0x2E80 for ch in doc.title) else "About")

    def cells(sheet: Any, values: Iterable[Cell], font: Any = None) -> list[object]:
        """Texts stored as text cells: a leading = never becomes a formula, nor # an error value."""
        row: list[object] = []
        for value in values:
            shown = without_control_characters(value) if isinstance(value, str) else value
            if font is not None or (isinstance(shown, str) and shown[:1] in ("=", "#")):
                cell = WriteOnlyCell(sheet, value=shown)
                if isinstance(shown, str):
                    cell.data_type = "s"
                if font is not None:
                    cell.font = font
                row.append(cell)
            else:
                row.append(shown)
        return row

    try:
        cover.append(cells(cover, [doc.title], Font(bold=True, size=14)))
        cover.append(cells(cover, [doc.subtitle]))
        used = {cover.title}
        for t in doc.tables:
            sheet = book.create_sheet(_sheet_title(t, used))
            widths = [display_width(str(h)) for h in t.headers]
            for row in t.rows:
                for i, value in enumerate(row):
                    widths[i] = max(widths[i], display_width(str(value or "")))
            for i, width in enumerate(widths):
                sheet.column_dimensions[get_column_letter(i + 1)].width = min(max(width + 2, 8), 60)
            sheet.freeze_panes = "A2"
            sheet.append(cells(sheet, t.headers, Font(bold=True)))
            for row in t.rows:
                sheet.append(cells(sheet, row))
    except BaseException:
        for unfinished in book.worksheets:  # end each sheet's stream; openpyxl removes its files at exit
            with contextlib.suppress(Exception):
                unfinished.close()
        raise
    book.save(out)


def write_json(doc: Document, out: TextIO) -> None:
    """The figures as data, and the tables as shown: as `json.dumps(..., indent=2)` would, streamed."""
    document: dict[str, object] = {
        "title": doc.title,
        "subtitle": doc.subtitle,
        "figures": doc.figures,
        "tables": [
            {"key": t.key, "title": t.title, "headers": list(t.headers), "rows": _Listed(t.rows)}
            | ({"cut": True} if t.cut else {})
            for t in doc.tables
        ],
    }
    _dump(document, out, "")


def dump_json(value: object, out: TextIO) -> None:
    """`value` as `json.dumps(value, ensure_ascii=False, indent=2)` would write it, its streamed parts as read."""
    _dump(value, out, "")


class _Listed:
    """Rows written as JSON arrays of arrays, as they come."""

    __slots__ = ("rows",)

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = rows


def _dump(value: object, out: TextIO, indent: str) -> None:
    """`value` as indented JSON; held parts in one `json.dumps` call, streamed parts item by item."""
    if isinstance(value, (Reread, _Listed)):
        items: Iterator[object] = iter(value.rows if isinstance(value, _Listed) else value)
        first = next(items, _NOTHING)
        if first is _NOTHING:
            out.write("[]")
            return
        inner = indent + "  "
        out.write("[\n" + inner)
        _dump(first, out, inner)
        for item in items:
            out.write(",\n" + inner)
            _dump(item, out, inner)
        out.write("\n" + indent + "]")
    elif isinstance(value, Mapping) and value and any(_streams(v) for v in value.values()):
        inner = indent + "  "
        out.write("{")
        for n, (key, member) in enumerate(value.items()):
            out.write(("," if n else "") + "\n" + inner + json.dumps(str(key), ensure_ascii=False) + ": ")
            _dump(member, out, inner)
        out.write("\n" + indent + "}")
    elif isinstance(value, list) and any(_streams(v) for v in value):
        inner = indent + "  "
        out.write("[")
        for n, member in enumerate(value):
            out.write(("," if n else "") + "\n" + inner)
            _dump(member, out, inner)
        out.write("\n" + indent + "]")
    else:
        text = json.dumps(value, ensure_ascii=False, indent=2)
        out.write(text.replace("\n", "\n" + indent) if indent else text)


_NOTHING = object()


def _streams(value: object) -> bool:
    if isinstance(value, (Reread, _Listed)):
        return True
    if isinstance(value, Mapping):
        return any(_streams(v) for v in value.values())
    if isinstance(value, list):
        return any(_streams(v) for v in value)
    return False


TEXT_WRITERS: dict[str, Callable[[Document, TextIO], None]] = {
    "table": write_text,
    "markdown": write_markdown,
    "csv": write_csv,
    "json": write_json,
}


def _checked(fmt: str) -> None:
    if fmt != "xlsx" and fmt not in TEXT_WRITERS:
        msg = f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}"
        raise ValidationError(msg)
    if fmt == "xlsx":
        extras.require(extras.XLSX)  # before any file is opened


def render(doc: Document, fmt: str) -> str | bytes:
    """`doc` in `fmt`, held whole (text formats as str, XLSX as bytes): for small documents and the web."""
    _checked(fmt)
    if fmt == "xlsx":
        binary = io.BytesIO()
        write_xlsx(doc, binary)
        return binary.getvalue()
    text = io.StringIO()
    TEXT_WRITERS[fmt](doc, text)
    return text.getvalue()


def to_json(doc: Document) -> str:
    """The document as JSON text."""
    return str(render(doc, "json"))


def write_out(doc: Document, fmt: str, out: TextIO) -> None:
    """`doc` in a text format, streamed to `out` (the terminal)."""
    _checked(fmt)
    TEXT_WRITERS[fmt](doc, out)


def write(doc: Document, fmt: str, path: Path, *, force: bool = False) -> None:
    """Stream `doc` to a new file at `path` (or replace it, with `force`); CSV gets the BOM Excel needs."""
    _checked(fmt)
    write_new_file_from(path, lambda out: write_binary(doc, fmt, out), force=force)


def write_binary(doc: Document, fmt: str, out: BinaryIO) -> None:
    """`doc` in `fmt` as the bytes of its file, streamed to `out`."""
    _checked(fmt)
    if fmt == "xlsx":
        write_xlsx(doc, out)
        return
    text = io.TextIOWrapper(out, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
    TEXT_WRITERS[fmt](doc, text)
    text.flush()
    text.detach()
