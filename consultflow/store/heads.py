"""Signed chain heads: added once, never changed; read newest first."""

from __future__ import annotations

from collections.abc import Generator, Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from consultflow.domain.heads import SignedHead
from consultflow.store.batches import chunked
from consultflow.store.bulk import table_of
from consultflow.store.models import AccountEvent, AuditEvent
from consultflow.store.models import SignedHead as SignedHeadModel

_COLUMNS = ("consultation_id", "seq", "head", "signed_at", "key_id", "public_key", "statement", "signature")


def _row(values: tuple[object, ...]) -> SignedHead:
    return SignedHead(*values)  # type: ignore[arg-type]  # the columns are in the dataclass's order


class SignedHeads:
    """The heads the server signed and published."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._table = table_of(SignedHeadModel)
        self._columns = [self._table.c[name] for name in _COLUMNS]

    def add(self, head: SignedHead) -> bool:
        """Store a signed head; False when this key already signed this head (another server did)."""
        from consultflow.store.bulk import _insert  # noqa: PLC0415 - the dialect's INSERT … ON CONFLICT DO NOTHING

        values = {name: getattr(head, name) for name in _COLUMNS}
        result = self.session.execute(_insert(self.session, SignedHeadModel).values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult

    def _of(self, consultation_id: int | None) -> ColumnElement[bool]:
        column = self._table.c.consultation_id
        return column.is_(None) if consultation_id is None else column == consultation_id

    def last(self, consultation_id: int | None, key_id: str | None = None) -> SignedHead | None:
        """The chain's latest signed head (by this key, if given): a consultation's, or None for the account log's."""
        stmt = select(*self._columns).where(self._of(consultation_id))
        if key_id is not None:
            stmt = stmt.where(self._table.c.key_id == key_id)
        found = self.session.execute(stmt.order_by(self._table.c.seq.desc(), self._table.c.id.desc()).limit(1)).first()
        return _row(tuple(found)) if found is not None else None

    def all_of(self, consultation_id: int | None = None, *, every: bool = True) -> Generator[SignedHead, None, None]:
        """Signed heads in the order they were signed, streamed: of every chain, or (`every` False) of one.

        With `every` False, `consultation_id` None means the account log's.
        """
        stmt = select(*self._columns).order_by(self._table.c.id)
        if consultation_id is not None or not every:
            stmt = stmt.where(self._of(consultation_id))
        rows = self.session.execute(stmt.execution_options(yield_per=1000))
        try:
            for values in rows:
                yield _row(tuple(values))
        finally:
            rows.close()

    def chain_hashes(self, consultation_id: int, seqs: Sequence[int]) -> dict[int, str]:
        """The hashes a consultation's chain has at these sequence numbers (those it has)."""
        found: dict[int, str] = {}
        for batch in chunked(sorted(set(seqs))):
            stmt = select(AuditEvent.chain_seq, AuditEvent.hash).where(
                AuditEvent.consultation_id == consultation_id, AuditEvent.chain_seq.in_(batch)
            )
            found.update((int(seq), str(digest)) for seq, digest in self.session.execute(stmt))
        return found

    def account_hashes(self, seqs: Sequence[int]) -> dict[int, str]:
        """The hashes the account log has at these sequence numbers (those it has)."""
        found: dict[int, str] = {}
        for batch in chunked(sorted(set(seqs))):
            stmt = select(AccountEvent.chain_seq, AccountEvent.hash).where(AccountEvent.chain_seq.in_(batch))
            found.update((int(seq), str(digest)) for seq, digest in self.session.execute(stmt))
        return found
