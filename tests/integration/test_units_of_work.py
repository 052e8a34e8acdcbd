"""A unit of work: its repositories belong to its current transaction, and sealed texts open inside it."""

from __future__ import annotations

from consultflow.services.context import ServiceContext
from tests.conftest import sql_uow
from tests.helpers import EXPERT, seed, submit


def test_a_reused_unit_of_work_writes_in_its_new_transaction(ctx: ServiceContext) -> None:
    """Entered a second time, a unit's repositories write in the new transaction, and its commit keeps them."""
    setup = seed(ctx)
    uow = sql_uow(ctx)
    with uow:
        expert = uow.actors.require(EXPERT)[0]
        uow.participants.add(
            name="李四", village="青龙村", contact=None, lang="zh", created_by=expert.id, now=ctx.clock.now()
        )  # not committed: rolled back when the block ends
    with uow:
        added = uow.participants.add(
            name="王五", village="青龙村", contact=None, lang="zh", created_by=expert.id, now=ctx.clock.now()
        )
        uow.commit()
    with ctx.reading() as reader:
        names = [p.name for p in reader.participants.listing()]
    assert names == ["张秀英", "王五"]
    assert added.id != setup.participant_id


def test_sealed_texts_open_in_any_unit_that_reads_them(ctx: ServiceContext) -> None:
    """An opinion's text is stored sealed and read back as written, whichever repository reads it first."""
    setup = seed(ctx)
    oid = submit(ctx, setup, "建议修缮村口石桥")
    with sql_uow(ctx) as uow:
        stored = uow.session.connection().exec_driver_sql(f"SELECT text FROM opinion WHERE id = {oid}").scalar()
        assert stored != "建议修缮村口石桥"
        assert uow.opinions.get(oid).text == "建议修缮村口石桥"
    with ctx.reading() as uow:
        assert [t for _id, _category, t in uow.opinions.open_texts(setup.consultation_id)] == ["建议修缮村口石桥"]
