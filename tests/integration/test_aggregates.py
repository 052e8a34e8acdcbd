"""The participant and workflow repositories keep their contracts on SQLite and PostgreSQL.

The use cases rely on these: a participant is found by id or by who they are (name, village and
contact, through the keyed match key, never the plain contact), unknown ids are named in the order
given, and a stored workflow version is read once a database and then from memory, while `audit
verify` reads the table itself.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from consultflow.domain.errors import NotFoundError
from consultflow.domain.workflow_loader import load_workflow_text
from consultflow.services.context import ServiceContext
from tests.conftest import WORKFLOWS, engine_of, sql_uow
from tests.helpers import EXPERT, seed


def test_participants_are_added_found_and_listed(ctx: ServiceContext) -> None:
    """A new participant is found by id and by name, village and contact; lists keep id order and leave out unknowns."""
    setup = seed(ctx)
    with sql_uow(ctx) as uow:
        expert = uow.actors.require(EXPERT)[0]
        now = ctx.clock.now()
        added = uow.participants.add(
            name="李四", village="白马村", contact="13900000000", lang="zh", created_by=expert.id, now=now
        )
        uow.participants.add(name="王五", village="白马村", contact=None, lang="zh", created_by=expert.id, now=now)
        uow.commit()
    with ctx.reading() as uow:
        assert uow.participants.get(added.id).name == "李四"
        assert uow.participants.registered("李四", "白马村", "13900000000") == added.id
        assert uow.participants.registered("李四", "白马村", "13900000001") is None  # another contact: another person
        assert uow.participants.registered("李四", "青龙村", "13900000000") is None
        assert [p.name for p in uow.participants.many([added.id, 999, setup.participant_id])] == ["张秀英", "李四"]
        assert uow.participants.missing([999, added.id, 7, 999]) == [999, 7]
        assert [p.name for p in uow.participants.listing("白马村")] == ["李四", "王五"]
        assert [p.name for p in uow.participants.listing()] == ["张秀英", "李四", "王五"]
        with pytest.raises(
            NotFoundError, match="unknown participant 999; list them with 'consultflow participant list'"
        ):
            uow.participants.get(999)


def test_a_participants_contact_is_matched_by_its_keyed_digest_not_stored_in_the_match_key(ctx: ServiceContext) -> None:
    """The match key that finds a returning participant holds no name or contact an insider could read."""
    seed(ctx)
    with ctx.reading() as uow:
        found = uow.participants.registered("张秀英", "青龙村", "13812345678")
    assert found is not None
    with engine_of(ctx).connect() as conn:
        key = conn.execute(text("SELECT match_key FROM participant WHERE id = :id"), {"id": found}).scalar_one()
    assert "13812345678" not in key
    assert "张秀英" not in key


def test_a_workflow_version_is_stored_once_and_read_from_memory_after_a_commit(ctx: ServiceContext) -> None:
    """Versions are listed by name and version; a committed read is kept, and `as_stored` reads the table itself."""
    seed(ctx)  # the consultation stored the bundled workflow, version 1
    bundled = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")
    second = load_workflow_text(bundled.replace("\nversion: 1\n", "\nversion: 2\n", 1))
    with sql_uow(ctx) as uow:
        added = uow.workflows.add(second, ctx.clock.now())
        uow.commit()
    with ctx.reading() as uow:
        assert [(w.name, w.version) for w in uow.workflows.versions("consultation-loop")] == [
            ("consultation-loop", 1),
            ("consultation-loop", 2),
        ]
        assert uow.workflows.versions("no-such-workflow") == []
        assert uow.workflows.version("consultation-loop", 3) is None
        stored = uow.workflows.version("consultation-loop", 2)
        assert stored is not None
        assert stored.id == added.id
        assert stored.digest == second.digest
    with sql_uow(ctx) as uow:  # a transaction that reads the version and commits
        assert uow.workflows.get(added.id).source == second.source
        uow.commit()
    # A row changed behind the store's back (an insider): later units still run on what was read,
    # and verify, which reads the table, sees the change.
    with engine_of(ctx).begin() as conn:
        conn.execute(text("UPDATE workflow SET source = 'tampered' WHERE id = :id"), {"id": added.id})
    with ctx.reading() as uow:
        assert uow.workflows.get(added.id).source == second.source
        assert uow.workflows.as_stored(added.id).source == "tampered"
        with pytest.raises(NotFoundError, match="unknown workflow id 999"):
            uow.workflows.as_stored(999)
