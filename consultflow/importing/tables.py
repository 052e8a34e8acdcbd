"""A CSV, TSV, XLSX or XLS file as its first rows and re-readable rows, streamed: memory stays flat.

CSV comes as UTF-8, UTF-8 with a BOM (Excel's "CSV UTF-8") or GB18030 (Excel's plain "CSV" on a
Chinese Windows, and what GBK files are a subset of); the encoding is detected from the bytes
unless given. Tab-separated text (.tsv, or a .csv/.txt whose first line has tabs and no commas)
is read the same way. XLSX is read in openpyxl's read-only mode, XLS with xlrd (the `xls` extra).
Row numbers are as a spreadsheet shows them; the header is found among the first rows
(consultflow.domain.intake.find_header), so title rows above it are fine.
"""

from __future__ import annotations

import codecs
import csv
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from zipfile import BadZipFile

from consultflow import extras
from consultflow.domain.errors import ValidationError

SAMPLE_BYTES = 1 << 16
MAX_LINE_CHARS = 1 << 20  # a CSV line longer than this is not a table's row (an endless stream, a binary file)
FORMATS = ("csv", "tsv", "xlsx", "xls")
HEAD_ROWS = 15  # rows read up front, to find the header below title rows


@dataclass(frozen=True)
class Table:
    """A file's header and a way to read its rows from the start, as often as needed."""

    path: Path
    format: str
    encoding: str | None
    headers: list[str]
    sheet: str | None = None
    header_row: int = 1
    head: list[tuple[int, list[str]]] = field(default_factory=list)  # the first rows, header among them

    def with_header(self, line: int) -> Table:
        """The table with its header at `line` (one of `head`)."""
        cells = next(c for n, c in self.head if n == line)
        return replace(self, header_row=line, headers=[str(h) for h in cells])

    def rows(self) -> Iterator[tuple[int, Sequence[str]]]:
        """(row number, cells) for every row below the header that is not blank."""
        for line, cells in _rows(self):
            if line <= self.header_row:
                continue
            if any(c.strip() for c in cells):
                yield line, cells


def _rows(table: Table) -> Iterator[tuple[int, Sequence[str]]]:
    if table.format in ("csv", "tsv"):
        return _csv_rows(table.path, table.encoding or "utf-8", "\t" if table.format == "tsv" else ",")
    return _xls_rows(table) if table.format == "xls" else _xlsx_rows(table)


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig with a BOM, utf-16 with its BOM, utf-8 when the bytes decode as such, else gb18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
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
    if chosen == "txt":
        chosen = "csv"  # tab-separated or not: told by its first line below
    if chosen not in FORMATS:
        msg = f"cannot tell the format of {path.name}; give --format ({', '.join(FORMATS)})"
        raise ValidationError(msg)
    if chosen == "xlsx":
        extras.require(extras.XLSX)  # openpyxl is the xlsx extra
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            msg = f"unknown encoding {encoding!r}; e.g. utf-8, utf-8-sig, gb18030"
            raise ValidationError(msg) from None
    try:
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            msg = f"{path} is not a regular file (a device, pipe or folder); give a saved CSV, TSV, XLSX or XLS file"
            raise ValidationError(msg)
        if chosen in ("csv", "tsv"):
            with path.open("rb") as raw:
                sample = raw.read(SAMPLE_BYTES)
            found = encoding or detect_encoding(sample)
            if b"\x00" in sample and not found.startswith("utf-16"):
                msg = (
                    f"{path.name} holds NUL bytes, so it is not {found} text: perhaps UTF-16 without its "
                    "byte-order mark (give --encoding utf-16-le) or not a text file at all"
                )
                raise ValidationError(msg)
            if chosen == "csv" and file_format is None:
                line = sample.split(b"\n", 1)[0]
                chosen = "tsv" if b"\t" in line and b"," not in line else "csv"
            table = Table(path, chosen, found, [])
        else:
            table = Table(path, chosen, None, [], sheet)
            table = replace(table, sheet=_sheet_name(table))
        head = []
        for number, cells in _rows(table):
            head.append((number, [str(c) for c in cells]))
            if len(head) == HEAD_ROWS:
                break
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ValidationError(msg) from None
    if not any(any(c.strip() for c in cells) for _, cells in head):
        msg = f"{path.name} has no header row"
        raise ValidationError(msg)
    return replace(table, head=head).with_header(head[0][0])


def _sheet_name(table: Table) -> str | None:
    """The sheet a workbook's rows are read from: the one asked for, or the first."""
    if table.sheet is not None:
        return table.sheet
    for _ in _rows(table):
        break  # opening it checks it is a workbook
    if table.format == "xls":
        import xlrd  # noqa: PLC0415 - only .xls imports need it

        book = xlrd.open_workbook(str(table.path), on_demand=True)
        try:
            return str(book.sheet_names()[0])
        finally:
            book.release_resources()
    from openpyxl import load_workbook  # noqa: PLC0415

    book = load_workbook(table.path, read_only=True)
    try:
        return str(book.sheetnames[0])
    finally:
        book.close()


def _bounded_lines(handle: Iterator[str], name: str) -> Iterator[str]:
    """The file's lines, refusing one past MAX_LINE_CHARS (so memory stays bounded on any input)."""
    read = getattr(handle, "readline")  # noqa: B009 - a text file's readline(limit)
    while line := read(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            msg = f"{name} has a line over {MAX_LINE_CHARS:,} characters: it is not a CSV table"
            raise ValidationError(msg)
        yield line


def _csv_rows(path: Path, encoding: str, delimiter: str = ",") -> Iterator[tuple[int, Sequence[str]]]:
    with path.open(encoding=encoding, newline="") as handle:
        try:
            yield from enumerate(csv.reader(_bounded_lines(handle, path.name), delimiter=delimiter), start=1)
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
    except (InvalidFileException, BadZipFile, KeyError, ValueError, OSError, SyntaxError, zlib.error, EOFError) as exc:
        msg = f"{table.path.name} is not a readable XLSX workbook ({_why(exc)})"
        raise ValidationError(msg) from None
    try:
        if table.sheet is not None and table.sheet not in book.sheetnames:
            msg = f"no sheet {table.sheet!r} in {table.path.name}; it has: {', '.join(book.sheetnames)}"
            raise ValidationError(msg)
        sheet = book[table.sheet] if table.sheet else book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell(v) for v in values]
    except (BadZipFile, KeyError, ValueError, SyntaxError, zlib.error, EOFError) as exc:  # a sheet damaged inside
        msg = f"{table.path.name} is not a readable XLSX workbook ({_why(exc)})"
        raise ValidationError(msg) from None
    finally:
        book.close()


def _why(exc: BaseException) -> str:
    """A damaged workbook's problem in a few words (SyntaxError: its XML is broken)."""
    if isinstance(exc, SyntaxError):
        return "its XML is broken"
    if isinstance(exc, (BadZipFile, zlib.error, EOFError)):
        return "it is not a whole ZIP file"
    if isinstance(exc, KeyError):
        return "a ZIP file, but no workbook inside"
    return type(exc).__name__


def _xls_rows(table: Table) -> Iterator[tuple[int, Sequence[str]]]:
    try:
        import xlrd  # noqa: PLC0415 - only .xls imports need it
    except ImportError:
        msg = f"{table.path.name}: {extras.message('reading .xls', 'xls')}; or save it as .xlsx"
        raise ValidationError(msg) from None
    try:
        book = xlrd.open_workbook(str(table.path), on_demand=True)
    except (xlrd.XLRDError, ValueError, AssertionError, IndexError, KeyError, OSError) as exc:
        msg = f"{table.path.name} is not a readable XLS workbook ({type(exc).__name__})"
        raise ValidationError(msg) from None
    try:
        names = book.sheet_names()
        if table.sheet is not None and table.sheet not in names:
            msg = f"no sheet {table.sheet!r} in {table.path.name}; it has: {', '.join(names)}"
            raise ValidationError(msg)
        sheet = book.sheet_by_name(table.sheet) if table.sheet else book.sheet_by_index(0)
        for number in range(sheet.nrows):
            cells = []
            for kind, value in zip(sheet.row_types(number), sheet.row_values(number), strict=True):
                if kind == xlrd.XL_CELL_DATE:
                    value = xlrd.xldate_as_datetime(value, book.datemode)  # noqa: PLW2901
                cells.append(_cell(value))
            yield number + 1, cells
    finally:
        book.release_resources()
