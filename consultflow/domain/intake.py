"""Bulk intake: which column is which, whether a row is good, and the keys that make re-imports safe.

Files come from online questionnaires (one row per respondent, the questions as headers, a serial
number and a submission time) and from local experts' spreadsheets typed up after an assembly, in
Chinese or English. Columns are found by header, exactly first and then by the words a header
contains; categories and channels match their key or either label. Every row gets a stable key (its
external id, or a hash of its content) so importing the same or an overlapping file twice adds
nothing twice. Participants are the same person when name, village and contact are the same.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label
from consultflow.domain.privacy import checked_contact
from consultflow.domain.text import refuse_control_characters
from consultflow.domain.vocabulary import MAX_OPINION_CHARS


class Column(str, Enum):
    """What a file's column may hold."""

    TEXT = "text"
    CATEGORY = "category"
    CHANNEL = "channel"
    NAME = "name"
    VILLAGE = "village"
    CONTACT = "contact"
    EXTERNAL_ID = "external_id"
    SUBMITTED_AT = "submitted_at"


# Whole headers, compared after normalising (case, width, spaces, trailing colons and numbering).
EXACT: dict[Column, tuple[str, ...]] = {
    Column.TEXT: ("意见内容", "意见", "意见建议", "内容", "建议", "text", "opinion", "comment"),
    Column.CATEGORY: ("类别", "意见类别", "分类", "类型", "category"),
    Column.CHANNEL: ("渠道", "收集渠道", "意见来源", "channel"),
    Column.NAME: ("姓名", "名字", "提出人", "户主", "name"),
    Column.VILLAGE: ("村", "村组", "村/片区", "所在村", "村庄", "village", "area"),
    Column.CONTACT: ("电话", "手机", "手机号", "联系方式", "联系电话", "contact", "phone", "email"),
    Column.EXTERNAL_ID: ("编号", "序号", "答卷编号", "答卷序号", "id", "external_id", "serial", "respondent"),
    Column.SUBMITTED_AT: ("提交时间", "提交答卷时间", "答题时间", "submitted_at", "submitted", "time"),
}
# Words inside a question's text ("3、您对规划有什么意见和建议？"), tried when no header matched exactly.
# The text comes last: "您的意见类别" is the category, not the opinion.
CONTAINS: dict[Column, tuple[str, ...]] = {
    Column.CATEGORY: ("类别", "方面"),
    Column.NAME: ("姓名",),
    Column.VILLAGE: ("村",),
    Column.CONTACT: ("电话", "手机", "联系方式"),
    Column.SUBMITTED_AT: ("提交",),
    Column.TEXT: ("意见", "建议"),
}
REQUIRED = (Column.TEXT, Column.CATEGORY, Column.VILLAGE)
_COLUMNS = tuple(Column)  # iterating the enum itself costs a generator per row
ANONYMOUS = "匿名"
MAX_NAME_CHARS = 120


def normalise_header(header: str) -> str:
    """`" 3、意见内容： "` -> `意见内容`: full-width folded, lower-cased, numbering and colons dropped."""
    text = unicodedata.normalize("NFKC", header).strip().lower()
    text = text.lstrip("0123456789.、)） ").rstrip(":：？?*（(必填)） ")
    return " ".join(text.split())


def map_columns(headers: Sequence[str], given: Mapping[Column, str]) -> dict[Column, int]:
    """Which column index holds what: `given` headers first, then exact names, then contained words.

    Raises:
        ValidationError: a given header is missing, a required field has no column, or two
            columns claim one field by the same rule.
    """
    names = [normalise_header(h) for h in headers]
    found: dict[Column, int] = {}
    for field, header in given.items():
        wanted = normalise_header(header)
        if wanted not in names:
            msg = f"--map {field.value}={header!r}: no such column; the file has: {', '.join(map(repr, headers))}"
            raise ValidationError(msg)
        found[field] = names.index(wanted)
    taken = set(found.values())
    for rules, how in ((EXACT, "named"), (CONTAINS, "containing")):
        for field, words in rules.items():
            if field in found:
                continue
            hits = [
                i
                for i, name in enumerate(names)
                if i not in taken and (name in words if how == "named" else any(w in name for w in words))
            ]
            if len(hits) > 1 and how == "named":
                listed = ", ".join(repr(headers[i]) for i in hits)
                msg = f"columns {listed} could each be the {field.value}; choose one with --map {field.value}=HEADER"
                raise ValidationError(msg)
            if hits:
                found[field] = hits[0]
                taken.add(hits[0])
    missing = [f.value for f in REQUIRED if f not in found]
    if missing:
        msg = (
            f"no column for {', '.join(missing)}; the file has: {', '.join(map(repr, headers))} "
            "(name columns with --map FIELD=HEADER)"
        )
        raise ValidationError(msg)
    return found


@dataclass(frozen=True)
class IntakeRow:
    """One good row, ready to record."""

    line: int
    key: str
    text: str
    category: str
    channel: str
    name: str
    village: str
    contact: str | None
    participant_key: str


@dataclass(frozen=True)
class RowProblem:
    """Why one row cannot be recorded."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.line}, column {self.column}: {self.reason}"


@cache
def _names_of(choices: tuple[tuple[str, Label], ...]) -> dict[str, str]:
    """Each way of writing a choice (its key, either label), normalised, to the key."""
    names: dict[str, str] = {}
    for key, label in choices:
        for written in (key, label.zh, label.en):
            names.setdefault(normalise_header(written), key)
    return names


_known: dict[int, tuple[Mapping[str, Label], dict[str, str]]] = {}
_KNOWN_AT_MOST = 64


def _choice(value: str, choices: Mapping[str, Label]) -> str | None:
    """The key `value` names, if any (the names of a mapping are worked out once, not once per row)."""
    held = _known.get(id(choices))
    if held is None or held[0] is not choices:
        if len(_known) > _KNOWN_AT_MOST:  # a caller making a new mapping per row must not grow this
            _known.clear()
        held = _known[id(choices)] = (choices, _names_of(tuple(choices.items())))
    return held[1].get(normalise_header(value))


def _allowed(choices: Mapping[str, Label]) -> str:
    return ", ".join(f"{label.zh}/{key}" for key, label in choices.items())


def participant_key(name: str, village: str, contact: str | None) -> str:
    """The same person: the same name, village and contact (a hash, so the key itself reveals none)."""
    joined = "\x1f".join((name.strip(), village.strip(), (contact or "").strip()))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def check_row(
    line: int,
    cells: Sequence[str],
    columns: Mapping[Column, int],
    headers: Sequence[str],
    categories: Mapping[str, Label],
    channels: Mapping[str, Label],
    default_channel: str | None,
) -> IntakeRow | list[RowProblem]:
    """A good row, or every problem it has (each naming its column)."""

    def cell(field: Column) -> str:
        i = columns.get(field)
        return str(cells[i]).strip() if i is not None and i < len(cells) and cells[i] is not None else ""

    def where(field: Column) -> str:
        i = columns.get(field)
        return headers[i] if i is not None else f"--{field.value}"

    problems: list[RowProblem] = []
    values: dict[Column, str] = dict.fromkeys(_COLUMNS, "")  # a field without a column is empty
    for field in columns:
        try:
            values[field] = refuse_control_characters(cell(field), "the cell")
        except ValidationError as exc:
            problems.append(RowProblem(line, where(field), str(exc)))
            values[field] = ""
    text = values[Column.TEXT]
    if not text:
        problems.append(RowProblem(line, where(Column.TEXT), "the opinion text is empty"))
    elif len(text) > MAX_OPINION_CHARS:
        problems.append(RowProblem(line, where(Column.TEXT), f"{len(text)} characters; at most {MAX_OPINION_CHARS}"))
    category = _choice(values[Column.CATEGORY], categories)
    if category is None:
        reason = f"unknown category {values[Column.CATEGORY]!r}; allowed: {_allowed(categories)}"
        problems.append(RowProblem(line, where(Column.CATEGORY), reason))
    channel = _choice(values[Column.CHANNEL], channels) if values[Column.CHANNEL] else default_channel
    if channel is None:
        given = values[Column.CHANNEL]
        reason = f"unknown channel {given!r}; allowed: {_allowed(channels)}" if given else "no channel (give --channel)"
        problems.append(RowProblem(line, where(Column.CHANNEL), reason))
    village = values[Column.VILLAGE]
    if not village or len(village) > MAX_NAME_CHARS:
        problems.append(RowProblem(line, where(Column.VILLAGE), "the village is empty or over 120 characters"))
    name = values[Column.NAME]
    if len(name) > MAX_NAME_CHARS:
        problems.append(RowProblem(line, where(Column.NAME), "the name is over 120 characters"))
    contact: str | None = None
    try:
        contact = checked_contact(values[Column.CONTACT])
    except ValidationError as exc:
        problems.append(RowProblem(line, where(Column.CONTACT), str(exc)))
    if problems or category is None or channel is None:
        return problems
    external = values[Column.EXTERNAL_ID]
    content = "\x1f".join((text, category, channel, name, village, contact or ""))
    key = "id:" + external if external else "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:40]
    named = name or ANONYMOUS
    # An anonymous respondent without a contact is a person of their own, not everyone's namesake.
    person = participant_key(named, village, contact) if name or contact else participant_key(named, village, key)
    return IntakeRow(line, key[:64], text, category, channel, named, village, contact, person)
