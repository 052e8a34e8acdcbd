"""Keywords of opinions' texts, for theme suggestions: jieba's segmentation and its TF-IDF weights.

jieba (the `themes` extra) ships its dictionary and IDF table: nothing is downloaded. It loads only
here, when suggestions are asked for (about a second, once per process), with its log silenced.
The texts are read as a stream: what is held is one count per distinct word, never the texts.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from consultflow import extras
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.themes import STOP_WORDS, text_contains

MISSING = extras.message("theme suggestions", "themes", verb="need")


@dataclass(frozen=True)
class Keyword:
    """A suggested keyword: how many opinions contain it, and its TF-IDF weight over them all."""

    keyword: str
    opinions: int
    weight: float


def _jieba() -> tuple[Any, Any]:
    """Jieba and its TF-IDF extractor, loaded once, quietly; or one line naming the extra.

    Raises:
        ConfigurationError: jieba is not installed.
    """
    try:
        with warnings.catch_warnings():  # jieba opens its IDF table without closing it
            warnings.simplefilter("ignore", ResourceWarning)
            import jieba  # noqa: PLC0415 - loaded only by the commands that segment text
            import jieba.analyse  # noqa: PLC0415
            import jieba.posseg  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(MISSING) from None
    jieba.setLogLevel(logging.WARNING)  # "Building prefix dict…" goes to stderr otherwise
    return jieba, jieba.analyse.default_tfidf


# Parts of speech kept (jieba.posseg's flags): nouns, verbs, adjectives, idioms, abbreviations and
# Latin words; but never a person's name (nr…) or a place name (ns), so no one is named in a suggestion.
_KEPT = ("n", "v", "a", "i", "j", "l", "eng")
_LEFT_OUT = ("nr", "ns")
_PLACE_ENDINGS = ("村", "镇", "乡", "组", "社区")


def _wanted(word: str, flag: str, stop_words: frozenset[str]) -> bool:
    word = word.strip()
    if len(word) < 2 or word in stop_words or word in STOP_WORDS or word.endswith(_PLACE_ENDINGS):
        return False
    if not flag.startswith(_KEPT) or flag.startswith(_LEFT_OUT):
        return False
    return not all(ch.isdigit() or (ch.isascii() and not ch.isalpha()) for ch in word)


def keywords(texts: Callable[[], Iterable[str]], top: int) -> tuple[list[Keyword], int]:
    """The `top` keywords of the texts by TF-IDF (jieba's IDF table), and how many texts were read.

    A word's weight is its count over all texts times its IDF (a word jieba does not know gets
    the median IDF). Left out: one-character words, numbers, stop words, and names of people and
    places (as jieba tags them, and words ending in 村, 镇, 乡, 组). `texts` gives the texts afresh
    for a second pass, which counts the opinions containing each keyword as `opinion theme add
    --matching` finds them (the keyword anywhere in the text, not only as a word jieba cut).
    """
    jieba, tfidf = _jieba()
    stop_words = frozenset(tfidf.stop_words)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        jieba.initialize()
    counts: Counter[str] = Counter()
    read = 0
    for text in texts():
        read += 1
        counts.update(p.word for p in jieba.posseg.cut(text) if _wanted(p.word, p.flag, stop_words))
    idf: dict[str, float] = tfidf.idf_freq
    median: float = tfidf.median_idf
    ranked = sorted(((w, n * idf.get(w, median)) for w, n in counts.items()), key=lambda p: (-p[1], p[0]))[:top]
    holding: Counter[str] = Counter()
    if ranked:
        for text in texts():
            holding.update(w for w, _weight in ranked if text_contains(text, w))
    return [Keyword(w, holding[w], round(weight, 2)) for w, weight in ranked], read
