"""The draft plan as data: sections and numbered clauses read from Markdown, CSV or JSON; ratings; a diff.

A clause's number is what makes it the same clause across versions: `2.3` is section 2's third
clause. Markdown headings are sections; under each heading, numbered list items or paragraphs are
its clauses. A structured file (CSV or JSON) names the section, the clause number and the text.
Plan texts are the planners' words, not personal data.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label, resolve_choice

MAX_CLAUSES = 5000
MAX_CLAUSE_CHARS = 5000
MAX_NUMBER_CHARS = 40
MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 2000

#: The three answers of a review (大众点评): satisfied, mostly satisfied, not satisfied.
RATINGS: dict[str, Label] = {
    "satisfied": Label("满意", "Satisfied"),
    "mostly": Label("基本满意", "Mostly satisfied"),
    "not_satisfied": Label("不满意", "Not satisfied"),
}
RATING_ALIASES: dict[str, tuple[str, ...]] = {
    "satisfied": ("s", "yes"),
    "mostly": ("m", "mostly satisfied", "basically satisfied"),
    "not_satisfied": ("n", "no", "unsatisfied", "dissatisfied"),
}
#: Ratings counted as satisfied in the results' share (满意 + 基本满意).
SATISFIED = frozenset({"satisfied", "mostly"})


def resolve_rating(value: str) -> str:
    """The rating `value` names (its key or either label), or one line listing the three allowed."""
    return resolve_choice(value, RATINGS, "rating", RATING_ALIASES)


@dataclass(frozen=True)
class Clause:
    """One clause of a draft: its number (`2.3`), its section, and its text."""

    number: str
    section_no: str
    section_title: str
    text: str


@dataclass(frozen=True)
class ClauseChange:
    """A clause in a diff: added, removed or changed, with what it said before and after."""

    number: str
    change: str  # added, removed, changed
    before: str | None
    after: str | None


def diff(old: Sequence[Clause], new: Sequence[Clause]) -> list[ClauseChange]:
    """What changed between two versions, clause by clause (by number and text), in the new version's order."""
    before = {c.number: c for c in old}
    after = {c.number: c for c in new}
    changes: list[ClauseChange] = []
    for c in new:
        was = before.get(c.number)
        if was is None:
            changes.append(ClauseChange(c.number, "added", None, c.text))
        elif was.text != c.text:  # a section renamed around it leaves the clause as it was
            changes.append(ClauseChange(c.number, "changed", was.text, c.text))
    changes.extend(ClauseChange(c.number, "removed", c.text, None) for c in old if c.number not in after)
    return changes


def checked(clauses: Iterable[Clause]) -> list[Clause]:
    """The clauses of a draft, each checked; refused in one line naming the clause and what is wrong."""
    found: list[Clause] = []
    seen: set[str] = set()
    for c in clauses:
        number = _clean(c.number)
        where = f"clause {number!r}" if number else f"clause {len(found) + 1}"
        if not number or len(number) > MAX_NUMBER_CHARS:
            msg = f"{where}: a clause number is 1 to {MAX_NUMBER_CHARS} characters (such as 2.3)"
            raise ValidationError(msg)
        if number in seen:
            msg = f"clause {number!r} is given twice; each clause number appears once in a draft"
            raise ValidationError(msg)
        text = _clean(c.text)
        if not text:
            msg = f"{where} has no text"
            raise ValidationError(msg)
        if len(text) > MAX_CLAUSE_CHARS:
            msg = f"{where} is {len(text)} characters long; at most {MAX_CLAUSE_CHARS} are allowed"
            raise ValidationError(msg)
        title = _clean(c.section_title)[:MAX_TITLE_CHARS]
        section = _clean(c.section_no)[:MAX_NUMBER_CHARS]
        seen.add(number)
        found.append(Clause(number, section, title, text))
        if len(found) > MAX_CLAUSES:
            msg = f"a draft has at most {MAX_CLAUSES} clauses"
            raise ValidationError(msg)
    if not found:
        msg = "the draft has no clauses: give headings (sections) with numbered items or paragraphs under them"
        raise ValidationError(msg)
    return found


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    return " ".join(ch for ch in text.replace("\u3000", " ").split() if ch.isprintable())


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_NUMBERED = re.compile(r"^\s*(?:(\d+)[.)、．]|[(（](\d+)[)）])\s*(.*)$")
_BULLET = re.compile(r"^\s*[-*+•]\s+(.*)$")
_SECTION_NO = re.compile(r"^(\d+(?:\.\d+)*)[.、．]?\s+(.*)$")
_CHINESE_NO = re.compile(r"^([一二三四五六七八九十]+)[、.．]\s*(.*)$")
_CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _chinese_number(text: str) -> int:
    """一 … 九十九 as a number."""
    if "十" not in text:
        return _CHINESE_DIGITS.get(text, 0)
    tens, _, ones = text.partition("十")
    return (_CHINESE_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CHINESE_DIGITS.get(ones, 0) if ones else 0)


def _section(heading: str, ordinal: int) -> tuple[str, str]:
    """A heading's section number (as written: `2`, `二、` as 2; else its place) and title."""
    found = _SECTION_NO.match(heading)
    if found:
        return found.group(1), found.group(2)
    chinese = _CHINESE_NO.match(heading)
    if chinese and _chinese_number(chinese.group(1)):
        return str(_chinese_number(chinese.group(1))), chinese.group(2)
    return str(ordinal), heading


def _wide(ch: str) -> bool:
    return ord(ch) >= 0x2E80  # CJK characters and full-width punctuation: no space where a line broke


def _joined(lines: Sequence[str]) -> str:
    """A paragraph's lines as one text: joined without a space between Chinese, with one otherwise."""
    out = ""
    for line in lines:
        if out and not (_wide(out[-1]) or _wide(line[0])):
            out += " "
        out += line
    return out


def parse_markdown(text: str) -> list[Clause]:
    """Sections from headings; clauses from numbered items (their number) or paragraphs (their place).

    A heading with nothing under it (the document's title) is no section. Text before the first
    heading is refused: it belongs to no section.
    """
    sections: list[tuple[str, list[tuple[str | None, str]]]] = []
    current: list[tuple[str | None, str]] | None = None
    paragraph: list[str] = []
    item: tuple[str | None, list[str]] | None = None

    def close() -> None:
        nonlocal paragraph, item
        if item is not None and current is not None:
            current.append((item[0], _joined(item[1])))
        elif paragraph and current is not None:
            current.append((None, _joined(paragraph)))
        item, paragraph = None, []

    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading:
            close()
            current = []
            sections.append((heading.group(2), current))
            continue
        if not line:
            close()
            continue
        if current is None:
            msg = f"line {n}: text before the first heading; put a heading (a section) above it"
            raise ValidationError(msg)
        numbered = _NUMBERED.match(line)
        bullet = _BULLET.match(line)
        if numbered or bullet:
            close()
            if numbered:
                item = (numbered.group(1) or numbered.group(2), [numbered.group(3)])
            else:
                assert bullet is not None
                item = (None, [bullet.group(1)])
            continue
        if item is not None:
            item[1].append(line)
        else:
            paragraph.append(line)
    close()
    clauses: list[Clause] = []
    last = 0  # the last section's number: a heading without one is the next
    for written, items in sections:
        if not items:
            continue
        section_no, title = _section(written, last + 1)
        head = section_no.split(".", 1)[0]
        last = int(head) if head.isdigit() else last + 1
        for place, (given, said) in enumerate(items, start=1):
            clauses.append(Clause(f"{section_no}.{given or place}", section_no, title, said))
    return checked(clauses)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "section": ("section", "section_no", "章节", "章", "节", "篇章", "部分"),
    "section_title": ("section_title", "title", "章节标题", "标题", "章节名称"),
    "clause": ("clause", "clause_no", "number", "no", "条款", "条款编号", "条款号", "编号", "序号"),
    "text": ("text", "clause_text", "content", "内容", "条款内容", "文本"),
}


def _column_of(header: str) -> str | None:
    spelled = header.strip().lstrip("\ufeff").casefold()
    return next((key for key, names in _COLUMNS.items() if spelled in names), None)


def _structured(rows: Iterable[Mapping[str, Any]], where: str) -> list[Clause]:
    clauses = []
    for n, row in enumerate(rows, start=1):
        fields = {k: v for k, v in ((_column_of(str(h)), v) for h, v in row.items()) if k is not None}
        if "clause" not in fields or "text" not in fields:
            msg = f"{where} {n}: a row needs a clause number and its text (columns section, clause, text)"
            raise ValidationError(msg)
        section = _clean(fields.get("section"))
        number = _clean(fields["clause"])
        if section and "." not in number:
            number = f"{section}.{number}"
        if not section and "." in number:
            section = number.rsplit(".", 1)[0]
        clauses.append(Clause(number, section, _clean(fields.get("section_title")), _clean(fields["text"])))
    return checked(clauses)


def parse_csv(text: str) -> list[Clause]:
    """A CSV file with the columns section, clause, text (and optionally section_title; zh names too)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or not any(_column_of(h) == "clause" for h in reader.fieldnames):
        msg = "the CSV file needs a header row naming the columns section, clause and text"
        raise ValidationError(msg)
    return _structured(reader, "row")


def parse_json(text: str) -> list[Clause]:
    """A JSON list of {section, clause, text[, section_title]}, or {"sections": [{no, title, clauses: [...]}]}."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        msg = f"the JSON file does not parse: {exc}"
        raise ValidationError(msg) from None
    if isinstance(data, dict) and isinstance(data.get("sections"), list):
        rows: list[dict[str, Any]] = []
        for s in data["sections"]:
            if not isinstance(s, dict) or not isinstance(s.get("clauses"), list):
                msg = 'each section needs its clauses: {"no": …, "title": …, "clauses": [{"no": …, "text": …}]}'
                raise ValidationError(msg)
            for c in s["clauses"]:
                if not isinstance(c, dict):
                    msg = "each clause is an object with its number and text"
                    raise ValidationError(msg)
                rows.append(
                    {
                        "section": s.get("no"),
                        "section_title": s.get("title"),
                        "clause": c.get("no"),
                        "text": c.get("text"),
                    }
                )
        return _structured(rows, "clause")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        msg = 'the JSON file holds a list of clauses ({"section", "clause", "text"}) or {"sections": [...]}'
        raise ValidationError(msg)
    return _structured(data, "item")


PLAN_FORMATS = ("markdown", "csv", "json", "docx")


def format_of(name: str) -> str:
    """The format a plan file's name says (.md, .csv, .json, .docx), or one line naming the allowed."""
    suffix = name.rsplit(".", 1)[-1].casefold() if "." in name else ""
    known = {"md": "markdown", "markdown": "markdown", "txt": "markdown", "csv": "csv", "json": "json", "docx": "docx"}
    if suffix not in known:
        msg = f"cannot tell the format of {name}; a plan draft is a .md, .docx, .csv or .json file"
        raise ValidationError(msg)
    return known[suffix]


def parse_text(text: str, fmt: str) -> list[Clause]:
    """The clauses of a text file in `fmt` (markdown, csv, json)."""
    if fmt == "csv":
        return parse_csv(text)
    if fmt == "json":
        return parse_json(text)
    return parse_markdown(text)


# --- what the store hands back ---------------------------------------------------------------


@dataclass(frozen=True)
class PlanVersionInfo:
    """One imported version of a consultation's draft."""

    id: int
    consultation_id: int
    number: int
    label: str | None
    source: str | None
    clauses: int
    imported_at: datetime
    imported_by: str


@dataclass(frozen=True)
class StoredClause:
    """A clause as one version says it; `clause_id` stays the same across versions for the same number."""

    clause_id: int
    number: str
    section_no: str
    section_title: str
    text: str


@dataclass(frozen=True)
class ReviewInfo:
    """A review round: its round, whether it is open, and the version it rates."""

    consultation_id: int
    round_no: int
    open: bool
    version_id: int
    version_number: int
    category: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class LinkedOpinion:
    """An opinion linked to a clause (by a link, or by its plan reference naming the clause's number)."""

    clause_id: int
    opinion_id: int
    state: str
    outcome: str | None
    state_entered_at: datetime


@dataclass(frozen=True)
class NewRating:
    """A rating to store: the comment already sealed with the participant's key."""

    clause_id: int
    participant_id: int
    rating: str
    comment: str | None
    opinion_id: int | None
    form_key: str | None


@dataclass(frozen=True)
class RatingCount:
    """How many ratings of one kind a clause got in a review, and how many came with a comment."""

    clause_id: int
    rating: str
    ratings: int
    comments: int
