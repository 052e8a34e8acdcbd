"""Personal information in what consultflow shows: names in reports, contacts in logs and errors.

Names in public reports are full, pseudonymised (张秀英 -> 张某某) or left out. Contacts (email
addresses, mobile numbers) are masked wherever they could leak: log lines, stored delivery errors.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

NameMode = Literal["full", "pseudonym", "none"]
NAME_MODES: tuple[NameMode, ...] = ("full", "pseudonym", "none")


def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def pseudonymise(name: str) -> str:
    """The customary public form: the surname kept, the rest replaced (张某某, Zhang X.)."""
    name = name.strip()
    if not name:
        return name
    if _is_cjk(name[0]):
        return name[0] + "某" * max(1, len(name) - 1)
    return name.split()[0][0] + "."


def display_name(name: str, mode: NameMode) -> str:
    """`name` as a report should show it."""
    if mode == "full":
        return name
    if mode == "pseudonym":
        return pseudonymise(name)
    return ""


_EMAIL_PARTS = re.compile(r"([^@\s]{1,2})[^@\s]*(@[^\s]+)")
_DIGITS = re.compile(r"\d(?=\d{2})")
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1\d{10}(?!\d)")


def mask_contact(value: object) -> str:
    """`zhang@example.cn` -> `zh***@example.cn`; `13812345678` -> `*********78`."""
    text = str(value)
    if "@" in text:
        return _EMAIL_PARTS.sub(r"\1***\2", text)
    return _DIGITS.sub("*", text)


def mask_text(text: str) -> str:
    """Free text (an error message, a traceback) with every email address and mobile number masked."""
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_contact(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_contact(m.group(0)), text)
