"""A CSV or XLSX file as a header and re-readable rows, streamed: memory stays flat as files grow.

CSV comes as UTF-8, UTF-8 with a BOM (Excel's "CSV UTF-8") or GB18030 (Excel's plain "CSV" on a
Chinese Windows, and what GBK files are a subset of); the encoding is detected from the bytes
unless given. XLSX is read in openpyxl's read-only mode. Row numbers are as a spreadsheet shows
them: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zipfile import BadZipFile

from consultflow.domain.errors import ValidationError

SAMPLE_BYTES = 1 << 16
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class Table:
    """A file's header and a way to read its rows from the start, as often as needed."""

    path: Path
    format: str
    encoding: str | None
    headers: list[str]
    sheet: str | None = None

    def rows(self) -> Iterator[tuple[int, Sequence[str]]]:
        """(row number, cells) for every row below the header that is not blank."""
        source = _csv_rows(self.path, self.encoding or "utf-8") if self.format == "csv" else _xlsx_rows(self)
        for line, cells in source:
            if line == 1:
                continue
            if any(c.strip() for c in cells):
                yield line, cells


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig with a BOM, utf-8 when the bytes decode as such, else gb18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def open_table(
    path: Path, *, file_format: str | None = None, encoding: str | None = None, sheet: str | None = None
) -> Table:
    """The file's header, its format and encoding; refuses what cannot be read in one clear line.

    Raises:
        ValidationError: unknown format or encoding, unreadable file, missing sheet, no header.
    """
    chosen = file_format or path.suffix.lower().lstrip(".")
    if chosen not in FORMATS:
        msg = f"cannot tell the format of {path.name}; give --format ({', '.join(FORMATS)})"
        raise ValidationError(msg)
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            msg = f"unknown encoding {encoding!r}; e.g. utf-8, utf-8-sig, gb18030"
            raise ValidationError(msg) from None
    try:
        if chosen == "csv":
            with path.open("rb") as raw:
                found = encoding or detect_encoding(raw.read(SAMPLE_BYTES))
            table = Table(path, chosen, found, [])
        else:
            table = Table(path, chosen, None, [], sheet)
        first = next(_csv_rows(path, table.encoding or "") if chosen == "csv" else _xlsx_rows(table), None)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ValidationError(msg) from None
    if first is None or not any(h.strip() for h in first[1]):
        msg = f"{path.name} has no header row"
        raise ValidationError(msg)
    return Table(path, chosen, table.encoding, [str(h) for h in first[1]], sheet)


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, Sequence[str]]]:
    with path.open(encoding=encoding, newline="") as handle:
        try:
            yield from enumerate(csv.reader(handle), start=1)
        except UnicodeDecodeError as exc:
            msg = f"{path.name} is not {encoding} text near byte {exc.start}; give --encoding (e.g. gb18030, utf-8)"
            raise ValidationError(msg) from None
        except csv.Error as exc:
            msg = f"{path.name} is not a readable CSV file: {exc}"
            raise ValidationError(msg) from None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a serial or a phone number typed as a number
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _xlsx_rows(table: Table) -> Iterator[tuple[int, Sequence[str]]]:
    from openpyxl import load_workbook  # noqa: PLC0415 - only imports need it
    from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

    try:
        book = load_workbook(table.path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, KeyError, ValueError, OSError) as exc:
        msg = f"{table.path.name} is not a readable XLSX workbook ({type(exc).__name__})"
        raise ValidationError(msg) from None
    try:
        if table.sheet is not None and table.sheet not in book.sheetnames:
            msg = f"no sheet {table.sheet!r} in {table.path.name}; it has: {', '.join(book.sheetnames)}"
            raise ValidationError(msg)
        sheet = book[table.sheet] if table.sheet else book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell(v) for v in values]
    finally:
        book.close()
