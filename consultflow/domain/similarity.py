"""Near-duplicate opinions: groups of texts in one category that say the same thing.

Chinese has no spaces between words, so texts are compared as sets of character bigrams
(Jaccard similarity). Candidates come from a prefix-filtered inverted index (the AllPairs/PPJoin
method): each text indexes only its rarest bigrams, as many as a text at the threshold must share,
so pairs that cannot reach it are never compared and none that can is missed. This is exact where
MinHash/LSH libraries are approximate and would bring SciPy along; a union-find joins pairs into
groups and skips pairs already joined, so a large cluster of copies is not scored pair by pair.
"""

from __future__ import annotations

import math
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.6


def bigrams(text: str) -> frozenset[str]:
    """The text's character bigrams, ignoring spaces, punctuation and letter case."""
    kept = "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if unicodedata.category(ch)[0] in "LN")
    if len(kept) < 2:
        return frozenset({kept}) if kept else frozenset()
    return frozenset(kept[i : i + 2] for i in range(len(kept) - 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


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


def _grams(text: str) -> tuple[str, ...]:
    """The text's bigrams as a sorted tuple of shared strings: a fraction of a frozenset's memory.

    A frozenset of 40 two-character strings, each its own object, takes about 4 KB; the tuple of
    interned strings about 400 bytes. A consultation's open opinions are all held at once.
    """
    return tuple(sorted(map(sys.intern, bigrams(text))))


def _groups_in(category: str, docs: list[tuple[int, tuple[str, ...]]], threshold: float) -> list[DuplicateGroup]:
    # Identical texts (after normalising) are one entry: a hundred copies cost one comparison, not 5,000.
    same: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for oid, grams in docs:
        if grams:
            same[grams].append(oid)
    frequency = Counter(g for grams in same for g in grams)
    ordered = sorted(same.items(), key=lambda d: (len(d[0]), d[1][0]))
    del same
    index: dict[str, list[int]] = defaultdict(list)
    joined = _UnionFind(len(ordered))
    weakest: dict[int, float] = {x: 1.0 for x, (_grams, ids) in enumerate(ordered) if len(ids) > 1}
    for x, (grams, _ids) in enumerate(ordered):
        size = len(grams)
        smallest = threshold * size  # a smaller set cannot reach the threshold (sizes ascend)
        rarest_first = sorted(grams, key=lambda g: (frequency[g], g))
        prefix = rarest_first[: size - math.ceil(threshold * size) + 1]
        candidates: set[int] = set()
        for gram in prefix:
            candidates.update(y for y in index[gram] if len(ordered[y][0]) >= smallest)
        mine = frozenset(grams)
        for y in candidates:
            root_x, root_y = joined.find(x), joined.find(y)
            if root_x == root_y:
                continue
            theirs = ordered[y][0]
            shared = len(mine.intersection(theirs))
            score = shared / (size + len(theirs) - shared)  # Jaccard: the union counted, not built
            if score >= threshold:
                link = min(score, weakest.get(root_x, 1.0), weakest.get(root_y, 1.0))
                joined.union(x, y)
                weakest[joined.find(x)] = link
        for gram in prefix:
            index[gram].append(x)
    members: dict[int, list[int]] = defaultdict(list)
    for x, (_grams, ids) in enumerate(ordered):
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
    by_category: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    for oid, category, text in opinions:
        by_category[category].append((oid, _grams(text)))
    groups = []
    for category in sorted(by_category):  # each category's texts let go of once it is grouped
        groups += _groups_in(category, by_category.pop(category), threshold)
    return sorted(groups, key=lambda g: (-len(g.opinion_ids), g.opinion_ids[0]))
