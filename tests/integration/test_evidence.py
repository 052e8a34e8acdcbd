"""Evidence that outlives the database: live rows checked against the events, and heads published earlier."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from consultflow.domain.audit import AuditContent, ChainKey, chain_hash
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, verify
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent
from tests.conftest import engine_of, sql_uow
from tests.helpers import COORD, PLANNER
from tests.integration.test_audit_trail import forge, small_consultation


def _sql(ctx: ServiceContext, statement: str) -> None:
    with engine_of(ctx).begin() as conn:
        conn.execute(text(statement))


def rehash_chain(ctx: ServiceContext, cid: int, key: ChainKey | None = None) -> str:
    """Edit the third event's actor and recompute every hash with consultflow's own function; the new head."""
    with sql_uow(ctx) as uow:
        rows = list(
            uow.session.scalars(
                select(AuditEvent).where(AuditEvent.consultation_id == cid).order_by(AuditEvent.chain_seq)
            )
        )
        fields = [f for f in AuditContent.__dataclass_fields__ if f != "payload"]
        stored: dict[int, str] = dict(uow.session.execute(text("SELECT id, payload FROM audit_event")).all())
        prev, statements = rows[0].prev_hash, []
        for i, row in enumerate(rows):
            content = AuditContent(**{f: getattr(row, f) for f in fields}, payload=json.loads(stored[row.id]))
            actor = "某某" if i == 2 else row.actor
            digest = chain_hash(prev, replace(content, actor=actor), key)
            statements.append(
                f"UPDATE audit_event SET actor = '{actor}', prev_hash = '{prev}', hash = '{digest}' WHERE id = {row.id}"
            )
            prev = digest
    forge(ctx, statements[0])  # on SQLite this removes the triggers; what follows then goes straight in
    for statement in statements[1:]:
        (_sql if engine_of(ctx).dialect.name == "sqlite" else forge)(ctx, statement)
    return prev


def test_a_live_row_edited_behind_the_chain_is_caught(ctx: ServiceContext) -> None:
    """`UPDATE opinion SET state='adopted'` changes reports, but verify names the opinion and what changed."""
    cid, ids = small_consultation(ctx)
    assert verify.verify_chain(ctx, cid).intact
    _sql(ctx, f"UPDATE opinion SET state = 'adopted', outcome = 'adopted' WHERE id = {ids[1]}")
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None
    assert f"opinion {ids[1]}: the live state is 'adopted' but its events say 'rejected'" in report.broken.problem


@pytest.mark.parametrize(
    ("column", "value"), [("rounds_count", "7"), ("last_seq", "last_seq + 1"), ("assigned_planner_id", "NULL")]
)
def test_every_maintained_column_is_compared(ctx: ServiceContext, column: str, value: str) -> None:
    """Rounds count, sequence number and the assigned planner are checked like the state."""
    cid, ids = small_consultation(ctx)
    opinions.assign(ctx, acting="李协调", opinion_ids=[ids[2]], planner=PLANNER)
    _sql(ctx, f"UPDATE opinion SET {column} = {value} WHERE id = {ids[2]}")
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None and f"opinion {ids[2]}" in report.broken.problem


def test_opinions_only_the_live_rows_or_only_the_events_have_are_named(ctx: ServiceContext) -> None:
    """The live rows and the events' summaries are merged by id: a row without events, or events
    without a row, is named; a live row that disagrees with its events is named first."""
    cid, ids = small_consultation(ctx)
    other = consultations.create_consultation(ctx, acting=COORD, title="另一个征集", area="别处")
    _sql(ctx, f"UPDATE opinion SET consultation_id = {other.id} WHERE id = {ids[0]}")  # its events stay behind
    _sql(ctx, f"UPDATE opinion SET rounds_count = rounds_count + 9 WHERE id = {ids[2]}")
    first = verify.verify_chain(ctx, cid).broken
    assert first is not None and f"opinion {ids[2]}: the live rounds count is 9" in first.problem
    _sql(ctx, f"UPDATE opinion SET rounds_count = rounds_count - 9 WHERE id = {ids[2]}")
    moved = verify.verify_chain(ctx, cid).broken
    assert moved is not None
    assert moved.problem == f"events record opinion {ids[0]}, which the live tables no longer have"
    _sql(ctx, f"UPDATE opinion SET consultation_id = {cid} WHERE id = {ids[0]}")
    assert verify.verify_chain(ctx, cid).intact
    columns = (
        "consultation_id, workflow_id, participant_id, recorded_by_id, category, channel, text, state, "
        "state_entered_at, current_round, rounds_count, outcome, last_seq, submitted_at, version"
    )
    _sql(ctx, f"INSERT INTO opinion ({columns}) SELECT {columns} FROM opinion WHERE id = {ids[1]}")
    with engine_of(ctx).connect() as conn:
        planted = conn.execute(text("SELECT max(id) FROM opinion")).scalar_one()
    added = verify.verify_chain(ctx, cid).broken
    assert added is not None and added.problem == f"the live tables have opinion {planted}, which no event records"


def test_a_tail_cut_off_with_a_rewound_head_is_caught(ctx: ServiceContext) -> None:
    """Deleting the last event and rewinding the consultation's head fools the chain, not the replay."""
    cid, _ = small_consultation(ctx)
    with engine_of(ctx).connect() as conn:
        seq, prev = conn.execute(
            text(f"SELECT chain_seq, prev_hash FROM audit_event WHERE consultation_id = {cid} ORDER BY chain_seq DESC")
        ).first()  # type: ignore[misc]
    forge(ctx, f"DELETE FROM audit_event WHERE consultation_id = {cid} AND chain_seq = {seq}")
    _sql(ctx, f"UPDATE consultation SET chain_seq = {seq - 1}, chain_head = '{prev}' WHERE id = {cid}")
    report = verify.verify_chain(ctx, cid)
    assert not report.intact and report.broken is not None
    assert "its events say" in report.broken.problem and "a live row was edited" in report.broken.problem


def test_a_published_head_proves_the_past_and_catches_a_recomputed_chain(ctx: ServiceContext) -> None:
    """A head published last month still verifies after new events; a chain rewritten and rehashed does not."""
    cid, ids = small_consultation(ctx)
    published = verify.head(ctx, cid)
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[2], trigger="give_feedback", fields={Field.TEXT: "后来的反馈"})
    assert verify.verify_chain(ctx, cid, expect_head=published).intact
    # Someone with write access edits an early event and recomputes every hash after it with our function.
    prev = rehash_chain(ctx, cid)
    _sql(ctx, f"UPDATE consultation SET chain_head = '{prev}' WHERE id = {cid}")
    assert verify.verify_chain(ctx, cid).intact  # the chain alone cannot tell
    caught = verify.verify_chain(ctx, cid, expect_head=published)
    assert not caught.intact and caught.broken is not None and "published head" in caught.broken.problem


def test_a_malformed_head_is_one_clear_line() -> None:
    """--expect-head takes exactly what `audit head` prints."""
    with pytest.raises(ValidationError, match="SEQ:HASH"):
        verify.parse_head("12:nothex")
    assert verify.parse_head("12:" + "a" * 64) == (12, "a" * 64)


KEY = ChainKey(b"county-secret-0123456789abcdef-0123")


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(ctx: ServiceContext) -> None:
    """With a key outside the database, rehashing an edited chain with plain SHA-256 is caught."""
    ctx.chain_key = KEY
    cid, _ = small_consultation(ctx)
    report = verify.verify_chain(ctx, cid)
    assert report.intact and report.mode == f"HMAC-SHA256 with key {KEY.key_id}"
    prev = rehash_chain(ctx, cid)  # the forger has the database, not the key
    _sql(ctx, f"UPDATE consultation SET chain_head = '{prev}' WHERE id = {cid}")
    caught = verify.verify_chain(ctx, cid)
    assert not caught.intact and caught.broken is not None
    assert caught.broken.chain_seq == 1 and "does not match its hash" in caught.broken.problem


def test_clearing_the_key_id_to_pass_as_unkeyed_is_refused_when_keys_are_required(ctx: ServiceContext) -> None:
    """A forger who also clears the stored key id gets an 'unkeyed' chain; --require-keyed refuses it."""
    ctx.chain_key = KEY
    cid, _ = small_consultation(ctx)
    prev = rehash_chain(ctx, cid)
    _sql(ctx, f"UPDATE consultation SET chain_head = '{prev}', chain_key_id = NULL WHERE id = {cid}")
    plain = verify.verify_chain(ctx, cid)
    assert plain.intact and plain.mode == "SHA-256 (unkeyed)"  # says so, so a reader sees the mode changed
    required = verify.verify_chain(ctx, cid, require_keyed=True)
    assert not required.intact and required.broken is not None and "not keyed" in required.broken.problem


def test_a_keyed_chain_is_neither_written_nor_checked_without_its_key(ctx: ServiceContext) -> None:
    """No key, or another key: one clear line naming the key ids, and nothing written."""
    ctx.chain_key = KEY
    cid, ids = small_consultation(ctx)
    before = verify.head(ctx, cid)
    ctx.chain_key = None
    with pytest.raises(ConfigurationError, match=f"keyed \\(key {KEY.key_id}\\); set CONSULTFLOW_CHAIN_KEY_FILE"):
        opinions.fire(ctx, acting=PLANNER, opinion_id=ids[2], trigger="give_feedback", fields={Field.TEXT: "反馈"})
    with pytest.raises(ConfigurationError, match="keyed"):
        verify.verify_chain(ctx, cid)
    other = ChainKey(b"another-county-secret-0123456789abcdef")
    ctx.chain_key = other
    with pytest.raises(ConfigurationError, match=f"key {KEY.key_id}, but the configured key is {other.key_id}"):
        opinions.fire(ctx, acting=PLANNER, opinion_id=ids[2], trigger="give_feedback", fields={Field.TEXT: "反馈"})
    ctx.chain_key = KEY
    assert verify.head(ctx, cid) == before
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[2], trigger="give_feedback", fields={Field.TEXT: "反馈"})
    assert verify.verify_chain(ctx, cid, expect_head=before).intact


def test_a_chain_key_is_long_enough_and_never_shown() -> None:
    """Short keys are refused with the length needed; the key's repr and id never reveal it."""
    with pytest.raises(ConfigurationError, match="at least 32"):
        ChainKey(b"short")
    assert "county-secret" not in repr(KEY) and len(KEY.key_id) == 16
