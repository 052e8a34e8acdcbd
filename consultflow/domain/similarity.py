"""Near-duplicate opinions: groups of texts in one category that make the same request.

Villagers say one request many ways: clauses in another order ("在村口修桥，方便出行" / "为了方便出行，
建议在村口修一座桥"), other words for the same thing (修/建/修建, 道路/路), and filler (建议, 希望, 请).
A text is reduced to what carries its request before it is compared:

- clauses are cut at punctuation, and no feature spans two of them, so their order does not count;
- filler words (建议, 希望, 请, 我们, 村民, measure words like 一座) and generic verbs of building
  (修, 建, 修建, 安装, 增设...) are dropped, and common synonyms are written one way (道路 → 路,
  老年人 → 老人, 三至五组 → 三组至五组);
- what is left is a set of character bigrams, each within one stretch of text; a facility the
  lexicon knows (桥, 路, 路灯, 卫生室...) is one feature of its own.

Two texts are alike by the Jaccard similarity of these sets. Places and facilities are also read
out of the text (a village "青龙村", a group "三组", a facility), and two texts that both name
villages, groups or facilities of one kind and share none of them are different requests whatever
their score: a bridge is not a road in the same village, and the same bridge in another village is
another bridge to answer for.

Candidates come from a prefix-filtered inverted index (the AllPairs/PPJoin method): each text
indexes only its rarest features, as many as a text at the threshold must share, so pairs that
cannot reach it are never compared and none that can is missed. This is exact where MinHash/LSH
libraries are approximate and would bring SciPy along; a union-find joins pairs into groups and
skips pairs already joined, so a large cluster of copies is not scored pair by pair. No
segmentation library (jieba) is used: the words that matter here are a short list, kept below,
and a segmenter's dictionary would add its load time to every search.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

DEFAULT_THRESHOLD = 0.6


# Dropped wherever they stand (the text is cut there): asking, politeness, who asks, measure words,
# and verbs that only say "build" or "do", which every request has.
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FILLERS = _words(
    "建议 希望 恳请 请求 请 麻烦 我们 我 大家 村民们 村民 群众 老百姓 政府 能够 可以 能 尽快 早日 早点 需要 要求 "
    "一下 一些 一点 一座 一条 一个 一所 一处 一批 几个 个 的 了 把 在 给 为了 为 对 帮助 帮忙 帮 "
    "进行 开展 推进 推广 支持 鼓励 多 好 太 很 都 还是 谢谢 一修 搞些 增加 发展 依托 "
    "修建 新建 建设 兴建 建成 修好 修复 维修 修 建 搞 办 开办 设立 增设 增建 设置 设 安装 加装 装上 装 配备 补充"
)

# Facilities and works: each is one feature of its own, under its first name. Two texts that both
# name facilities and share none ask for different things.
FACILITIES = (
    "桥 桥梁",
    "路 道路 公路 路面",
    "路灯",
    "红绿灯 信号灯 交通灯",
    "减速带",
    "卫生室 卫生站 诊所",
    "停车场",
    "幼儿园",
    "广场",
    "健身器材",
    "公交站 公交车站 公交站点 候车亭",
    "垃圾收集点 垃圾桶 垃圾池 垃圾站",
    "污水处理 污水处理设施 污水处理站",
    "养老中心 养老服务中心 养老院 日间照料中心",
    "老年食堂 老年人食堂 老人食堂",
    "农贸市场 集市",
    "冷库 冷链仓库 冷藏库",
    "电商服务站 电子商务服务站 电子商务服务站点 电商服务站点",
    "加工厂",
    "机耕道",
    "护栏 防护栏",
    "水渠 灌溉渠 灌溉水渠",
    "山坪塘",
    "基站 通信基站",
    "自来水",
    "农家书屋",
    "研学基地",
    "民宿",
    "采摘园 观光采摘园",
    "厕所 旱厕 户厕 水冲厕所",
)

# Other words written one way (the first of each line). A word that holds a facility's name but is
# not one (走路, 销路) is listed as itself so that it is left alone.
SYNONYMS = (
    "老人 老年人",
    "看病 就医",
    "至 到 去",
    "清淤 清理淤泥",
    "治理 整治",
    "拓宽 加宽",
    "电商 电子商务",
    "图书 书",
    "班次 几班",
    "公交 公交车",
    "旁 旁边 附近 周边",
    "通 接通 通上",
    "难 困难",
    "走路",
    "销路",
    "出路",
    "路口",
    "电路",
    "太阳能",
)

_NUMERALS = "〇一二三四五六七八九"
_NUMBER = r"[0-9一二三四五六七八九十两〇]+"
_GROUP_SPAN = re.compile(rf"({_NUMBER})(?:组)?[至到]({_NUMBER})组")
_GROUP = re.compile(rf"({_NUMBER})组")
# A village: two characters and 村, unless they end in a word that takes 村 (农村, 乡村, 本村...).
_VILLAGE = re.compile(r"([^\W\d_]{2})村")
_NOT_A_NAME = frozenset("农乡本全各邻我该此外这那")
_FACILITY_BASE = 0xE000  # a facility's feature is one private-use character
# A clause that only says why (方便出行, 为了孩子安全) is left out when another says what.
_PURPOSE = ("方便", "为了", "保障", "保证", "防止", "解决", "提高", "带动", "改善", "增加收入")
# What is asked for weighs more than the words around it: a facility counts as this many features,
# a village as this many more than its two bigrams (features a text shares with another because
# they name the same place or thing).
_CLAUSE = re.compile(r"[^\w]+|_|(?=" + "|".join(_PURPOSE) + ")")
FACILITY_WEIGHT = 3
VILLAGE_WEIGHT = 2


def _chinese_number(digits: str) -> str:
    """Arabic digits as the Chinese numeral villagers also write (3 → 三, 12 → 十二)."""
    if not digits.isdigit() or not digits.isascii():
        return digits.replace("两", "二")
    n = int(digits)
    if n < 10:
        return _NUMERALS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _NUMERALS[tens]) + "十" + ("" if ones == 0 else _NUMERALS[ones])
    return digits


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex for many words that matches the longest at each place in time linear in the text."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return pattern(trie)


@cache
def _lexicon() -> tuple[re.Pattern[str], Mapping[str, str]]:
    """The words to rewrite and what each becomes (built on first use, not at import)."""
    into: dict[str, str] = {}
    for word in FILLERS:
        into[word] = " "
    for line in SYNONYMS:
        first, *others = line.split()
        for word in (first, *others):
            into[word] = first
    for n, line in enumerate(FACILITIES):
        mark = " " + chr(_FACILITY_BASE + n) + " "
        for word in line.split():
            into[word] = mark
    return re.compile(_trie_pattern(into)), into


@dataclass(frozen=True)
class Features:
    """What a text is compared by: its features (sorted, shared strings) and the places and facilities it names."""

    grams: tuple[str, ...]
    keys: tuple[str, ...]  # "v:青龙", "g:三", "f:" + facility mark: sorted


def _clauses(text: str) -> list[str]:
    """The text's clauses, without those that only say why when another says what."""
    clauses = [c for c in _CLAUSE.split(text) if c]
    asked = [c.lstrip("建议希望请要求") for c in clauses]
    what = [
        c for c, a in zip(clauses, asked, strict=True) if a and not a.startswith(_PURPOSE) and not a.endswith("方便")
    ]
    return what or clauses


def features(text: str) -> Features:
    """The text reduced to what carries its request (see the module's docstring)."""
    pattern, into = _lexicon()
    kept = unicodedata.normalize("NFKC", text).lower()
    kept = _GROUP_SPAN.sub(lambda m: f"{m[1]}组至{m[2]}组", kept)
    grams: set[str] = set()
    keys: set[str] = set()
    pieces: list[str] = []
    for clause in _clauses(kept):
        at = 0
        for m in _VILLAGE.finditer(clause):  # a village's name is not rewritten (石桥村 is not a bridge)
            if m[1][1] in _NOT_A_NAME:
                continue
            keys.add("v:" + m[1])
            grams.update(f"v{n}:{m[1]}" for n in range(VILLAGE_WEIGHT))
            pieces += [pattern.sub(lambda w: into[w[0]], clause[at : m.start()]), m[0]]
            at = m.end()
        pieces.append(pattern.sub(lambda w: into[w[0]], clause[at:]))
    for piece in pieces:
        for part in re.split(r"([^\w]|_)", piece):
            if not part or part == " ":
                continue
            if "\ue000" <= part <= "\uf8ff":
                keys.add("f:" + part)
                grams.update(f"{part}{n}" for n in range(FACILITY_WEIGHT))
                continue
            if not part.strip("_") or not part.isalnum():
                continue
            keys.update("g:" + _chinese_number(m[1]) for m in _GROUP.finditer(part))
            if len(part) == 1:
                grams.add(part)
            else:
                grams.update(part[i : i + 2] for i in range(len(part) - 1))
    return Features(tuple(sorted(map(sys.intern, grams))), tuple(sorted(map(sys.intern, keys))))


def different_things(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Both name villages (or groups, or facilities) and share none of that kind: different requests."""
    if not a or not b:
        return False
    mine: dict[str, set[str]] = defaultdict(set)
    for key in a:
        mine[key[0]].add(key)
    theirs: dict[str, set[str]] = defaultdict(set)
    for key in b:
        theirs[key[0]].add(key)
    return any(kind in theirs and not (keys & theirs[kind]) for kind, keys in mine.items())


def bigrams(text: str) -> frozenset[str]:
    """The text's character bigrams, ignoring spaces, punctuation and letter case (no other rewriting)."""
    kept = "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if unicodedata.category(ch)[0] in "LN")
    if len(kept) < 2:
        return frozenset({kept}) if kept else frozenset()
    return frozenset(kept[i : i + 2] for i in range(len(kept) - 1))


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    a, b = frozenset(a), frozenset(b)
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similarity(a: str, b: str) -> float:
    """How alike two texts' requests are: 0 for different places or facilities, else the Jaccard of their features."""
    fa, fb = features(a), features(b)
    return 0.0 if different_things(fa.keys, fb.keys) else jaccard(fa.grams, fb.grams)


@dataclass(frozen=True)
class DuplicateGroup:
    """Opinions that say the same thing; `similarity` is the weakest link that joined them."""

    category: str
    opinion_ids: tuple[int, ...]
    similarity: float


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def _groups_in(category: str, docs: list[tuple[int, Features]], threshold: float) -> list[DuplicateGroup]:
    # Identical texts (after normalising) are one entry: a hundred copies cost one comparison, not 5,000.
    same: dict[Features, list[int]] = defaultdict(list)
    for oid, found in docs:
        if found.grams:
            same[found].append(oid)
    frequency = Counter(g for found in same for g in found.grams)
    ordered = sorted(same.items(), key=lambda d: (len(d[0].grams), d[1][0]))
    del same
    index: dict[str, list[int]] = defaultdict(list)
    joined = _UnionFind(len(ordered))
    weakest: dict[int, float] = {x: 1.0 for x, (_found, ids) in enumerate(ordered) if len(ids) > 1}
    for x, (found, _ids) in enumerate(ordered):
        grams = found.grams
        size = len(grams)
        smallest = threshold * size  # a smaller set cannot reach the threshold (sizes ascend)
        rarest_first = sorted(grams, key=lambda g: (frequency[g], g))
        prefix = rarest_first[: size - math.ceil(threshold * size) + 1]
        candidates: set[int] = set()
        for gram in prefix:
            candidates.update(y for y in index[gram] if len(ordered[y][0].grams) >= smallest)
        mine = frozenset(grams)
        for y in candidates:
            root_x, root_y = joined.find(x), joined.find(y)
            if root_x == root_y:
                continue
            theirs = ordered[y][0]
            shared = len(mine.intersection(theirs.grams))
            score = shared / (size + len(theirs.grams) - shared)  # Jaccard: the union counted, not built
            if score >= threshold and not different_things(found.keys, theirs.keys):
                link = min(score, weakest.get(root_x, 1.0), weakest.get(root_y, 1.0))
                joined.union(x, y)
                weakest[joined.find(x)] = link
        for gram in prefix:
            index[gram].append(x)
    members: dict[int, list[int]] = defaultdict(list)
    for x, (_found, ids) in enumerate(ordered):
        members[joined.find(x)].extend(ids)
    return [
        DuplicateGroup(category, tuple(sorted(ids)), round(weakest[root], 3))
        for root, ids in members.items()
        if len(ids) > 1
    ]


def duplicate_groups(
    opinions: Iterable[tuple[int, str, str]], threshold: float = DEFAULT_THRESHOLD
) -> list[DuplicateGroup]:
    """Groups of near-duplicates among (id, category, text), within each category; largest first."""
    if not 0 < threshold <= 1:
        msg = f"the similarity threshold is {threshold}; it must be above 0 and at most 1"
        raise ValueError(msg)
    by_category: dict[str, list[tuple[int, Features]]] = defaultdict(list)
    for oid, category, text in opinions:
        by_category[category].append((oid, features(text)))
    groups = []
    for category in sorted(by_category):  # each category's texts let go of once it is grouped
        groups += _groups_in(category, by_category.pop(category), threshold)
    return sorted(groups, key=lambda g: (-len(g.opinion_ids), g.opinion_ids[0]))
