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


def to_csv(doc: Document) -> str:
    """For Excel: sections of title, header and rows; saved as UTF-8 with a BOM so Chinese opens right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([doc.title])
    writer.writerow([doc.subtitle])
    for t in doc.tables:
        writer.writerow([])
        writer.writerow([t.title])
        writer.writerow(t.headers)
        writer.writerows(["" if v is None else v for v in row] for row in t.rows)
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
    cover.append([doc.title])
    cover.append([doc.subtitle])
    cover["A1"].font = Font(bold=True, size=14)
    used = {cover.title}
    for t in doc.tables:
        sheet = book.create_sheet(_sheet_title(t, used))
        sheet.append(list(t.headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in t.rows:
            sheet.append(list(row))
        for i, header in enumerate(t.headers):
            width = max([display_width(str(header))] + [display_width(str(r[i] or "")) for r in t.rows])
            sheet.column_dimensions[sheet.cell(row=1, column=i + 1).column_letter].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


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


def write(doc: Document, fmt: str, path: Path) -> None:
    """Save `doc` to `path`; CSV gets the BOM Excel needs to read UTF-8."""
    content = render(doc, fmt)
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
    except OSError as exc:
        msg = f"cannot write {path}: {exc.strerror}"
        raise ValidationError(msg) from None
