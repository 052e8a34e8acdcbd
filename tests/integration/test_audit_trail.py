"""Tamper evidence and the past: a forged row is found at its event; as-of agrees with a replay."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from consultflow.domain.clock import FixedClock
from consultflow.domain.vocabulary import Field
from consultflow.services import audit, opinion_views, opinions, rounds, statistics, verify
from consultflow.services.context import ServiceContext
from tests.conftest import engine_of
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit


def small_consultation(ctx: ServiceContext) -> tuple[int, list[int]]:
    """Three opinions through two rounds: adopted, rejected, and one still under review."""
    setup = seed(ctx)
    ids = [submit(ctx, setup, f"意见{i}") for i in range(3)]
    for oid in ids:
        opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[0], trigger="give_feedback", fields={Field.TEXT: "请确认"})
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[1], trigger="reject", fields={Field.REASON: "不可行"})
    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=ids[0], trigger="adopt", fields={Field.TEXT: "采纳", Field.PLAN_REF: "v2 §4.3"}
    )
    return setup.consultation_id, ids


def forge(ctx: ServiceContext, statement: str) -> None:
    """Change the audit table the way someone with direct database access would: around the triggers."""
    if engine_of(ctx).dialect.name == "sqlite":
        path = engine_of(ctx).url.database
        assert path
        raw = sqlite3.connect(path)
        with raw:
            raw.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
            raw.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
            raw.execute(statement)
        raw.close()
    else:
        with engine_of(ctx).begin() as conn:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            conn.execute(text(statement))
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


def test_intact_chain_verifies(ctx: ServiceContext) -> None:
    """An untouched consultation's chain checks out, ending at the recorded head."""
    cid, _ = small_consultation(ctx)
    [report] = verify.verify_all(ctx, cid)
    assert report.intact
    assert report.events > 10


def test_edited_event_is_found_at_that_event(ctx: ServiceContext) -> None:
    """Rewriting the reason of a rejection is caught at exactly that event."""
    cid, ids = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        seq = conn.execute(
            text("SELECT chain_seq FROM audit_event WHERE opinion_id = :o AND \"trigger\" = 'reject'"), {"o": ids[1]}
        ).scalar_one()
    forge(
        ctx,
        f'UPDATE audit_event SET payload = \'{{"reason": "可行"}}\' WHERE chain_seq = {seq} AND consultation_id = {cid}',
    )
    [report] = verify.verify_all(ctx, cid)
    assert not report.intact
    assert report.broken is not None
    assert (report.broken.chain_seq, report.broken.opinion_id, report.broken.trigger) == (seq, ids[1], "reject")
    assert "edited" in report.broken.problem


def test_payloads_stored_with_spaces_still_verify_and_edits_still_show(ctx: ServiceContext) -> None:
    """Events written before payloads were stored compactly verify; an edit in that form is still caught."""
    cid, _ids = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        rows = conn.execute(text("SELECT id, chain_seq, payload FROM audit_event WHERE payload <> '{}'")).all()
    assert rows, "the consultation should have events with payloads"
    cases = []
    for event_id, _seq, payload in rows:
        assert payload == json.dumps(json.loads(payload), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        spaced = json.dumps(json.loads(payload), ensure_ascii=False, sort_keys=True).replace("'", "''")
        assert spaced != payload
        cases.append(f"WHEN {event_id} THEN '{spaced}'")
    forge(ctx, f"UPDATE audit_event SET payload = CASE id {' '.join(cases)} END WHERE payload <> '{{}}'")
    [report] = verify.verify_all(ctx, cid)
    assert report.intact, report.broken
    seq = next(s for _i, s, p in rows if '"reason"' in p)  # the rejection (its reason is sealed)
    forge(ctx, f'UPDATE audit_event SET payload = \'{{"reason": "可行"}}\' WHERE chain_seq = {seq}')
    [report] = verify.verify_all(ctx, cid)
    assert report.broken is not None
    assert report.broken.chain_seq == seq


def test_deleted_event_and_cut_off_end_are_found(ctx: ServiceContext) -> None:
    """Removing an event in the middle breaks the sequence; removing the last one falls short of the head."""
    cid, _ = small_consultation(ctx)
    forge(ctx, f"DELETE FROM audit_event WHERE consultation_id = {cid} AND chain_seq = 5")
    [middle] = verify.verify_all(ctx, cid)
    assert middle.broken is not None
    assert middle.broken.chain_seq == 6
    assert "#5 is missing" in middle.broken.problem


def test_removed_tail_is_found(ctx: ServiceContext) -> None:
    """Cutting events off the end is caught against the head the consultation recorded."""
    cid, _ = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        last = conn.execute(text(f"SELECT max(chain_seq) FROM audit_event WHERE consultation_id = {cid}")).scalar_one()
    forge(ctx, f"DELETE FROM audit_event WHERE consultation_id = {cid} AND chain_seq = {last}")
    [report] = verify.verify_all(ctx, cid)
    assert report.broken is not None
    assert "removed from the end" in report.broken.problem


def test_as_of_agrees_with_a_replay_at_every_step(ctx: ServiceContext, clock: FixedClock) -> None:
    """Snapshots of the live state taken while the operations ran equal `as-of` at those moments."""
    setup = seed(ctx)
    snapshots: list[tuple[datetime, dict[int, tuple[str, int]]]] = []

    def snap() -> None:
        live = {
            v.id: (v.state, v.rounds_count)
            for v in opinion_views.list_opinions(ctx, consultation_id=setup.consultation_id)
        }
        snapshots.append((clock.now(), live))
        clock.advance(timedelta(hours=1))

    ids = [submit(ctx, setup, f"意见{i}") for i in range(4)]
    snap()
    for oid in ids:
        opinions.fire(ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    snap()
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[0], trigger="give_feedback", fields={Field.TEXT: "x"})
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[1], trigger="give_feedback", fields={Field.TEXT: "x"})
    opinions.fire(ctx, acting=EXPERT, opinion_id=ids[1], trigger="reparticipate", fields={Field.STANCE: "object"})
    snap()
    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    snap()
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    opinions.fire(
        ctx, acting=PLANNER, opinion_id=ids[0], trigger="partly_adopt", fields={Field.TEXT: "x", Field.PLAN_REF: "v2"}
    )
    opinions.fire(ctx, acting=COORD, opinion_id=ids[3], trigger="withdraw", fields={})
    snap()
    for moment, live in snapshots:
        rebuilt = {r.opinion_id: (r.state, r.rounds_count) for r in audit.as_of(ctx, moment, setup.consultation_id)}
        assert rebuilt == live, moment
    before_any = audit.as_of(ctx, snapshots[0][0] - timedelta(days=1), setup.consultation_id)
    assert before_any == []


def test_history_filters(ctx: ServiceContext) -> None:
    """Events by state, round, category and time range."""
    cid, ids = small_consultation(ctx)
    into_review = audit.search_events(ctx, audit.EventFilter(consultation_id=cid, state="under_review"))
    assert sorted({e.opinion_id or 0 for e in into_review}) == ids
    round_two = audit.search_events(ctx, audit.EventFilter(consultation_id=cid, round_no=2))
    assert [e.trigger for e in round_two] == ["adopt"]
    adopted = audit.search_events(ctx, audit.EventFilter(consultation_id=cid, outcome="adopted"))
    assert {e.opinion_id for e in adopted} == {ids[0]}
    first = into_review[0].at
    later = audit.search_events(ctx, audit.EventFilter(consultation_id=cid, since=first + timedelta(seconds=1)))
    assert all(e.at > first for e in later)
    assert audit.search_events(ctx, audit.EventFilter(consultation_id=cid, category="industry")) == []


def test_funnel_counts_each_step(ctx: ServiceContext) -> None:
    """Round 1: three entered, one got feedback, one decided, two carried over; round 2: two entered, one decided."""
    cid, _ = small_consultation(ctx)
    rows = statistics.funnel(ctx, cid)
    assert [(r.round_no, r.entered, r.feedback, r.reparticipated, r.decided, r.carried_over) for r in rows] == [
        (1, 3, 1, 0, 1, 2),
        (2, 2, 0, 0, 1, 0),
    ]


@pytest.mark.parametrize("by", ["category", "channel"])
def test_rounds_histogram_by_group_adds_up(ctx: ServiceContext, by: str) -> None:
    """Grouped histograms sum to the overall one."""
    cid, _ = small_consultation(ctx)
    overall = {o.outcome: o.total for o in statistics.rounds_report(ctx, cid).outcomes}
    grouped = statistics.rounds_report(ctx, cid, by="category" if by == "category" else "channel")
    sums: dict[str, int] = {}
    for o in grouped.outcomes:
        sums[o.outcome] = sums.get(o.outcome, 0) + o.total
    assert sums == overall
