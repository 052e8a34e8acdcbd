"""Duplicates as villagers paraphrase: recall and precision on a labelled set, at the default threshold.

`data/paraphrase_groups.jsonl` holds one request a line, each said 3 to 5 ways (clauses reordered,
修/建/修建 and 道路/路 swapped, 建议/希望/请 added or left out, a reason given or not). The set
decides what counts as the same request:
- the same thing asked for the same place, however it is worded, is one request;
- lines with `near_miss_of` are distinct requests close to another: the same village but another
  facility (a road, not a bridge; a speed bump, not traffic lights), or the same facility in another
  village or for other groups (白马村's bridge is not 青龙村's; 三组至五组's road is not 六组至七组's).
  Merging them would answer one villager about another's request, so they are not duplicates.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from consultflow.domain.similarity import DEFAULT_THRESHOLD, duplicate_groups

DATA = Path(__file__).parent / "data" / "paraphrase_groups.jsonl"


def _labelled() -> tuple[list[tuple[int, str, str]], dict[int, str]]:
    opinions: list[tuple[int, str, str]] = []
    request_of: dict[int, str] = {}
    for line in DATA.read_text(encoding="utf-8").splitlines():
        request = json.loads(line)
        for text in request["texts"]:
            oid = len(opinions) + 1
            opinions.append((oid, request["category"], text))
            request_of[oid] = request["id"]
    return opinions, request_of


def test_the_labelled_set_is_big_enough() -> None:
    """The duplicate figures rest on a set big enough to mean something: 30+ requests and 10+ explained near misses."""
    requests = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    same_kind = [r for r in requests if "near_miss_of" not in r]
    assert len(same_kind) >= 30
    assert all(4 <= len(r["texts"]) <= 6 for r in same_kind)
    ids = {r["id"] for r in requests}
    near = [r for r in requests if "near_miss_of" in r]
    assert len(near) >= 10
    assert all(r["near_miss_of"] in ids and r["why"] for r in near)


def test_paraphrases_are_found_and_near_misses_kept_apart() -> None:
    """At the default threshold: at least 85% of same-request pairs found, at least 90% of found pairs right."""
    opinions, request_of = _labelled()
    groups = duplicate_groups(opinions, DEFAULT_THRESHOLD)
    found = {frozenset(pair) for g in groups for pair in itertools.combinations(g.opinion_ids, 2)}
    same = {
        frozenset((a, b))
        for (a, _, _), (b, _, _) in itertools.combinations(opinions, 2)
        if request_of[a] == request_of[b]
    }
    recall = len(found & same) / len(same)
    precision = len(found & same) / len(found)
    assert recall >= 0.85, f"recall {recall:.3f}"
    assert precision >= 0.90, f"precision {precision:.3f}"
