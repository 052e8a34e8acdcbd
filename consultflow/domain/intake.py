"""Bulk intake: which column is which, whether a row is good, and the keys that make re-imports safe.

Files come from online questionnaires (one row per respondent, the questions as headers, a serial
number and a submission time) and from local experts' spreadsheets typed up after an assembly, in
Chinese or English. Columns are found by header, exactly first and then by the words a header
contains; categories and channels match their key, either label, a unique short form (产业 for
产业发展) or a value the person maps (`--map-value category:产业=industry`). Survey platforms' layouts
(问卷星, 腾讯问卷, 金数据) and a clerk's meeting sheet are recognised from their headers (PROFILES), the
header row is found below title rows, placeholders such as (空) read as blank, and totals and
signature rows are skipped, each said so.

Every row gets a stable key scoped to its source (the profile or a named source, and the sheet):
its external id there, or a hash of its content. Importing the same or an overlapping file twice
adds nothing twice; another source's row numbered like one already recorded is its own row, and a
key already recorded with different content is refused naming both, never dropped in silence.
Participants are the same person when name, village and contact are the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from functools import cache, lru_cache

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label
from consultflow.domain.privacy import checked_contact
from consultflow.domain.text import refuse_control_characters
from consultflow.domain.vocabulary import CHOICE_ALIASES, MAX_OPINION_CHARS


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
    GROUP = "group"  # the kind of person (乡镇干部, 普通群众…): one of the workflow's groups


# Whole headers, compared after normalising (case, width, spaces, trailing colons and numbering).
EXACT: dict[Column, tuple[str, ...]] = {
    Column.TEXT: ("意见内容", "意见", "意见建议", "内容", "建议", "text", "opinion", "comment"),
    Column.CATEGORY: ("类别", "意见类别", "分类", "类型", "意见分类", "category"),
    Column.CHANNEL: ("渠道", "收集渠道", "意见来源", "channel"),
    Column.NAME: ("姓名", "名字", "提出人", "户主", "name"),
    Column.VILLAGE: ("村", "村组", "村/片区", "所在村", "村庄", "village", "area"),
    Column.CONTACT: ("电话", "手机", "手机号", "联系方式", "联系电话", "contact", "phone", "email"),
    Column.EXTERNAL_ID: ("编号", "序号", "答卷编号", "答卷序号", "id", "external_id", "serial", "respondent"),
    Column.SUBMITTED_AT: (
        "提交时间", "提交答卷时间", "答题时间", "结束答题时间", "填写时间", "submitted_at", "submitted", "time",
    ),
    Column.GROUP: ("群体", "参与群体", "所属群体", "人员类别", "身份", "group"),
}  # fmt: skip
# Words inside a question's text ("3、您对规划有什么意见和建议？"), tried when no header matched exactly.
# The text comes last: "您的意见类别" and "您的意见属于哪一类" are the category, not the opinion.
CONTAINS: dict[Column, tuple[str, ...]] = {
    Column.CATEGORY: ("类别", "方面", "哪一类", "哪类", "分类", "类型"),
    Column.NAME: ("姓名",),
    Column.VILLAGE: ("村",),
    Column.CONTACT: ("电话", "手机", "联系方式"),
    Column.SUBMITTED_AT: ("提交",),
    Column.GROUP: ("群体",),
    Column.TEXT: ("意见", "建议"),
}
REQUIRED = (Column.TEXT, Column.CATEGORY, Column.VILLAGE)
_COLUMNS = tuple(Column)  # iterating the enum itself costs a generator per row
ANONYMOUS = "匿名"
MAX_NAME_CHARS = 120
HEADER_SCAN = 15  # rows looked at for the header (title rows above it)
MAX_FIELD_CHARS = 500  # a source field's value, kept with the opinion
MAX_FIELDS = 30
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991


@dataclass(frozen=True)
class Profile:
    """A layout files come in: how it is recognised, and the headers it names its columns with."""

    name: str
    label: str
    markers: tuple[str, ...]  # normalised headers only this layout has
    exact: Mapping[Column, tuple[str, ...]] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("wjx", "问卷星", ("提交答卷时间", "来自ip", "来源详情", "所用时间")),
        Profile("tencent", "腾讯问卷", ("开始答题时间", "结束答题时间", "答题时长")),
        Profile("jinshuju", "金数据", ("填写设备", "填写地区", "提交人", "填写时间")),
        Profile(
            "clerk",
            "村组记录表",
            ("记录人", "登记人", "记录员", "填表人"),
            {Column.SUBMITTED_AT: ("日期", "记录日期", "会议日期", "时间")},
        ),
    )
}


_NUMBERING = re.compile(r"^(?:q|第)?\d+(?:[.、)）:：]|题)?\s*")


def normalise_header(header: str) -> str:
    """`" 3、意见内容： "` -> `意见内容`: full-width folded, lower-cased, numbering and colons dropped.

    Question numbering as platforms write it goes too: "2、", "Q3.", "3. ", "第4题".
    """
    text = unicodedata.normalize("NFKC", header).strip().lower()
    text = _NUMBERING.sub("", text)
    text = text.lstrip("0123456789.、)） ").rstrip(":：？?*（(必填)） ")
    return " ".join(text.split())


def is_detail(header: str) -> bool:
    """A column that details another answer ("2.类别-其他（请注明）", "其他（请注明）"): never a field."""
    name = unicodedata.normalize("NFKC", header)
    return "其他" in name and ("注明" in name or "说明" in name or "-其他" in name or "—其他" in name)


_IP = re.compile(r"(?<![a-z])ip(?![a-z])")


def is_address(header: str) -> bool:
    """A column of network addresses (来自IP, IP地址): personal data, not kept."""
    return bool(_IP.search(normalise_header(header)))


def detect_profile(headers: Sequence[str]) -> Profile | None:
    """The layout whose marker headers the file has, if any."""
    names = {normalise_header(h) for h in headers}
    for profile in PROFILES.values():
        if names.intersection(profile.markers):
            return profile
    return None


def map_columns(
    headers: Sequence[str], given: Mapping[Column, str], profile: Profile | None = None
) -> dict[Column, int]:
    """Which column index holds what: `given` headers first, then exact names, then contained words.

    Detail columns ("-其他（请注明）") are never taken for a field.

    Raises:
        ValidationError: a given header is missing, a required field has no column, or two
            columns claim one field by the same rule.
    """
    names = [normalise_header(h) for h in headers]
    found: dict[Column, int] = {}
    for column, header in given.items():
        wanted = normalise_header(header)
        if wanted not in names:
            msg = f"--map {column.value}={header!r}: no such column; the file has: {', '.join(map(repr, headers))}"
            raise ValidationError(msg)
        found[column] = names.index(wanted)
    taken = set(found.values()) | {i for i, h in enumerate(headers) if is_detail(h) or is_address(h)}
    exact = dict(EXACT)
    if profile is not None:
        for column, extra in profile.exact.items():
            exact[column] = (*extra, *exact[column])
    for rules, how in ((exact, "named"), (CONTAINS, "containing")):
        for column, words in rules.items():
            if column in found:
                continue
            hits = [
                i
                for i, name in enumerate(names)
                if i not in taken and name and (name in words if how == "named" else any(w in name for w in words))
            ]
            if len(hits) > 1 and how == "named":
                listed = ", ".join(repr(headers[i]) for i in hits)
                msg = f"columns {listed} could each be the {column.value}; choose one with --map {column.value}=HEADER"
                raise ValidationError(msg)
            if hits:
                found[column] = hits[0]
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
class Header:
    """Where a file's header is, its columns, and the layout it was recognised as."""

    line: int
    headers: list[str]
    columns: dict[Column, int]
    profile: Profile | None


def find_header(
    head: Sequence[tuple[int, Sequence[str]]],
    given: Mapping[Column, str],
    *,
    profile: str | None = None,
    header_row: int | None = None,
) -> Header:
    """The header among a file's first rows: the first that names the required columns (title rows above it).

    Raises:
        ValidationError: an unknown profile, no such row, or no row that maps (the first one's problem said).
    """
    chosen = None
    if profile is not None:
        chosen = PROFILES.get(profile)
        if chosen is None:
            msg = f"--profile {profile!r}: one of {', '.join(f'{p.name} ({p.label})' for p in PROFILES.values())}"
            raise ValidationError(msg)
    rows = [(line, [str(c) for c in cells]) for line, cells in head if any(str(c).strip() for c in cells)]
    if header_row is not None:
        rows = [(line, cells) for line, cells in rows if line == header_row]
        if not rows:
            msg = f"--header-row {header_row}: that row is blank or not in the file"
            raise ValidationError(msg)
    if not rows:
        msg = "the file has no header row"
        raise ValidationError(msg)
    first: ValidationError | None = None
    for line, cells in rows[:HEADER_SCAN]:
        layout = chosen or detect_profile(cells)
        try:
            return Header(line, cells, map_columns(cells, given, layout), layout)
        except ValidationError as exc:
            first = first or exc
    assert first is not None
    if header_row is None and len(rows) > 1:
        msg = f"{first} (looked for a header in the first {min(len(rows), HEADER_SCAN)} rows; give --header-row N)"
        raise ValidationError(msg)
    raise first


# What questionnaires write for an unanswered question, read as blank.
PLACEHOLDERS = frozenset({"(空)", "空", "(跳过)", "跳过", "-", "--", "—", "——", "/", "无", "n/a", "na", "null", "none"})
_TOTALS = re.compile(r"^(合计|总计|小计|共计|总数)(?:[:：\s]|$)")
_SIGNATURE = re.compile(r"^(记录人|登记人|记录员|填表人|审核人|负责人|经办人|签字|签名|盖章)")


def blank_placeholder(value: str) -> str:
    """`value` stripped, or "" when it is a questionnaire's placeholder for no answer ((空), 跳过, -, 无, N/A)."""
    text = value.strip()
    if text and len(text) <= 4 and unicodedata.normalize("NFKC", text).strip().lower() in PLACEHOLDERS:
        return ""
    return text


def skip_reason(cells: Sequence[str], columns: Mapping[Column, int]) -> str | None:
    """Why a row is not an opinion at all (a totals row, a signature line), or None."""
    present = [c for c in cells if c is not None and str(c).strip()]
    if not present or len(present) > 4:  # an opinion's row fills more cells than a total or a signature
        return None
    filled = [unicodedata.normalize("NFKC", str(c)).strip() for c in present]
    at = columns.get(Column.TEXT)
    text = str(cells[at]).strip() if at is not None and at < len(cells) else ""
    if len(text) > 40:
        return None
    for value in filled:
        if _TOTALS.match(value):
            return f"totals row ({value[:20]})"
    if any(_SIGNATURE.match(v) for v in filled) or any("签字" in v or "签名" in v for v in filled):
        return "signature row"
    return None


def _fold(value: str) -> str:
    """Full-width digits, letters and spaces as ASCII (NFKC): safe for ids, names, villages, contacts, times."""
    return " ".join(unicodedata.normalize("NFKC", value).split())


_TIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[ t]*(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(?:\.\d+)?秒?)?)?"
    r"\s*(z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """A submission time as files write it, in UTC: China's local time unless it carries an offset.

    Raises:
        ValidationError: not a date and time, or one after `now`.
    """
    text = _fold(value).lower()
    found = _TIME.match(text)
    if found is None:
        msg = f"unreadable submission time {value[:40]!r}; e.g. 2023-03-01 10:05:33"
        raise ValidationError(msg)
    year, month, day, hour, minute, second, offset = found.groups()
    if offset is None:
        zone: timezone = CHINA
    elif offset == "z":
        zone = timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=zone
        ).astimezone(timezone.utc)
    except ValueError:
        msg = f"unreadable submission time {value[:40]!r}: no such date or time"
        raise ValidationError(msg) from None
    if when.year < 2000 or (now is not None and when > now + timedelta(minutes=5)):
        msg = f"submission time {value[:40]!r} is {'in the future' if when.year >= 2000 else 'before 2000'}"
        raise ValidationError(msg)
    return when


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
    content: str = ""  # a hash of what the row says: the same key with other content is refused
    submitted_at: datetime | None = None
    fields: tuple[tuple[str, str], ...] = ()  # the file's other columns, as the source wrote them
    contact_dropped: bool = False  # a contact given but not one (a typo, a bare 8 digits): left out, the row kept
    # What the row said as releases before landlines were contacts keyed it (the landline left out):
    # a row they recorded is the same row, not a conflict.
    legacy_content: str = ""
    group: str | None = None  # the person's group (an id of the workflow's groups), if the file gives one

    def fields_text(self) -> str | None:
        """The source fields as JSON text (to seal and keep with the opinion), or None without any."""
        return json.dumps(dict(self.fields), ensure_ascii=False) if self.fields else None


@dataclass(frozen=True)
class RowProblem:
    """Why one row cannot be recorded."""

    line: int
    column: str
    reason: str
    kind: str = ""  # for the summary's count by reason ("unknown category", "key conflict")

    def __str__(self) -> str:
        return f"row {self.line}, column {self.column}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """A row that is no opinion (a totals or signature row), skipped and said so."""

    line: int
    reason: str


@cache
def _names_of(choices: tuple[tuple[str, Label], ...]) -> dict[str, str]:
    """Each way of writing a choice (its key, either label), normalised, to the key."""
    names: dict[str, str] = {}
    for key, label in choices:
        for written in (key, label.zh, label.en):
            names.setdefault(normalise_header(written), key)
    return names


class Choices:
    """A workflow's categories or channels, resolved from values as people write them.

    A value names a choice by its key or either label (any width or case), by a mapping the person
    gave (`--map-value category:产业=industry`), or by a short form that only one label starts with
    or contains (产业 -> 产业发展, 农村路网 -> 环境卫生与农村路网). Each distinct value is resolved once.
    """

    def __init__(self, what: str, choices: Mapping[str, Label], given: Mapping[str, str] | None = None) -> None:
        self.what = what
        self.choices = choices
        self.names = dict(_names_of(tuple(choices.items())))
        for aliased, written in ((k, w) for k, ws in CHOICE_ALIASES.items() if k in choices for w in ws):
            self.names.setdefault(normalise_header(written), aliased)  # the short forms `opinion list` takes too
        self._labels = [(key, normalise_header(label.zh), normalise_header(label.en)) for key, label in choices.items()]
        for written, target in (given or {}).items():
            key = self.names.get(normalise_header(target))
            if key is None:
                msg = f"--map-value {what}:{written}={target}: no {what} {target!r}; allowed: {self.allowed()}"
                raise ValidationError(msg)
            self.names[normalise_header(written)] = key
        self._seen: dict[str, str | list[str]] = {}

    def allowed(self) -> str:
        """The choices as a refusal lists them."""
        return ", ".join(f"{label.zh}/{key}" for key, label in self.choices.items())

    def resolve(self, value: str) -> str | list[str]:
        """The key `value` names, or the keys it could name (none: unknown; several: ambiguous)."""
        held = self._seen.get(value)
        if held is None:
            held = self._resolve(value)
            if len(self._seen) < 10_000:  # values as written are few; a column of free text must not grow this
                self._seen[value] = held
        return held

    def _resolve(self, value: str) -> str | list[str]:
        name = normalise_header(value)
        if name in self.names:
            return self.names[name]
        if len(name) < 2:
            return []
        starts = [key for key, zh, en in self._labels if zh.startswith(name) or en.startswith(name)]
        if len(starts) == 1:
            return starts[0]
        inside = [key for key, zh, en in self._labels if name in zh or (len(name) > 3 and name in en)]
        return inside[0] if len(inside) == 1 else inside

    def refusal(self, value: str, found: list[str]) -> str:
        """Why `value` names no single choice."""
        if found:
            listed = ", ".join(f"{self.choices[k].zh}/{k}" for k in found)
            return f"{self.what} {value!r} could be {listed}; say which with --map-value {self.what}:{value}=KEY"
        return f"unknown {self.what} {value!r}; allowed: {self.allowed()} (or --map-value {self.what}:{value}=KEY)"


_known: dict[tuple[int, int], tuple[Mapping[str, Label], Choices]] = {}
_KNOWN_AT_MOST = 64


def _choices(what: str, choices: Mapping[str, Label], given: Mapping[str, str] | None) -> Choices:
    """A Choices for a mapping, made once (not once per row) when no values are mapped."""
    if given:
        return Choices(what, choices, given)
    held = _known.get((id(choices), hash(what)))
    if held is None or held[0] is not choices:
        if len(_known) > _KNOWN_AT_MOST:  # a caller making a new mapping per row must not grow this
            _known.clear()
        held = _known[(id(choices), hash(what))] = (choices, Choices(what, choices))
    return held[1]


def participant_key(name: str, village: str, contact: str | None) -> str:
    """The same person: the same name, village and contact (a hash, so the key itself reveals none)."""
    joined = "\x1f".join((name.strip(), village.strip(), (contact or "").strip()))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rules:
    """What a row is checked against: the workflow's choices, the defaults and the file's source."""

    categories: Choices
    channels: Choices
    default_channel: str | None = None
    scope: str = ""  # the source the file's row keys belong to ("wjx", "tencent", --source NAME) and sheet
    now: datetime | None = None
    groups: Choices | None = None  # the workflow's participant groups (a 群体 column names one)

    @classmethod
    def of(
        cls,
        categories: Mapping[str, Label],
        channels: Mapping[str, Label],
        default_channel: str | None = None,
        *,
        values: Mapping[str, Mapping[str, str]] | None = None,
        scope: str = "",
        now: datetime | None = None,
        groups: Mapping[str, Label] | None = None,
    ) -> Rules:
        """Rules for a workflow's choices, with values the person mapped (`values["category"]["产业"]`)."""
        given = values or {}
        unknown = set(given) - {"category", "channel", "group"}
        if unknown:
            msg = f"--map-value takes category:VALUE=KEY, channel:VALUE=KEY or group:VALUE=KEY (not {min(unknown)!r})"
            raise ValidationError(msg)
        return cls(
            _choices("category", categories, given.get("category")),
            _choices("channel", channels, given.get("channel")),
            default_channel,
            scope,
            now,
            _choices("group", groups, given.get("group")) if groups else None,
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


@lru_cache(maxsize=32)
def _field_columns(headers: tuple[str, ...], mapped: frozenset[int]) -> tuple[tuple[int, str], ...]:
    """The columns a file's rows keep as source fields, by index with the header as kept.

    The unmapped, named ones, never network addresses; worked out once per file, not per row.
    """
    return tuple((i, h[:100]) for i, h in enumerate(headers) if i not in mapped and h.strip() and not is_address(h))


def source_scope(source: str | None, profile: Profile | None, sheet: str | None) -> str:
    """Where a file's row keys belong: the named source or the layout (or "file"), and the sheet."""
    return f"{source or (profile.name if profile else 'file')}\x1f{sheet or ''}"


def check_row(
    line: int,
    cells: Sequence[str],
    columns: Mapping[Column, int],
    headers: Sequence[str],
    categories: Mapping[str, Label] | Rules,
    channels: Mapping[str, Label] | None = None,
    default_channel: str | None = None,
) -> IntakeRow | list[RowProblem]:
    """A good row, or every problem it has (each naming its column).

    `categories` may be whole Rules (value mappings, the source's scope, the time now); given as
    the workflow's categories and channels, values match by key, label or unique short form.
    """
    rules = categories if isinstance(categories, Rules) else Rules.of(categories, channels or {}, default_channel)

    def cell(i: int | None) -> str:
        if i is None or i >= len(cells) or cells[i] is None:
            return ""
        return blank_placeholder(str(cells[i]))

    def where(column: Column) -> str:
        i = columns.get(column)
        return headers[i] if i is not None and i < len(headers) else f"--{column.value}"

    problems: list[RowProblem] = []
    values: dict[Column, str] = dict.fromkeys(_COLUMNS, "")  # a field without a column is empty
    for column, i in columns.items():
        try:
            values[column] = refuse_control_characters(cell(i), "the cell")
        except ValidationError as exc:
            if column is not Column.CONTACT:  # a bad contact is dropped below, not the row
                problems.append(RowProblem(line, where(column), str(exc), "control character"))
            values[column] = "" if column is not Column.CONTACT else "\x00"
    for column in (Column.NAME, Column.VILLAGE, Column.EXTERNAL_ID, Column.CONTACT, Column.SUBMITTED_AT):
        values[column] = _fold(values[column]) if values[column] != "\x00" else values[column]
    text = values[Column.TEXT]
    if not text:
        problems.append(RowProblem(line, where(Column.TEXT), "the opinion text is empty", "empty text"))
    elif len(text) > MAX_OPINION_CHARS:
        reason = f"{len(text)} characters; at most {MAX_OPINION_CHARS}"
        problems.append(RowProblem(line, where(Column.TEXT), reason, "text too long"))
    category: str | None = None
    found = rules.categories.resolve(values[Column.CATEGORY])
    if isinstance(found, str):
        category = found
    else:
        reason = rules.categories.refusal(values[Column.CATEGORY], found)
        problems.append(RowProblem(line, where(Column.CATEGORY), reason, "unknown category"))
    channel: str | None = rules.default_channel
    if values[Column.CHANNEL]:
        got = rules.channels.resolve(values[Column.CHANNEL])
        channel = got if isinstance(got, str) else None
        if not isinstance(got, str):
            reason = rules.channels.refusal(values[Column.CHANNEL], got)
            problems.append(RowProblem(line, where(Column.CHANNEL), reason, "unknown channel"))
    elif channel is None:
        problems.append(RowProblem(line, where(Column.CHANNEL), "no channel (give --channel)", "no channel"))
    village = values[Column.VILLAGE]
    if not village or len(village) > MAX_NAME_CHARS:
        reason = "the village is empty or over 120 characters"
        problems.append(RowProblem(line, where(Column.VILLAGE), reason, "no village"))
    group: str | None = None
    if values[Column.GROUP]:
        found_group = rules.groups.resolve(values[Column.GROUP]) if rules.groups is not None else []
        if isinstance(found_group, str):
            group = found_group
        elif rules.groups is None:
            reason = "this workflow defines no participant groups; leave the column empty"
            problems.append(RowProblem(line, where(Column.GROUP), reason, "unknown group"))
        else:
            reason = rules.groups.refusal(values[Column.GROUP], found_group)
            problems.append(RowProblem(line, where(Column.GROUP), reason, "unknown group"))
    name = values[Column.NAME]
    if len(name) > MAX_NAME_CHARS:
        problems.append(RowProblem(line, where(Column.NAME), "the name is over 120 characters", "name too long"))
    contact: str | None = None
    dropped = False
    try:
        contact = checked_contact(values[Column.CONTACT])
    except ValidationError:
        dropped = True  # optional: a typo loses the contact, not the opinion
    submitted: datetime | None = None
    if values[Column.SUBMITTED_AT]:
        try:
            submitted = parse_time(values[Column.SUBMITTED_AT], rules.now)
        except ValidationError as exc:
            problems.append(RowProblem(line, where(Column.SUBMITTED_AT), str(exc), "bad submission time"))
    if problems or category is None or channel is None:
        return problems
    external = values[Column.EXTERNAL_ID]
    stamp = submitted.isoformat() if submitted else ""
    content = "\x1f".join((text, category, channel, name, village, contact or "", stamp))
    digest = "c:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:40]
    legacy = ""
    if contact is not None and contact.startswith("0"):  # a landline
        before = f"{text}\x1f{category}\x1f{channel}\x1f{name}\x1f{village}\x1f\x1f{stamp}"
        legacy = "c:" + hashlib.sha256(before.encode("utf-8")).hexdigest()[:40]
    row_id = "id:" + external if external else digest
    key = "k2:" + hashlib.sha256(f"{rules.scope}\x1f{row_id}".encode()).hexdigest()[:48]
    named = name or ANONYMOUS
    # An anonymous respondent without a contact is a person of their own, not everyone's namesake.
    person = participant_key(named, village, contact) if name or contact else participant_key(named, village, key)
    fields = tuple(
        (header, value[:MAX_FIELD_CHARS])
        for i, header in _field_columns(tuple(headers), frozenset(columns.values()))
        if i < len(cells) and (value := cell(i)) and not _CONTROL.search(value)
    )[:MAX_FIELDS]
    return IntakeRow(
        line, key, text, category, channel, named, village, contact, person, digest, submitted, fields, dropped,
        legacy_content=legacy, group=group,
    )  # fmt: skip
