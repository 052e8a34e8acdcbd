"""Near-duplicate groups: the prefix-filtered search finds exactly what comparing every pair would."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from consultflow.domain.similarity import duplicate_groups, similarity

KNOWN = [
    (1, "environment_roads", "建议硬化三组至五组的通组道路"),
    (2, "environment_roads", "建议硬化三组至五组通组道路。"),
    (3, "environment_roads", "建议 硬化三组至五组的通组道路！"),
    (4, "public_services", "希望增设村卫生室，方便老人看病"),
    (5, "public_services", "希望增设村卫生室方便老年人看病"),
    (6, "industry", "建议硬化三组至五组的通组道路"),  # same words, another category: not a duplicate of 1
    (7, "industry", "发展研学基地带动乡村旅游"),
    (8, "public_services", "学校门口需要安装红绿灯"),
]


def _brute_force(opinions: list[tuple[int, str, str]], threshold: float) -> set[frozenset[int]]:
    """Every pair compared: connected components of pairs at or above the threshold."""
    parent = {oid: oid for oid, _, _ in opinions}

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for (a, ca, ta), (b, cb, tb) in itertools.combinations(opinions, 2):
        if ca == cb and similarity(ta, tb) >= threshold:
            parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for oid, _, _ in opinions:
        groups.setdefault(find(oid), set()).add(oid)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def test_a_known_set_groups_as_a_planner_would() -> None:
    """Reworded copies group within their category; punctuation and spaces do not matter."""
    groups = duplicate_groups(KNOWN, 0.6)
    assert [(g.category, g.opinion_ids) for g in groups] == [
        ("environment_roads", (1, 2, 3)),
        ("public_services", (4, 5)),
    ]
    assert all(0.6 <= g.similarity <= 1 for g in groups)
    assert groups[0].similarity < 1  # 2 is reworded, so the weakest link is below identical


texts = st.text(alphabet="修路建议卫生室村组道硬化增设学校灯青龙白马三五，", min_size=0, max_size=14)


@settings(max_examples=200, deadline=None)
@given(
    opinions=st.lists(st.tuples(st.sampled_from(["industry", "roads"]), texts), max_size=30),
    threshold=st.sampled_from([0.3, 0.5, 0.6, 0.8, 1.0]),
)
def test_the_index_misses_no_pair_and_invents_none(opinions: list[tuple[str, str]], threshold: float) -> None:
    """Against the brute force on random Chinese texts: the same groups, whatever the threshold."""
    numbered = [(i + 1, category, text) for i, (category, text) in enumerate(opinions)]
    found = {frozenset(g.opinion_ids) for g in duplicate_groups(numbered, threshold)}
    assert found == _brute_force(numbered, threshold)
