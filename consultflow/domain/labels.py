"""Bilingual labels: every state, category, channel and role is shown in zh or en."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
