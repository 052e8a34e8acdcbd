"""The hand-written canonical text is exactly the JSON the chain was defined over, for any content."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from consultflow.domain.audit import AuditContent, canonical_text, payload_text, utc_iso


def defined_canonical(content: AuditContent) -> str:
    """The chain's definition: every field in a dict, dumped with sorted keys and no spaces."""
    data: dict[str, Any] = dict(vars(content))
    data["at"] = content.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data["payload"] = content.payload or {}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


texts = st.text()  # every code point, quotes, backslashes and control characters included
maybe_text = st.none() | texts
maybe_int = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
# hypothesis takes naive bounds and adds the zones itself
moments = st.datetimes(
    min_value=datetime(1000, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=zones,
)


@given(
    kind=texts,
    at=moments,
    actor=texts,
    role=texts,
    consultation_id=st.integers(min_value=0),
    chain_seq=st.integers(min_value=0),
    opinion_id=maybe_int,
    opinion_seq=maybe_int,
    trigger=maybe_text,
    from_state=maybe_text,
    to_state=maybe_text,
    round_no=maybe_int,
    completes_cycle=st.booleans(),
    payload=st.none() | st.dictionaries(texts, json_values, max_size=4),
)
def test_canonical_text_equals_the_defined_json(**fields: Any) -> None:
    """For any content, an event's canonical text is the JSON the chain was defined over, so old digests verify."""
    content = AuditContent(**fields)
    assert content.canonical() == defined_canonical(content)
    assert json.loads(content.canonical())["payload"] == (fields["payload"] or {})


@given(payload=st.dictionaries(texts, json_values, max_size=4))
def test_stored_payload_text_is_the_canonical_payload(payload: dict[str, Any]) -> None:
    """The payload stored with an event reads back as itself and is the very payload its digest covers."""
    text = payload_text(payload)
    assert json.loads(text) == payload
    made = canonical_text(
        actor="a",
        at="2026-01-01T00:00:00.000000Z",
        chain_seq=1,
        completes_cycle=False,
        consultation_id=1,
        from_state=None,
        kind="k",
        opinion_id=None,
        opinion_seq=None,
        payload=text,
        role="r",
        round_no=None,
        to_state=None,
        trigger=None,
    )
    assert json.loads(made)["payload"] == payload


def test_utc_iso_keeps_microseconds_and_converts_zones() -> None:
    """Event times are written in UTC with microseconds, whatever zone they were taken in, even in early years."""
    shanghai = datetime(2026, 11, 29, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert utc_iso(shanghai) == "2026-11-29T00:00:00.000000Z"
    early = datetime(999, 1, 1, tzinfo=timezone.utc)
    assert utc_iso(early) == early.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
