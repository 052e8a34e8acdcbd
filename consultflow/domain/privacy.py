"""Names in public reports: full, pseudonymised (张秀英 -> 张某某), or left out."""

from __future__ import annotations

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
