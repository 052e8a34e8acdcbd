"""Reading a plan draft's file: Markdown, CSV, JSON, or DOCX (python-docx, the `plan` extra).

A DOCX file's headings (Heading 1…, 标题 1…) are sections; its numbered list paragraphs (List
Number) are clauses with their numbers; its other paragraphs are clauses by their place.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from consultflow import extras
from consultflow.domain.errors import ValidationError
from consultflow.domain.plan import Clause, format_of, parse_markdown, parse_text

MAX_FILE_BYTES = 20 * 1024 * 1024


def read_plan(path: Path) -> list[Clause]:
    """The clauses of the plan draft in `path`; one line naming what is wrong otherwise."""
    fmt = format_of(path.name)
    try:
        size = path.stat().st_size
    except OSError as exc:
        msg = f"cannot read {path.name}: {exc.strerror or exc}"
        raise ValidationError(msg) from None
    if size > MAX_FILE_BYTES:
        msg = f"{path.name} is {size} bytes; a plan draft is at most {MAX_FILE_BYTES} bytes"
        raise ValidationError(msg)
    if fmt == "docx":
        return parse_markdown(docx_as_markdown(path))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        msg = f"{path.name} is not UTF-8 text; save it as UTF-8"
        raise ValidationError(msg) from None
    except OSError as exc:
        msg = f"cannot read {path.name}: {exc.strerror or exc}"
        raise ValidationError(msg) from None
    return parse_text(text, fmt)


def _heading_level(style: str) -> int:
    for prefix in ("heading ", "标题 ", "标题"):
        if style.casefold().startswith(prefix):
            rest = style[len(prefix) :].strip()
            return int(rest) if rest.isdigit() else 1
    return 1 if style.casefold() == "title" else 0


def docx_as_markdown(path: Path) -> str:
    """A DOCX file's headings and paragraphs as the Markdown `parse_markdown` reads."""
    try:
        import docx  # noqa: PLC0415 - the optional `plan` extra, loaded only for a DOCX file
    except ImportError:
        msg = extras.message("reading a .docx plan", "plan")
        raise ValidationError(msg) from None
    from docx.opc.exceptions import OpcError  # noqa: PLC0415 - as above

    try:
        document: Any = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, OpcError) as exc:
        msg = f"{path.name} is not a readable DOCX file ({type(exc).__name__})"
        raise ValidationError(msg) from None
    lines: list[str] = []
    numbered = 0
    for paragraph in document.paragraphs:
        text = " ".join(str(paragraph.text).split())
        if not text:
            continue
        style = str(getattr(paragraph.style, "name", "") or "")
        level = _heading_level(style)
        if level:
            numbered = 0
            lines += ["", "#" * min(level, 6) + " " + text, ""]
        elif "list number" in style.casefold():
            numbered += 1
            lines += [f"{numbered}. {text}", ""]
        else:
            lines += [text, ""]
    return "\n".join(lines)
