"""Themes (主题): free tags planners code opinions with, inside the opinion's category.

A theme is short text written as people write it (加强交通设施配套, 学校, 乡村旅游). It is kept
normalised, so the same theme typed twice is one theme: NFKC (full-width letters and digits become
half-width), whitespace collapsed, Latin letters in lower case, punctuation at either end removed.
"""

from __future__ import annotations

import re
import unicodedata

from consultflow.domain.errors import ValidationError
from consultflow.domain.text import refuse_control_characters

MAX_THEME_CHARS = 30
_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = "，。、；：！？,.;:!?·…「」『』《》“”‘’\"'()（）[]【】-—_ "

#: Words too common in villagers' opinions to say what one is about (建议, 希望, 村里…), left out of
#: keyword suggestions along with jieba's own list and any word of one character.
_STOP_WORDS_TEXT = """
建议 希望 要求 请求 恳请 呼吁 反映 提出 认为 觉得 能够 可以 需要 应该 应当 是否 进行 开展 实施 推进 加快
一下 一些 一个 这个 那个 这些 那些 这里 那里 这样 那样 现在 目前 今后 以后 已经 还是 还有 没有 不能 不是
我们 你们 他们 大家 我村 本村 村里 村上 村民 群众 老百姓 百姓 意见 问题 情况 方面 工作 相关 有关 有关部门
政府 部门 领导 同志 地方 时候 方便 解决 考虑 同时 以及 并且 而且 或者 因为 所以 但是 如果 虽然 然后 比较
非常 特别 十分 尽快 尽早 及时 进一步 适当 合理 相应 各种 所有 其他 其它 继续 主要 重要 必要 必须 能否
组织 安排 落实 做好 搞好 争取 支持 帮助 增加 提高 改善 完善 加强 建设 发展 增设 修建 新建 规划
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())


def normalised_theme(raw: str) -> str:
    """The theme as stored, or one line saying what is wrong with it.

    Raises:
        ValidationError: empty once normalised, too long, or holding a control character.
    """
    text = refuse_control_characters(unicodedata.normalize("NFKC", raw), "the theme")
    text = _SPACES.sub(" ", text).strip(_EDGE_PUNCTUATION).strip().lower()
    if not text:
        msg = f"theme {raw!r} is empty once spaces and punctuation are taken off; write a few words, e.g. 学校"
        raise ValidationError(msg)
    if len(text) > MAX_THEME_CHARS:
        msg = f"theme {text[:12]!r}… has {len(text)} characters; at most {MAX_THEME_CHARS} are allowed"
        raise ValidationError(msg)
    return text


def normalised_keyword(raw: str) -> str:
    """A keyword to look for in opinions' texts (`opinion theme add --matching`), as its text is compared.

    Raises:
        ValidationError: empty, or longer than a theme may be.
    """
    text = refuse_control_characters(unicodedata.normalize("NFKC", raw), "--matching").strip()
    if not text:
        msg = "--matching needs a keyword, e.g. --matching 垃圾"
        raise ValidationError(msg)
    if len(text) > MAX_THEME_CHARS:
        msg = f"--matching keyword has {len(text)} characters; at most {MAX_THEME_CHARS} are allowed"
        raise ValidationError(msg)
    return text


def text_contains(text: str, keyword: str) -> bool:
    """Whether an opinion's text contains the keyword, compared as NFKC with Latin letters in lower case."""
    return keyword.lower() in unicodedata.normalize("NFKC", text).lower()
