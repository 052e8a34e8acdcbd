"""What text consultflow accepts: printable characters, line breaks and tabs.

Control characters (a bell, an escape, a NUL) have no place in an opinion or a reason: they break
spreadsheets that export it later and terminals that show it. They are refused when typed, and
removed from older rows when exported.
"""

from __future__ import annotations

import re

from consultflow.domain.errors import ValidationError

# What spreadsheets cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE): the C0 controls but tab and newlines.
_ILLEGAL_IN_CELLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# Unicode's control characters (category Cc: U+0000-001F, U+007F-009F) but tab and line feed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def refuse_control_characters(text: str, what: str) -> str:
    """`text` with CR LF as LF; refuses any other control character, naming it and where it is."""
    text = text.replace("\r\n", "\n")
    found = _CONTROL.search(text)
    if found is not None:
        msg = (
            f"{what} contains a control character (U+{ord(found.group()):04X}) at character {found.start() + 1}; "
            "only printable text, line breaks and tabs are allowed"
        )
        raise ValidationError(msg)
    return text


def without_control_characters(text: str) -> str:
    """`text` with what a spreadsheet cannot hold removed (for rows stored before the check)."""
    return _ILLEGAL_IN_CELLS.sub("", text)
