"""Bilingual labels: every state, category, channel and role is shown in zh or en."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from consultflow.domain.errors import ValidationError

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@dataclass(frozen=True)
class Label:
    """A name in Chinese and English."""

    zh: str
    en: str

    def get(self, lang: Lang) -> str:
        """The label in `lang`."""
        return self.zh if lang == "zh" else self.en

    def both(self) -> str:
        """Both labels, for places read by mixed teams: '采纳 / Adopted'."""
        return f"{self.zh} / {self.en}"


def _spelling(value: str) -> str:
    """A name as compared: width, case, spaces and punctuation ignored ('Partly adopted' = 'partly_adopted')."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", value).casefold() if ch.isalnum())


def resolve_choice(
    value: str, choices: Mapping[str, Label], what: str, aliases: Mapping[str, Iterable[str]] | None = None
) -> str:
    """The key `value` names: the key itself, either of its labels, or one of its `aliases`.

    A key or label wins over an alias; an alias that is another key's name, or names two keys, is
    ignored. Anything else is refused in one line that lists what is allowed.
    """
    names: dict[str, str] = {}
    for key, label in choices.items():
        for written in (key, label.zh, label.en):
            names.setdefault(_spelling(written), key)
    shorts: dict[str, set[str]] = {}
    for key, written in ((k, w) for k, ws in (aliases or {}).items() if k in choices for w in ws):
        shorts.setdefault(_spelling(written), set()).add(key)
    for spelled, keys in shorts.items():
        if spelled not in names and len(keys) == 1:
            names[spelled] = next(iter(keys))
    found = names.get(_spelling(value))
    if found is not None:
        return found
    allowed = ", ".join(f"{label.zh}/{key}" for key, label in choices.items())
    close = difflib.get_close_matches(value, list(choices), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    msg = f"unknown {what} {value!r}{hint}; allowed: {allowed}"
    raise ValidationError(msg)
