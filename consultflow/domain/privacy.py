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


PSEUDONYM_TAIL = "某某"


def pseudonymise(name: str) -> str:
    """The customary public form, of one length whatever the name: 张秀英, 李明 -> 张某某, 李某某; Wang Fang -> W.

    Only the first character is kept, followed by 某某, so a pseudonym tells neither how long the
    name is nor whether the surname is compound (欧阳小明 -> 欧某某, as 欧小明 would be). A Latin
    name keeps its first initial only.
    """
    name = name.strip()
    if not name:
        return name
    if _is_cjk(name[0]):
        return name[0] + PSEUDONYM_TAIL
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
# A mainland mobile (13812345678, 138-1234-5678, 138 1234 5678, +86 …) or a landline with its
# area code (010-12345678, 0755 1234567, (0731)8888 6666), in ASCII or full-width digits.
_D = r"[0-9０-９]"
_SEP = r"[- \u2010-\u2015－　]?"
_PHONE_IN_TEXT = re.compile(
    rf"(?<![0-9０-９])(?:[+＋]?[8８][6６]{_SEP})?[1１]{_D}{{2}}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}(?![0-9０-９])"
    # a landline is not taken out of a hex digest or an identifier: no letter or digit either side
    rf"|(?<![0-9A-Za-z０-９])[(（]?[0０]{_D}{{2,3}}[)）]?{_SEP}{_D}{{3,4}}{_SEP}{_D}{{4}}(?![0-9A-Za-z０-９])"
)


def mask_contact(value: object) -> str:
    """`zhang@example.cn` -> `zh***@example.cn`; `13812345678` -> `*********78`."""
    text = str(value)
    if "@" in text:
        return _EMAIL_PARTS.sub(r"\1***\2", text)
    return _DIGITS.sub("*", text)


def _mask_phone(found: re.Match[str]) -> str:
    """Every digit but the last two starred, separators kept (a full-width number stays full-width)."""
    text = found.group(0)
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    hidden = set(digits[:-2])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


# A database error's text carries the values it was given: SQLAlchemy's "[parameters: (...)]" line,
# PostgreSQL's "DETAIL:  Key (contact)=(...)" and "Failing row contains (...)". Names and texts are
# among them, which no pattern recognises: the values are withheld, the rest of the error kept.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_SQL_DETAIL_VALUES = re.compile(r"(Key \([^)\n]*\)=|Failing row contains )\([^\n]*\)")


def mask_text(text: str) -> str:
    """Free text (an error, a traceback) with every email address and phone number masked.

    Phone numbers are mainland mobiles and landlines with an area code, written with ASCII or
    full-width digits, run together or grouped with spaces or dashes. The values a database error
    quotes (its statement's parameters, a key or row it names) are withheld whatever they are.
    """
    text = _SQL_PARAMETERS.sub("[parameters withheld]", text)
    text = _SQL_DETAIL_VALUES.sub(r"\1(withheld)", text)
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_contact(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(_mask_phone, text)


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
# A landline with its area code (010, 028, 0755…) and 7 or 8 digits, written 028-87765767, 028 8776 5767
# or (028)87765767: kept as 028-87765767 (02887765767 as written). Without its area code it is
# ambiguous, so refused.
_LANDLINE = re.compile(r"[(（]?(0[1-9]\d{1,2})[)）]?[- ]?(\d{3,4})[- ]?(\d{4})")


MAX_CONTACT_CHARS = 254  # the longest address SMTP carries (RFC 5321); every column holds it


def checked_contact(value: str | None) -> str | None:
    """A contact as registered: an email address, a mainland mobile or a landline with its area code, or none.

    Anything else is refused before it can reach an email header, an SMS gateway or the database
    (a line break would break a header or smuggle another one in; an over-long value would not fit
    the column). The refusal never repeats the value: it is personal, and refusals reach logs.

    Raises:
        ValidationError: the contact is neither, holds a control character, or is too long.
    """
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > MAX_CONTACT_CHARS:
        msg = (
            f"contact is {len(text)} characters long; at most {MAX_CONTACT_CHARS} (an email address or a mobile number)"
        )
        raise ValidationError(msg)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        msg = "contact holds a control character (a line break, a tab); give one email address or mobile number"
        raise ValidationError(msg)
    compact = text if "@" in text else re.sub(r"[ -]", "", text)  # 138-1234-5678 is 13812345678
    if _EMAIL_ADDRESS.fullmatch(text) or _MAINLAND_MOBILE.fullmatch(compact):
        return compact
    landline = _LANDLINE.fullmatch(text)
    if landline is not None and 10 <= len(landline[1] + landline[2] + landline[3]) <= 12:
        if text.isdigit():  # 02887765767: where the area code ends is not said, so not guessed
            return compact
        return f"{landline[1]}-{landline[2]}{landline[3]}"  # reached through the webhook's gateway, not by SMS
    msg = (
        "contact is neither an email address nor a mainland mobile number (11 digits starting with 1, optionally +86) "
        "nor a landline with its area code (区号), such as 028-xxxxxxxx"
    )
    raise ValidationError(msg)
