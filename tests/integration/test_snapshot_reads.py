"""Long reads (reports, listings, verify) see one snapshot and do not hold writers up.

A province's account streams for most of a minute, reading its rows twice (widths, then rows).
While it does, a planner on another connection must still be able to record feedback, and the
report's two passes must show the same opinions, on SQLite (WAL, a deferred BEGIN) and on
PostgreSQL (REPEATABLE READ).
"""

from __future__ import annotations

import threading

from consultflow.domain.document import Reread
from consultflow.domain.model import OpinionFilter
from consultflow.domain.vocabulary import Field
from consultflow.services import opinion_views, opinions
from consultflow.services.context import ServiceContext
from consultflow.services.opinion_views import OpinionView
from tests.helpers import EXPERT, PLANNER, seed, submit


def test_a_writer_commits_while_a_listing_streams_and_the_listing_keeps_its_snapshot(ctx: ServiceContext) -> None:
    """A long listing does not hold up a planner's feedback, and its two passes show the same opinions."""
    setup = seed(ctx)
    ids = [submit(ctx, setup, f"意见{i}") for i in range(3)]
    opinions.fire(ctx, acting=EXPERT, opinion_id=ids[0], trigger="screen", fields={})
    written: list[str] = []

    def planner_answers() -> None:  # another thread, so another connection and transaction
        try:
            opinions.fire(
                ctx, acting=PLANNER, opinion_id=ids[0], trigger="give_feedback", fields={Field.TEXT: "已研究"}
            )
            written.append("ok")
        except Exception as exc:  # noqa: BLE001 - the assertion below says what went wrong
            written.append(repr(exc))

    def read_twice(views: Reread[OpinionView]) -> tuple[list[str], list[str]]:
        first = [v.state for v in views]
        writer = threading.Thread(target=planner_answers)
        writer.start()
        writer.join(timeout=30)
        return first, [v.state for v in views]

    criteria = OpinionFilter(consultation_id=setup.consultation_id)
    first, second = opinion_views.use_opinion_list(ctx, criteria, None, read_twice)
    assert written == ["ok"], "the writer was held up by the read"
    assert first == second == ["under_review", "submitted", "submitted"], "the two passes saw different data"
    after = [v.state for v in opinion_views.list_opinions(ctx, consultation_id=setup.consultation_id)]
    assert after == ["feedback_given", "submitted", "submitted"]
