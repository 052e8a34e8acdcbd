"""Signing and publishing chain heads, and checking a chain against the heads published earlier.

The server signs each consultation's head on a schedule and after each round closes. Before it
signs, it checks the events added since the head it signed last: they must link to that head and
hash right (with the chain key, which only the server holds), so a tampered chain is refused a
signature rather than given one. Each signed head is stored (the portal shows the latest), appended
to the heads file and mailed through the outbox; any of those copies, kept outside the database,
later proves what the chain was.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass

from consultflow.domain.audit import GENESIS_HASH, ChainKey
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.heads import HeadPublishing, SignedHead, chain_name, from_line
from consultflow.logconfig import get_logger
from consultflow.services import accounts, verify
from consultflow.services.context import ServiceContext
from consultflow.services.ports import UnitOfWork

log = get_logger(__name__)

NO_KEY = (
    "no head signing key here: the server holds it (CONSULTFLOW_SIGNING_KEY_FILE); "
    "run this through the server ('consultflow login URL'), or make a key with 'consultflow audit keygen FILE'"
)


@dataclass(frozen=True)
class SignOutcome:
    """What signing did for one chain (a consultation's; None: the account log): a new head, nothing new, or why not."""

    consultation_id: int | None
    seq: int
    head: str
    signed: bool
    problem: str | None = None


def publishing(ctx: ServiceContext) -> HeadPublishing:
    """The server's signing setup, or one clear refusal where there is none.

    Raises:
        ConfigurationError: no signing key is configured in this process.
    """
    if ctx.heads is None:
        raise ConfigurationError(NO_KEY)
    return ctx.heads


def sign_heads(ctx: ServiceContext, consultation_id: int | None = None) -> list[SignOutcome]:
    """Sign and publish the head of one consultation's chain, or of every chain that grew (the account log's too).

    Raises:
        ConfigurationError: no signing key here.
        NotFoundError: no such consultation.
    """
    setup = publishing(ctx)
    if consultation_id is None:
        with ctx.uow() as uow:
            ids: Sequence[int] = uow.consultations.ids()
    else:
        ids = [consultation_id]
    outcomes = [_sign_one(ctx, setup, cid) for cid in ids]
    if consultation_id is None:
        outcomes.append(_sign_accounts(ctx, setup))
    for outcome in outcomes:
        if outcome.problem is not None:
            log.error("head_not_signed", chain=chain_name(outcome.consultation_id), problem=outcome.problem)
    return outcomes


def _sign_accounts(ctx: ServiceContext, setup: HeadPublishing) -> SignOutcome:
    """The account log's head, after checking the whole log still holds the head signed before it."""
    signer = setup.signer
    with ctx.uow() as uow:
        last = _later(setup.ledger.latest(None), uow.heads.last(None, signer.key_id))
    report = accounts.verify_account_chain(ctx, expect_head=(last.seq, last.head) if last is not None else None)
    if not report.intact:
        return SignOutcome(None, report.events, report.head, signed=False, problem=report.problem)
    if report.events == 0 or (last is not None and last.seq == report.events):
        return SignOutcome(None, report.events, report.head, signed=False)
    signed = signer.sign(None, report.events, report.head, ctx.clock.now())  # the head just checked
    with ctx.writing() as uow:
        if not uow.heads.add(signed):
            return SignOutcome(None, report.events, report.head, signed=False)
        _queue_mail(uow, setup, signed)
        problem = _append(setup, signed)
        if problem is not None:
            return SignOutcome(None, report.events, report.head, signed=False, problem=problem)
        uow.commit()
    log.info("head_signed", chain=chain_name(None), seq=signed.seq, key_id=signer.key_id)
    return SignOutcome(None, signed.seq, signed.head, signed=True)


def sign_quietly(ctx: ServiceContext, consultation_id: int) -> None:
    """After a change that should be published at once (a round closed): sign if the server can.

    The change itself is already committed; a failure here is logged and the schedule tries again.
    """
    if ctx.heads is None:
        return
    try:
        sign_heads(ctx, consultation_id)
    except Exception as exc:  # noqa: BLE001 - the round is closed whatever happens to its publication
        log.error("head_signing_failed", consultation_id=consultation_id, error=str(exc))  # noqa: TRY400


def _later(a: SignedHead | None, b: SignedHead | None) -> SignedHead | None:
    """The later of two signed heads of one chain (by place; the heads file's on a tie)."""
    if a is None or (b is not None and b.seq > a.seq):
        return b
    return a


def _sign_one(ctx: ServiceContext, setup: HeadPublishing, consultation_id: int) -> SignOutcome:
    signer = setup.signer
    with ctx.writing() as uow:
        consultation = uow.consultations.get(consultation_id)
        seq, head = consultation.chain_seq, consultation.chain_head
        # What this server signed last: its own file, which the database's owner cannot empty, and
        # the table (another server process may have signed a moment ago).
        last = _later(setup.ledger.latest(consultation_id), uow.heads.last(consultation_id, signer.key_id))
        if last is not None and last.seq == seq and last.head == head:
            return SignOutcome(consultation_id, seq, head, signed=False)
        problem = _problem_since(uow, consultation_id, last, seq, head, ctx.key_for(consultation))
        if problem is not None:
            return SignOutcome(consultation_id, seq, head, signed=False, problem=problem)
        signed = signer.sign(consultation_id, seq, head, ctx.clock.now())
        if not uow.heads.add(signed):  # another server process signed this head a moment ago
            return SignOutcome(consultation_id, seq, head, signed=False)
        _queue_mail(uow, setup, signed)
        problem = _append(setup, signed)  # the server's record first: a head it did not keep is not published
        if problem is not None:
            return SignOutcome(consultation_id, seq, head, signed=False, problem=problem)
        uow.commit()
    log.info("head_signed", consultation_id=consultation_id, seq=seq, key_id=signer.key_id)
    return SignOutcome(consultation_id, seq, head, signed=True)


def _problem_since(
    uow: UnitOfWork, consultation_id: int, last: SignedHead | None, seq: int, head: str, key: ChainKey | None
) -> str | None:
    """Why the chain may not be signed: the events since the last signed head must still lead to today's head."""
    prev, start = (last.head, last.seq) if last is not None else (GENESIS_HASH, 0)
    if seq < start:
        return f"the chain ends at #{seq}, before the head #{start} signed earlier (events were removed)"
    if last is not None:
        with closing(uow.audit.chain(consultation_id, after=start - 1)) as events:
            at_last = next(events, None)
        if at_last is None or at_last.chain_seq != start or at_last.hash != last.head:
            return f"the event at the head #{start} signed earlier is no longer what was signed (the chain was rebuilt)"
    expected = start + 1
    with closing(uow.audit.chain(consultation_id, after=start)) as events:
        for event in events:
            if event.chain_seq != expected or event.prev_hash != prev:
                return f"event #{expected} is missing or does not link to the one before it"
            if not verify.event_intact(event, prev, key):
                return f"event #{expected}'s content does not match its hash (the event was edited)"
            prev, expected = event.hash, expected + 1
    if expected - 1 != seq or prev != head:
        return f"the chain ends at #{expected - 1} but the consultation records #{seq} (the head was rewritten)"
    return None


def _queue_mail(uow: UnitOfWork, setup: HeadPublishing, signed: SignedHead) -> None:
    if not setup.mail:
        return
    subject = f"consultflow: {chain_name(signed.consultation_id)}, chain head #{signed.seq}"
    rows = [
        {
            "idempotency_key": f"head:{signed.key_id}:{signed.consultation_id or 'accounts'}:{signed.seq}:"
            + hashlib.sha256(address.encode()).hexdigest()[:12],
            "kind": "head",
            "reminder_id": None,
            "recipient_kind": "publication",
            "recipient_id": 0,
            "recipient_name": address,
            "channel": "email",
            "lang": "en",
            "subject": subject,
            "body": signed.line(),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": signed.signed_at,
            "created_at": signed.signed_at,
        }
        for address in setup.mail
    ]
    uow.outbox.queue(rows)


def _append(setup: HeadPublishing, signed: SignedHead) -> str | None:
    """One JSON line at the end of the heads file, in one write (several server processes append); why not, if not."""
    try:
        setup.file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(setup.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # public: heads hold no personal data
        try:
            os.write(fd, (signed.line() + "\n").encode())
        finally:
            os.close(fd)
    except OSError as exc:
        return f"the heads file {setup.file} cannot be written ({exc.strerror or exc}); nothing was signed"
    return None


def signed_heads(ctx: ServiceContext, consultation_id: int | None = None) -> list[SignedHead]:
    """Every head signed so far (of one consultation, or of all), oldest first, as published.

    On the server, from its heads file (what it signed, whatever the database says); elsewhere,
    from the database's copy.

    Raises:
        NotFoundError: no such consultation.
    """
    with ctx.reading() as uow:
        if consultation_id is not None:
            uow.consultations.get(consultation_id)  # refuses an unknown id
        if ctx.heads is None:
            return list(uow.heads.all_of(consultation_id))
    every = consultation_id is None
    found = (from_line(line) for line in ctx.heads.ledger.lines(consultation_id, every=every))
    return [h for h in found if h is not None]


def published_lines(ctx: ServiceContext, consultation_id: int | None = None) -> Iterator[str]:
    """The published heads (of one consultation, or of all) as JSON lines, for the portal."""
    if ctx.heads is not None:
        if consultation_id is not None:
            with ctx.uow() as uow:
                uow.consultations.get(consultation_id)  # refuses an unknown id
        return ctx.heads.ledger.lines(consultation_id, every=consultation_id is None)
    return iter([h.line() + "\n" for h in signed_heads(ctx, consultation_id)])


def latest(ctx: ServiceContext, consultation_id: int, covering: int = 0) -> SignedHead | None:
    """The latest signed head of a consultation, if it covers event #`covering` (None otherwise).

    On the server, from its own heads file: a row added to the database cannot change what it shows.
    """
    if ctx.heads is not None:
        found = ctx.heads.ledger.latest(consultation_id)
    else:
        with ctx.uow() as uow:
            found = uow.heads.last(consultation_id)
    return found if found is not None and found.seq >= covering else None


def accounts_against_published(ctx: ServiceContext, published: Iterable[SignedHead]) -> tuple[int, str] | None:
    """The first published head of the account log that the log no longer holds: (its place, why)."""
    mine = sorted((h for h in published if h.consultation_id is None), key=lambda h: h.seq)
    if not mine:
        return None
    with ctx.reading() as uow:
        length = uow.account_log.head().seq
        at = uow.heads.account_hashes([h.seq for h in mine])
    return _first_missing(mine, length, at)


def against_published(
    ctx: ServiceContext, consultation_id: int, published: Iterable[SignedHead]
) -> tuple[int, str] | None:
    """The first published head of this consultation that its chain no longer holds: (its place, why).

    A head beyond the chain's end means events were cut off the end; another hash at its place
    means the chain was rebuilt (even by the database's owner) or an event was changed.
    """
    mine = sorted((h for h in published if h.consultation_id == consultation_id), key=lambda h: h.seq)
    if not mine:
        return None
    with ctx.reading() as uow:
        length = uow.consultations.get(consultation_id).chain_seq
        at = uow.heads.chain_hashes(consultation_id, [h.seq for h in mine])
    return _first_missing(mine, length, at)


def _first_missing(mine: Sequence[SignedHead], length: int, at: dict[int, str]) -> tuple[int, str] | None:
    for h in mine:
        signed = f"the head #{h.seq} signed {h.signed_at.strftime('%Y-%m-%d %H:%M')} UTC (key {h.key_id})"
        if h.seq > length:
            return h.seq, f"{signed} is beyond this chain's end at #{length} (events were removed from the end)"
        if at.get(h.seq) != h.head:
            now = at.get(h.seq, "")
            return h.seq, f"{signed} was {h.head[:12]}…; this chain has {now[:12]}… there (the chain was rebuilt)"
    return None
