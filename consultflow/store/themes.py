"""Themes opinions are coded with, and the read models around them: counts, % coded, texts, verify's replay.

Set-based: themes are added with one executemany per batch and removed with one DELETE per batch;
the counts are GROUP BYs the database computes. Texts stream a window of rows at a time (opened
with the participants' keys by the unit of work that reads them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import case, delete, exists, func, insert, select, tuple_
from sqlalchemy.orm import Session

from consultflow.domain.audit import EventKind
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.bulk import table_of
from consultflow.store.models import AuditEvent, Opinion, OpinionTheme


class ThemeStore:
    """Themes of opinions: coded, uncoded, counted."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def of_opinions(self, opinion_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each opinion's themes (sorted), for the opinions asked about that have any."""
        found: dict[int, list[str]] = {}
        for batch in chunked(sorted(set(opinion_ids))):
            stmt = (
                select(OpinionTheme.opinion_id, OpinionTheme.theme)
                .where(OpinionTheme.opinion_id.in_(batch))
                .order_by(OpinionTheme.opinion_id, OpinionTheme.theme)
            )
            for opinion_id, theme in self.session.execute(stmt):
                found.setdefault(int(opinion_id), []).append(str(theme))
        return found

    def add(self, rows: Sequence[tuple[int, int, str]], *, actor_id: int, now: datetime) -> None:
        """(consultation, opinion, theme) rows added, one executemany per batch (none of them may exist)."""
        table = table_of(OpinionTheme)
        for batch in chunked(rows):
            self.session.execute(
                insert(table),
                [
                    {"consultation_id": c, "opinion_id": o, "theme": t, "added_by_id": actor_id, "added_at": now}
                    for c, o, t in batch
                ],
            )

    def remove(self, pairs: Sequence[tuple[int, str]]) -> None:
        """(opinion, theme) pairs removed, one DELETE per batch."""
        table = table_of(OpinionTheme)
        for batch in chunked(pairs):
            self.session.execute(delete(table).where(tuple_(table.c.opinion_id, table.c.theme).in_(list(batch))))

    def counts(self, consultation_id: int) -> list[tuple[str, str, str | None, int]]:
        """(category, theme, outcome, opinions) for every theme used in the consultation."""
        stmt = (
            select(Opinion.category, OpinionTheme.theme, Opinion.outcome, func.count())
            .join(Opinion, Opinion.id == OpinionTheme.opinion_id)
            .where(OpinionTheme.consultation_id == consultation_id)
            .group_by(Opinion.category, OpinionTheme.theme, Opinion.outcome)
        )
        return [(str(c), str(t), None if o is None else str(o), int(n)) for c, t, o, n in self.session.execute(stmt)]

    def coded_per_round(self, consultation_id: int) -> list[tuple[int, int, int]]:
        """(round, opinions in it, of which coded with a theme) per round.

        A round's opinions are those that entered it, as the funnel counts them: submitted in it,
        or carried over into it from the round before. One is coded when it has a theme now.
        """
        e = AuditEvent
        entered = case((e.kind == EventKind.CARRIED_OVER, e.round_no + 1), else_=e.round_no)
        in_round = (
            select(entered.label("round_no"), e.opinion_id.label("opinion_id"))
            .where(
                e.consultation_id == consultation_id,
                e.opinion_id.is_not(None),
                e.kind.in_([EventKind.SUBMITTED, EventKind.CARRIED_OVER]),
            )
            .distinct()
            .subquery()
        )
        coded = exists().where(OpinionTheme.opinion_id == in_round.c.opinion_id)
        stmt = (
            select(in_round.c.round_no, func.count(), func.sum(case((coded, 1), else_=0)))
            .group_by(in_round.c.round_no)
            .order_by(in_round.c.round_no)
        )
        return [(int(r or 0), int(n), int(k or 0)) for r, n, k in self.session.execute(stmt)]

    def texts(self, consultation_id: int, category: str | None = None) -> Iterator[tuple[int, str, str]]:
        """(id, category, text) of every opinion of the consultation (of one category), by id, streamed."""
        stmt = (
            select(Opinion.id, Opinion.category, Opinion.text)
            .where(Opinion.consultation_id == consultation_id)
            .order_by(Opinion.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        if category is not None:
            stmt = stmt.where(Opinion.category == category)
        rows = self.session.execute(stmt)
        try:
            for opinion_id, found, text in rows:
                yield int(opinion_id), str(found), str(text)
        finally:
            rows.close()

    def id_range(self, consultation_id: int) -> tuple[int, int] | None:
        """The lowest and highest opinion id with a theme or a theme event (for verify), if any."""
        kinds = [EventKind.THEME_ADDED, EventKind.THEME_REMOVED]
        found: list[int] = []
        for stmt in (
            select(func.min(OpinionTheme.opinion_id), func.max(OpinionTheme.opinion_id)).where(
                OpinionTheme.consultation_id == consultation_id
            ),
            select(func.min(AuditEvent.opinion_id), func.max(AuditEvent.opinion_id)).where(
                AuditEvent.consultation_id == consultation_id, AuditEvent.kind.in_(kinds)
            ),
        ):
            low, high = self.session.execute(stmt).one()
            found += [int(v) for v in (low, high) if v is not None]
        return (min(found), max(found)) if found else None

    def replay_window(
        self, consultation_id: int, low: int, high: int
    ) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
        """For opinions low..high: their theme events (opinion, kind, payload) in chain order, and live themes."""
        kinds = [EventKind.THEME_ADDED, EventKind.THEME_REMOVED]
        events = select(AuditEvent.opinion_id, AuditEvent.kind, AuditEvent.payload).where(
            AuditEvent.consultation_id == consultation_id,
            AuditEvent.kind.in_(kinds),
            AuditEvent.opinion_id.between(low, high),
        )
        live = select(OpinionTheme.opinion_id, OpinionTheme.theme).where(
            OpinionTheme.consultation_id == consultation_id, OpinionTheme.opinion_id.between(low, high)
        )
        return (
            [(int(o or 0), str(k), str(p)) for o, k, p in self.session.execute(events.order_by(AuditEvent.chain_seq))],
            [(int(o), str(t)) for o, t in self.session.execute(live.order_by(OpinionTheme.opinion_id))],
        )
