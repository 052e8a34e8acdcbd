"""`consultflow audit`: histories, as-of states, round figures and chain verification for auditors."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import ID, local_time, shorten, table
from consultflow.domain.document import Reread
from consultflow.domain.heads import HeadSigner, SignedHead, chain_name, parse_lines
from consultflow.domain.vocabulary import Outcome
from consultflow.export.text import table_lines
from consultflow.services import audit, statistics
from consultflow.services.commands.accounts import AccountEventsOf, VerifyAccounts
from consultflow.services.commands.audit import (
    AccessOf,
    AsOf,
    ChainHead,
    HeadsOf,
    OpinionHistory,
    PublishedHeads,
    RoundsFigures,
    RoundsOf,
    SignHeads,
    Verify,
)
from consultflow.services.commands.core import OfConsultation, OfOpinion
from consultflow.services.inputs import parse_time

if TYPE_CHECKING:
    from consultflow.services.accounts import AccountChainReport
    from consultflow.services.verify import ChainReport


@click.group("audit")
def audit_group() -> None:
    """Read the audit trail (auditors change nothing)."""


def _details(payload: dict[str, object]) -> str:
    # The token a change came through the server with is in --json; the table keeps to what changed.
    shown = {k: v for k, v in payload.items() if k != "token"}
    return shorten(json.dumps(shown, ensure_ascii=False), 50) if shown else ""


def _event_row(e: audit.HistoryEvent, tz: ZoneInfo) -> tuple[object, ...]:
    change = f"{e.from_state or '·'} -> {e.to_state}"
    return (
        e.seq,
        local_time(e.at, tz),
        e.round_no,
        e.trigger or e.kind,
        change,
        f"{e.actor} ({e.role})",
        _details(e.payload),
    )


@audit_group.command("history")
@click.argument("opinion_id", type=ID, required=False)
@click.option("--consultation", "consultation_id", type=ID, help="Events of this consultation's opinions.")
@click.option("--participant", "participant_id", type=ID, help="Events of this participant's opinions.")
@click.option("--category", help="Events of opinions in this category.")
@click.option("--channel", help="Events of opinions from this channel.")
@click.option("--state", "state_name", help="Events that moved opinions into this state.")
@click.option("--outcome", help="Events of opinions that ended with this outcome.")
@click.option("--round", "round_no", type=ID, help="Events in this round.")
@click.option("--since", help="Events at or after this time (local, ISO 8601).")
@click.option("--until", help="Events before this time (local, ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1))
@json_flag
@pass_state
def audit_history(
    state: CliState,
    opinion_id: int | None,
    consultation_id: int | None,
    participant_id: int | None,
    category: str | None,
    channel: str | None,
    state_name: str | None,
    outcome: str | None,
    round_no: int | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> None:
    """The timeline of OPINION_ID, or the events matching the filters."""
    tz = state.settings.tz
    if opinion_id is not None:
        found: OpinionHistory = state.call("audit.history", OfOpinion(opinion_id))
        view, events = found.opinion, list(found.events)

        def timeline() -> str:
            out = [
                f"opinion {view.id}: {shorten(view.text, 60)}",
                f"now: {view.state}, {view.rounds_count} round(s)",
                "",
            ]
            rows = [_event_row(e, tz) for e in events]
            out.append(table(["#", "at", "round", "trigger", "change", "by", "details"], rows))
            return "\n".join(out)

        state.emit({"opinion": view, "events": events}, timeline)
        return
    criteria = audit.EventFilter(
        consultation_id=consultation_id,
        participant_id=participant_id,
        category=category,
        channel=channel,
        state=state_name,
        outcome=outcome,
        round_no=round_no,
        since=parse_time(since, tz) if since else None,
        until=parse_time(until, tz) if until else None,
        limit=limit,
    )
    headers = ["opinion", "#", "at", "round", "trigger", "change", "by", "details"]

    def show(found: Iterable[audit.HistoryEvent]) -> None:  # written out as the events are read
        rows = Reread(lambda: ((e.opinion_id, *_event_row(e, tz)) for e in found))
        state.emit_lines(iter(found), lambda: table_lines(headers, rows))

    state.stream("audit.events", criteria, show)


@audit_group.command("as-of")
@click.argument("moment")
@click.option("--consultation", "consultation_id", type=ID, help="Only this consultation.")
@json_flag
@pass_state
def audit_as_of(state: CliState, moment: str, consultation_id: int | None) -> None:
    """Every opinion's state at MOMENT (local time, ISO 8601), rebuilt from the audit events alone."""
    when = parse_time(moment, state.settings.tz)
    given = AsOf(when, consultation_id)
    if state.json:  # every opinion, written out as it is read
        state.stream("audit.as-of", given, lambda rows: state.emit(iter(rows), lambda: ""))
        return
    counts = Counter(state.call("audit.as-of-states", given).counts)  # counted where the events are
    head = f"as of {local_time(when, state.settings.tz)}: {counts.total()} opinion(s)"
    ordered: list[tuple[str, int]] = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    click.echo(head + "\n" + table(["state", "opinions"], ordered))


@audit_group.command("rounds")
@click.argument("consultation_id", type=ID)
@click.option("--by", "by", type=click.Choice(["category", "channel"]), help="A histogram per category or channel too.")
@json_flag
@pass_state
def audit_rounds(state: CliState, consultation_id: int, by: str | None) -> None:
    """How many rounds each adopted, partly adopted and rejected opinion went through."""
    figures: RoundsFigures = state.call("audit.rounds", RoundsOf(consultation_id, by))
    report = statistics.RoundsReport(figures.consultation_id, figures.outcomes, (), figures.by)
    if not state.json:
        _show_rounds(state, report, consultation_id, by)
        return
    state.stream(  # every decided opinion, written out as it is read
        "audit.decided",
        OfConsultation(consultation_id),
        lambda rows: _show_rounds(state, replace(report, opinions=rows), consultation_id, by),
    )


def _show_rounds(state: CliState, report: statistics.RoundsReport, consultation_id: int, by: str | None) -> None:
    def text() -> str:
        most = max((max(o.histogram, default=0) for o in report.outcomes), default=0)
        headers = ([by] if by else []) + ["outcome", "opinions", *[f"{n} round(s)" for n in range(1, most + 1)], "mean"]
        rows = [
            ([o.group] if by else [])
            + [
                state.label(Outcome(o.outcome).label),
                o.total,
                *[o.histogram.get(n, 0) for n in range(1, most + 1)],
                f"{o.mean:.2f}",
            ]
            for o in report.outcomes
        ]
        return f"consultation {consultation_id}: rounds to outcome\n" + table(headers, rows)

    state.emit(report, text)


@audit_group.command("funnel")
@click.argument("consultation_id", type=ID)
@json_flag
@pass_state
def audit_funnel(state: CliState, consultation_id: int) -> None:
    """Per round: opinions that entered, got feedback, re-participated, were decided, carried over."""
    rows = list(state.call("audit.funnel", OfConsultation(consultation_id)).rounds)
    state.emit(
        rows,
        lambda: table(
            ["round", "entered", "got feedback", "re-participated", "decided", "carried over"],
            [(r.round_no, r.entered, r.feedback, r.reparticipated, r.decided, r.carried_over) for r in rows],
        ),
    )


@audit_group.command("access")
@click.option("--participant", "participant_id", type=ID, help="Only reads that showed this participant.")
@click.option("--actor", help="Only reads by this person.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_flag
@pass_state
def audit_access(state: CliState, participant_id: int | None, actor: str | None, limit: int) -> None:
    """Who read personal information (full names, contacts), when, what and why: newest first."""
    records = list(state.call("audit.access", AccessOf(participant_id, actor, limit)).records)
    tz = state.settings.tz

    def text() -> str:
        rows = [(r.id, local_time(r.at, tz), r.actor, r.what, r.participants, r.purpose) for r in records]
        return table(["id", "when", "who", "what", "participants", "purpose"], rows) if rows else "no reads on record"

    state.emit(records, text)


@audit_group.command("head")
@click.argument("consultation_id", type=ID)
@json_flag
@pass_state
def audit_head(state: CliState, consultation_id: int) -> None:
    """Print the chain head (SEQ:HASH) of CONSULTATION_ID, to publish beside its account."""
    head: ChainHead = state.call("audit.head", OfConsultation(consultation_id))
    seq, digest = head.seq, head.hash
    state.emit({"consultation_id": consultation_id, "seq": seq, "hash": digest}, lambda: f"{seq}:{digest}")


@audit_group.command("verify")
@click.argument("consultation_id", type=ID, required=False)
@click.option("--expect-head", metavar="SEQ:HASH", help="A head published earlier: prove it is still in this chain.")
@click.option(
    "--heads", "heads_from", metavar="FILE|URL",
    help="Signed heads published earlier (the heads file, or the portal's /heads.jsonl): the chain must hold each.",
)  # fmt: skip
@click.option("--public-key", help="The key the heads must be signed with (base64, as the portal shows it).")
@click.option(
    "--require-keyed", is_flag=True, help="Fail any chain that is not HMAC-keyed (see CONSULTFLOW_CHAIN_KEY_FILE)."
)
@json_flag
@pass_state
def audit_verify(
    state: CliState,
    consultation_id: int | None,
    expect_head: str | None,
    heads_from: str | None,
    public_key: str | None,
    require_keyed: bool,
) -> None:
    """Recompute the hash chain of CONSULTATION_ID (or of all) and compare it with the live rows.

    Says which mode each chain is in (SHA-256, or HMAC-SHA256 with a key kept outside the
    database). With --heads, every signed head published earlier must still be in the chain, so a
    chain rebuilt since (even by the database's owner) is caught, naming the head it broke.
    Exit 1 naming the first bad event, live row or published head.
    """
    published: tuple[SignedHead, ...] = ()
    if heads_from is not None:
        published = tuple(parse_lines(read_published(heads_from), heads_from, public_key))
    elif public_key is not None:
        raise click.UsageError("--public-key pins the key of --heads: give --heads too")
    given = Verify(consultation_id, expect_head or None, require_keyed, published)
    reports = list(state.call("audit.verify", given).reports)
    tz = state.settings.tz

    def text() -> str:
        lines = _heads_checked(published, heads_from)
        lines.extend(chain_lines(reports, tz))
        return "\n".join(lines) or "no consultations"

    state.emit(reports, text)
    if not all(r.intact for r in reports):
        raise SystemExit(1)


def chain_lines(reports: Iterable[ChainReport], tz: ZoneInfo) -> list[str]:
    """One line per consultation's chain: intact with its head, refused, or the first event that does not match."""
    lines = []
    for r in reports:
        if r.intact:
            lines.append(
                f"consultation {r.consultation_id}: {r.events} event(s), chain intact, {r.mode}, head {r.head}"
            )
            continue
        b = r.broken
        assert b is not None
        if b.chain_seq == 0:
            lines.append(f"consultation {r.consultation_id}: REFUSED ({r.mode}): {b.problem}")
            continue
        where = f"event #{b.chain_seq}"
        if b.opinion_id is not None:
            where += f" (opinion {b.opinion_id} #{b.opinion_seq}, {b.trigger or b.kind}, {local_time(b.at, tz)})"
        elif b.kind is not None:
            where += f" ({b.kind}, {local_time(b.at, tz)})"
        lines.append(f"consultation {r.consultation_id}: TAMPERED at {where}: {b.problem}")
    return lines


def account_log_line(report: AccountChainReport) -> str:
    """The account log's chain: intact with its head, or the first event that does not match."""
    if report.intact:
        return f"account log: {report.events} event(s), chain intact, {report.mode}, head {report.head}"
    return f"account log: TAMPERED at event #{report.broken_seq}: {report.problem}"


@audit_group.command("heads")
@click.argument("consultation_id", type=ID, required=False)
@pass_state
def audit_heads(state: CliState, consultation_id: int | None) -> None:
    """Every chain head the server signed (of CONSULTATION_ID, or of all), oldest first.

    One JSON line per head, as published: keep the output, and check a chain against it later
    with 'consultflow audit verify --heads FILE'.
    """
    found: PublishedHeads = state.call("audit.heads", HeadsOf(consultation_id))
    for head in found.heads:
        click.echo(head.line())


@audit_group.command("sign")
@click.argument("consultation_id", type=ID, required=False)
@json_flag
@pass_state
def audit_sign(state: CliState, consultation_id: int | None) -> None:
    """Sign and publish the chain head of CONSULTATION_ID (or of every chain that grew) now.

    The server does this on its own schedule and after each round closes; its key never leaves it.
    A chain whose events since the last signed head do not hold is not signed (exit 1).
    """
    outcomes = state.call("audit.sign", SignHeads(consultation_id)).outcomes

    def text() -> str:
        lines = []
        for o in outcomes:
            if o.problem is not None:
                lines.append(f"{chain_name(o.consultation_id)}: NOT SIGNED: {o.problem}")
            else:
                done = "signed and published" if o.signed else "already signed"
                lines.append(f"{chain_name(o.consultation_id)}: head #{o.seq} {o.head[:16]}… {done}")
        return "\n".join(lines) or "no consultations"

    state.emit(outcomes, text)
    if any(o.problem is not None for o in outcomes):
        raise SystemExit(1)


@audit_group.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def audit_keygen(path: Path) -> None:
    """Make a new head signing key in PATH (readable by its owner only) and print its public key.

    Give PATH to the server as CONSULTFLOW_SIGNING_KEY_FILE; publish the public key beside the
    portal's address so anyone can check the signed heads. An existing file is never overwritten.
    """
    pem = HeadSigner.generate_pem()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{path} exists; a signing key is never overwritten (choose another path)") from None
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    signer = HeadSigner.from_file(path)
    click.echo(f"signing key written to {path} (mode 600)")
    click.echo(f"public key: {signer.public_key}")
    click.echo(f"key id:     {signer.key_id}")


MAX_HEADS_BYTES = 64 * 1024 * 1024


def read_published(where: str) -> str:
    """The text of a heads file or URL (http or https), at most 64 MB, or one clear refusal."""
    if where.startswith(("http://", "https://")):
        import urllib.error  # noqa: PLC0415 - only for a URL
        import urllib.request  # noqa: PLC0415

        try:
            with urllib.request.urlopen(where, timeout=30) as answer:  # noqa: S310 - the scheme is checked above
                data: bytes = answer.read(MAX_HEADS_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise click.UsageError(f"cannot fetch the heads from {where}: {getattr(exc, 'reason', exc)}") from None
    else:
        try:
            with Path(where).open("rb") as f:
                data = f.read(MAX_HEADS_BYTES + 1)
        except (OSError, ValueError) as exc:  # ValueError: a NUL or a lone surrogate in the name
            shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in where)
            reason = exc.strerror if isinstance(exc, OSError) else "not a file name"
            raise click.UsageError(f"cannot read the heads file {shown}: {reason}") from None
    if len(data) > MAX_HEADS_BYTES:
        raise click.UsageError(f"{where} is over 64 MB; a heads file holds one short line per signed head")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.UsageError(f"{where} is not UTF-8 text (one signed head per line)") from None


@audit_group.command("accounts")
@click.option("--name", help="Only events about this person's account.")
@click.option("--kind", help="Only this kind (signin, signin_failed, token_issued, role_granted, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_flag
@pass_state
def audit_accounts(state: CliState, name: str | None, kind: str | None, limit: int) -> None:
    """The account log, newest first: sign-ins, failed sign-ins, tokens, roles, account changes."""
    events = list(state.call("audit.accounts", AccountEventsOf(name, kind, limit)).events)
    tz = state.settings.tz
    state.emit(
        events,
        lambda: (
            table(
                ["#", "at", "kind", "by", "account", "details"],
                [(e.seq, local_time(e.at, tz), e.kind, e.actor, e.subject, _details(e.payload)) for e in events],
            )
            if events
            else "no account events"
        ),
    )


@audit_group.command("verify-accounts")
@click.option("--expect-head", metavar="SEQ:HASH", help="A head published earlier: prove it is still in the log.")
@click.option(
    "--heads", "heads_from", metavar="FILE|URL", help="Signed heads published earlier (the log's are checked)."
)
@click.option("--public-key", help="The key the heads must be signed with (base64, as the portal shows it).")
@click.option("--require-keyed", is_flag=True, help="Fail unless the log is HMAC-keyed.")
@json_flag
@pass_state
def audit_verify_accounts(
    state: CliState, expect_head: str | None, heads_from: str | None, public_key: str | None, require_keyed: bool
) -> None:
    """Recompute the account log's hash chain; exit 1 naming the first event (or published head) that does not match."""
    published: tuple[SignedHead, ...] = ()
    if heads_from is not None:
        published = tuple(parse_lines(read_published(heads_from), heads_from, public_key))
    elif public_key is not None:
        raise click.UsageError("--public-key pins the key of --heads: give --heads too")
    given = VerifyAccounts(expect_head or None, require_keyed, published)
    report = state.call("audit.verify-accounts", given)

    def text() -> str:
        return "\n".join([*_heads_checked(published, heads_from), account_log_line(report)])

    state.emit(report, text)
    if not report.intact:
        raise SystemExit(1)


def _heads_checked(published: tuple[SignedHead, ...], heads_from: str | None) -> list[str]:
    """The line saying the published heads' signatures were checked (none without --heads)."""
    if not published:
        return []
    keys = ", ".join(sorted({h.key_id for h in published}))
    return [f"{len(published)} signed head(s) from {heads_from}, key(s) {keys}: signatures good"]


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(audit_group)
