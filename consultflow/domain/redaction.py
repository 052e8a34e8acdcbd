"""Personal data inside free text (意见内容中的个人信息): found, named and masked before publication.

A villager may type her mobile number, her ID-card number or her own name into an opinion, and a
planner may quote it in the feedback. Whatever is published (the portal, its API, reports without
`--names full`) shows such text masked. What is masked, and how it reads:

- mobile numbers (13812345678, +86 138-1234-5678, 138 1234 5678, full-width digits) → 〔手机号已隐去〕
- landlines (028-87765767, (028)87765767, 0838-1234567 转 123, 电话 87765767) → 〔电话已隐去〕
- ID-card numbers (18 digits with a valid check digit, or the old 15-digit form) → 〔身份证号已隐去〕
- bank-card numbers (16 to 19 digits passing the Luhn check, grouped in fours or not) → 〔银行卡号已隐去〕
- e-mail addresses → 〔邮箱已隐去〕
- the participant's own name → its public form (张秀英 → 张某某); the given name alone (秀英) → 某某

Numbers that are not personal data stay: years (2026年), money (3000元, 1.5万元), areas, counts,
road numbers (G318国道), dates (2026-03-01), plan clauses (3.2.1), percentages: phones have their
prefixes and lengths, cards and ID numbers their check digits. Numbers with no check of their own
(an old 15-digit ID, a local number after 电话) are not taken when a unit follows (元, 万, 平方米,
%...). Names of other people are not recognised: only the participant's own name, given by the
caller.

Masking is idempotent: the masks hold no digit, no @ and no name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from consultflow.domain.labels import Label
from consultflow.domain.privacy import pseudonymise

Kind = Literal["mobile", "landline", "id_card", "bank_card", "email", "name"]
KINDS: tuple[Kind, ...] = ("mobile", "landline", "id_card", "bank_card", "email", "name")

KIND_LABELS: dict[Kind, Label] = {
    "mobile": Label("手机号", "mobile number"),
    "landline": Label("固定电话", "landline number"),
    "id_card": Label("身份证号", "ID-card number"),
    "bank_card": Label("银行卡号", "bank-card number"),
    "email": Label("电子邮箱", "e-mail address"),
    "name": Label("本人姓名", "the participant's name"),
}

MASKS: dict[Kind, str] = {
    "mobile": "〔手机号已隐去〕",
    "landline": "〔电话已隐去〕",
    "id_card": "〔身份证号已隐去〕",
    "bank_card": "〔银行卡号已隐去〕",
    "email": "〔邮箱已隐去〕",
}


@dataclass(frozen=True)
class Found:
    """One piece of personal data in a text: where it is (`text[start:end]`) and what it is."""

    start: int
    end: int
    kind: Kind


@dataclass(frozen=True)
class Redacted:
    """A text as published, and the kinds of personal data it held (in `KINDS` order, each once)."""

    text: str
    kinds: tuple[Kind, ...]


# Full-width forms (１３８, ＠, （）, －, ＋) read as their ASCII twins, one character for one, so a
# match's place in the translated text is its place in the original.
_NARROW = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0x2014: 0x2D, 0x2013: 0x2D, 0x2212: 0x2D}

# A number followed by one of these is an amount, an area or a weight. Only numbers with no check of
# their own heed it (an old 15-digit ID, a local number after 电话): a mobile, a card or a landline
# is masked whatever follows, as no amount in a plan has their shape (13 billion yuan, 16 digits).
_UNIT = r"(?!\s?(?:元|块钱|万|亿|平方|平米|米|公里|千米|亩|公顷|吨|斤|公斤|%|‰))"
# Not inside a longer word or number (a decimal point counts: 0.13812345678 is no phone).
_BEFORE = r"(?<!\w)(?<!\d\.)"
_AFTER = r"(?!\w)(?!\.\d)"
_SEP = r"[ \-]"  # inside a number: one space or one dash

_MOBILE = re.compile(
    _BEFORE + r"(?:(?:\+|00)?86" + _SEP + r"?|[(（]\+?86[)）]" + _SEP + r"?)?"
    r"1[3-9]\d" + _SEP + r"?\d{4}" + _SEP + r"?\d{4}" + _AFTER,
    re.ASCII,
)
_EXTENSION = r"(?:\s?(?:转|分机|ext\.?|x|-|#)\s?\d{1,5}(?!\d))?"
_LANDLINE = re.compile(
    r"(?<![\w\-])(?<!\d\.)(?:[(（]0\d{2,3}[)）]\s?|0\d{2,3}"
    + _SEP
    + r"?)[1-9]\d{2,3}"
    + _SEP
    + r"?\d{4}"
    + _AFTER
    + _EXTENSION,
    re.ASCII,
)
# A local number without its area code counts only right after a word that says it is a phone.
_LOCAL_LANDLINE = re.compile(
    r"(?:电话|座机|固话|联系方式|tel|Tel|TEL)(?:号码|号)?\s?[:：]?\s?([2-9]\d{2,3}"
    + _SEP
    + r"?\d{4})"
    + _AFTER
    + _UNIT,
    re.ASCII,
)
_ID_CARD = re.compile(
    _BEFORE + r"\d{6}\s?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?\d{3}[\dXx]" + _AFTER,
    re.ASCII,
)
_OLD_ID_CARD = re.compile(
    _BEFORE + r"\d{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}" + _AFTER + _UNIT,
    re.ASCII,
)
_BANK_CARD = re.compile(
    r"(?<![\w\-])(?<!\d\.)\d{4}(?:" + _SEP + r"?\d{4}){3}(?:" + _SEP + r"?\d{1,3})?" + _AFTER,
    re.ASCII,
)
_EMAIL = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9_\-])",
    re.ASCII,
)

# The first two digits of an ID-card number: a province (GB/T 2260).
_PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43"}
    | {"44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83", "91"}
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The check digit (0-9 or X) of an 18-digit ID-card number, from its first 17 digits (GB 11643)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def luhn_valid(digits: str) -> bool:
    """Whether a card number's digits pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx")


def _mobiles(text: str) -> Iterable[Found]:
    for m in _MOBILE.finditer(text):
        yield Found(m.start(), m.end(), "mobile")


def _landlines(text: str) -> Iterable[Found]:
    for m in _LANDLINE.finditer(text):
        yield Found(m.start(), m.end(), "landline")
    for m in _LOCAL_LANDLINE.finditer(text):
        yield Found(m.start(1), m.end(1), "landline")


def _id_cards(text: str) -> Iterable[Found]:
    for m in _ID_CARD.finditer(text):
        digits = _digits(m.group(0)).upper()
        if digits[:2] in _PROVINCES and id_check_digit(digits[:17]) == digits[17]:
            yield Found(m.start(), m.end(), "id_card")
    for m in _OLD_ID_CARD.finditer(text):
        if m.group(0)[:2] in _PROVINCES:
            yield Found(m.start(), m.end(), "id_card")


def _bank_cards(text: str) -> Iterable[Found]:
    for m in _BANK_CARD.finditer(text):
        digits = _digits(m.group(0))
        if 16 <= len(digits) <= 19 and luhn_valid(digits):
            yield Found(m.start(), m.end(), "bank_card")


def _emails(text: str) -> Iterable[Found]:
    for m in _EMAIL.finditer(text):
        yield Found(m.start(), m.end(), "email")


_PRIORITY: dict[Kind, int] = {"id_card": 0, "bank_card": 1, "mobile": 2, "landline": 3, "email": 4, "name": 5}
_NUMBER_FINDERS: tuple[Callable[[str], Iterable[Found]], ...] = (_id_cards, _bank_cards, _mobiles, _landlines)

# Where a number worth a closer look may be: 7 digits or more, with what may sit between them in a
# phone or card number (spaces, dashes, brackets, an extension). Each such run is looked at with a
# little context either side (a word such as 电话 before, a unit after); a text of small numbers
# (2026年, 3.5米) costs this one scan.
_NUMBERISH = re.compile(r"[(（+]{0,2}\d(?:[\s()（）+#xXet.\-转分机]{0,5}\d){6,}[Xx]?", re.ASCII)
_BEFORE_CONTEXT, _AFTER_CONTEXT = 12, 4
# Full-width characters that can be part of a number or an address (not the common ，（）：, which
# the patterns accept as they are): only a text holding one is translated.
_WIDE = re.compile("[\uff03\uff05\uff0b\uff0d\uff0e\uff10-\uff3f\uff41-\uff5a\u3000\u2013\u2014\u2212]")


def _numbers(narrow: str) -> Iterable[Found]:
    seen: set[Found] = set()
    for run in _NUMBERISH.finditer(narrow):
        start = max(0, run.start() - _BEFORE_CONTEXT)
        window = narrow[start : run.end() + _AFTER_CONTEXT]
        for finder in _NUMBER_FINDERS:
            for f in finder(window):
                seen.add(Found(f.start + start, f.end + start, f.kind))
    return seen


@functools.lru_cache(maxsize=1024)
def name_forms(name: str | None) -> tuple[str, ...]:
    """The forms of a participant's name looked for, longest first.

    The full name, and for a Chinese name of three characters or more its given name too (秀英 of
    张秀英; of 欧阳秀英, 阳秀英 and 秀英, since the surname may be a compound one).
    """
    name = (name or "").strip()
    if not name:
        return ()
    forms = {name}
    if len(name) >= 3 and all(unicodedata.east_asian_width(ch) in "WF" for ch in name):
        forms.add(name[1:])
        if len(name) >= 4:
            forms.add(name[2:])
    return tuple(sorted((f for f in forms if len(f) >= 2), key=len, reverse=True))


def _names(text: str, forms: tuple[str, ...]) -> Iterable[Found]:
    if not forms:
        return
    for m in _name_pattern(forms).finditer(text):
        yield Found(m.start(), m.end(), "name")


@functools.lru_cache(maxsize=256)
def _name_pattern(forms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(f) for f in forms), re.IGNORECASE)


def find_personal_data(text: str, name: str | None = None) -> list[Found]:
    """Every piece of personal data in `text`, in order, none overlapping (a longer match wins).

    `name` is the participant's own name: it and its given name are found too.
    """
    narrow = text.translate(_NARROW) if _WIDE.search(text) else text
    found = list(_numbers(narrow))
    if "@" in narrow:
        found.extend(_emails(narrow))
    found.extend(_names(narrow, name_forms(name)))
    # The longest first; of two alike, the stricter check wins (an ID number with its check digit
    # may pass the Luhn check too).
    found.sort(key=lambda f: (-(f.end - f.start), _PRIORITY[f.kind], f.start))
    kept: list[Found] = []
    for f in found:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _mask(found: Found, original: str, name: str) -> str:
    if found.kind != "name":
        return MASKS[found.kind]
    if original.casefold() == name.strip().casefold():
        return pseudonymise(original)
    return "某" * len(original)  # the given name alone


def redact(text: str, name: str | None = None) -> Redacted:
    """`text` with its personal data masked, and the kinds it held (see the module's documentation)."""
    found = find_personal_data(text, name)
    if not found:
        return Redacted(text, ())
    parts: list[str] = []
    at = 0
    for f in found:
        parts.append(text[at : f.start])
        parts.append(_mask(f, text[f.start : f.end], name or ""))
        at = f.end
    parts.append(text[at:])
    kinds = {f.kind for f in found}
    return Redacted("".join(parts), tuple(k for k in KINDS if k in kinds))


def redacted(text: str | None, name: str | None = None) -> str:
    """`text` as published (masked); None and "" stay as they are."""
    return redact(text, name).text if text else (text or "")


def personal_data_kinds(text: str | None, name: str | None = None) -> tuple[Kind, ...]:
    """The kinds of personal data `text` holds (the flag coordinators see at intake)."""
    return redact(text, name).kinds if text else ()


def flag_line(kinds: Iterable[str]) -> str:
    """The one-line warning at intake, in Chinese and English; "" when there is nothing to flag.

    注意：意见内容含个人信息（手机号、本人姓名）/ note: the text holds personal information (mobile
    number, the participant's name); it is masked wherever it is published
    """
    labels = [KIND_LABELS[k] for k in KINDS if k in set(kinds)]
    if not labels:
        return ""
    zh = "、".join(label.zh for label in labels)
    en = ", ".join(label.en for label in labels)
    return (
        f"注意：意见内容含个人信息（{zh}）/ note: the text holds personal information ({en}); "
        "it is masked wherever it is published"
    )
