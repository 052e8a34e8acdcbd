"""Personal information in what consultflow shows: names in reports, contacts in logs and errors.

Names in public reports are full, pseudonymised (张秀英 -> 张某某) or left out. Contacts (email
addresses, mobile numbers) are masked wherever they could leak: log lines, stored delivery errors.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import MutableMapping
from typing import Any, Literal

from consultflow.domain.errors import ValidationError

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


SENSITIVE_KEYS = frozenset({"contact", "email", "phone", "address", "recipient_address"})


def redact_fields(fields: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """`fields` with contacts masked in every value: whole values under contact keys, inside any text.

    Exceptions become their masked text, since their message may carry a recipient's address.
    """
    for key, value in fields.items():
        if value is None:
            continue
        if key in SENSITIVE_KEYS:
            fields[key] = mask_contact(value)
        elif isinstance(value, str):
            fields[key] = mask_text(value)
        elif isinstance(value, BaseException):
            fields[key] = mask_text(f"{type(value).__name__}: {value}")
    return fields


_EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_MAINLAND_MOBILE = re.compile(r"(?:\+?86[- ]?)?1[3-9]\d{9}")


def checked_contact(value: str | None) -> str | None:
    """A contact as registered: an email address or a mainland mobile number, or none.

    Anything else is refused before it can reach an email header or an SMS gateway (a line break
    there would break the header, or smuggle another one in).

    Raises:
        ValidationError: the contact is neither.
    """
    text = (value or "").strip()
    if not text:
        return None
    compact = text if "@" in text else re.sub(r"[ -]", "", text)  # 138-1234-5678 is 13812345678
    if _EMAIL_ADDRESS.fullmatch(text) or _MAINLAND_MOBILE.fullmatch(compact):
        return compact
    msg = (
        f"contact {mask_text(text)!r} is neither an email address nor a mainland mobile number "
        "(11 digits starting with 1, optionally +86)"
    )
    raise ValidationError(msg)
