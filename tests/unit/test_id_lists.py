"""Opinion id lists as coordinators type them on the command line."""

from __future__ import annotations

from consultflow.cli.opinion import parse_ids


def test_opinion_id_lists() -> None:
    """Ids, comma lists and ranges parse in order without repeats; anything else is refused."""
    assert parse_ids("12") == [12]
    assert parse_ids("3,5,8") == [3, 5, 8]
    assert parse_ids("1-3,2,9") == [1, 2, 3, 9]
    assert parse_ids("5-3") is None
    assert parse_ids("a") is None
    assert parse_ids("") is None
    assert parse_ids("1-1000000") == list(range(1, 1_000_001))  # a province's consultation in one range
    assert parse_ids("1-2147483647") is None  # more ids than one argument may hold in memory
    assert len(parse_ids("1-1000000,1000001-2000000") or []) == 2_000_000
    assert parse_ids("1-1000000,1000001-2000001") is None
