"""One renderer per format for any `Document`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consultflow.domain.document import Document, Table
from consultflow.domain.errors import ValidationError
from consultflow.domain.text import without_control_characters
from consultflow.export.files import write_new_file
from consultflow.export.text import display_width, table

FORMATS = ("table", "markdown", "csv", "xlsx", "json")
BINARY_FORMATS = frozenset({"xlsx"})


def to_text(doc: Document) -> str:
    """For the terminal."""
    parts = [doc.title, doc.subtitle]
    for t in doc.tables:
        parts += ["", f"{t.title}", table(t.headers, t.rows)]
    parts += [f"* {n}" for n in doc.notes]
    return "\n".join(parts) + "\n"


def _md_cell(value: object) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def to_markdown(doc: Document) -> str:
    """For publishing: a heading per table and pipe tables."""
    out = [f"# {doc.title}", "", doc.subtitle, ""]
    for t in doc.tables:
        out += [f"## {t.title}", ""]
        if not t.rows:
            out += ["—", ""]
            continue
        out.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
        out.append("|" + "|".join("---" for _ in t.headers) + "|")
        out += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.rows]
        out.append("")
    out += [f"> {n}" for n in doc.notes]
    return "\n".join(out).rstrip() + "\n"


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


def to_csv(doc: Document) -> str:
    """For Excel: sections of title, header and rows; saved as UTF-8 with a BOM so Chinese opens right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_cell(doc.title)])
    writer.writerow([_csv_cell(doc.subtitle)])
    for t in doc.tables:
        writer.writerow([])
        writer.writerow([_csv_cell(t.title)])
        writer.writerow([_csv_cell(h) for h in t.headers])
        writer.writerows([_csv_cell(v) for v in row] for row in t.rows)
    return buffer.getvalue()


def _sheet_title(t: Table, used: set[str]) -> str:
    base = "".join(ch for ch in t.title if ch not in "[]:*?/\\")[:28] or t.key[:28]
    title, n = base, 2
    while title in used:
        title, n = f"{base[:26]}~{n}", n + 1
    used.add(title)
    return title


def to_xlsx(doc: Document) -> bytes:
    """One sheet per table, numbers as numbers, bold headers, widths that fit Chinese text."""
    from openpyxl import Workbook  # noqa: PLC0415 - loaded only when an XLSX is asked for
    from openpyxl.styles import Font  # noqa: PLC0415

    book = Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "说明" if any(ord(ch) > 0x2E80 for ch in doc.title) else "About"
    _append_text_safe(cover, [doc.title])
    _append_text_safe(cover, [doc.subtitle])
    cover["A1"].font = Font(bold=True, size=14)
    used = {cover.title}
    for t in doc.tables:
        sheet = book.create_sheet(_sheet_title(t, used))
        _append_text_safe(sheet, list(t.headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in t.rows:
            _append_text_safe(sheet, list(row))
        for i, header in enumerate(t.headers):
            width = max([display_width(str(header))] + [display_width(str(r[i] or "")) for r in t.rows])
            sheet.column_dimensions[sheet.cell(row=1, column=i + 1).column_letter].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _append_text_safe(sheet: Any, values: list[object]) -> None:
    """Append a row whose texts are stored as text cells: a leading = never becomes a formula."""
    sheet.append([without_control_characters(v) if isinstance(v, str) else v for v in values])
    for cell, value in zip(sheet[sheet.max_row], values, strict=False):
        if isinstance(value, str):
            cell.data_type = "s"


def to_json(doc: Document) -> str:
    """The figures as data, and the tables as shown."""
    document: dict[str, Any] = {
        "title": doc.title,
        "subtitle": doc.subtitle,
        "figures": doc.figures,
        "tables": [
            {"key": t.key, "title": t.title, "headers": list(t.headers), "rows": [list(r) for r in t.rows]}
            for t in doc.tables
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


RENDERERS: dict[str, Callable[[Document], str]] = {
    "table": to_text,
    "markdown": to_markdown,
    "csv": to_csv,
    "json": to_json,
}


def render(doc: Document, fmt: str) -> str | bytes:
    """`doc` in `fmt` (text formats as str, XLSX as bytes)."""
    if fmt == "xlsx":
        return to_xlsx(doc)
    if fmt not in RENDERERS:
        msg = f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}"
        raise ValidationError(msg)
    return RENDERERS[fmt](doc)


def write(doc: Document, fmt: str, path: Path, *, force: bool = False) -> None:
    """Save `doc` to a new file at `path` (or replace it, with `force`); CSV gets the BOM Excel needs."""
    content = render(doc, fmt)
    if isinstance(content, str):
        content = content.encode("utf-8-sig" if fmt == "csv" else "utf-8")
    write_new_file(path, content, force=force)
