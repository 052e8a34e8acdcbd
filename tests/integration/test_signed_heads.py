"""Signed heads: what the server signs and publishes outside the database, and how a rebuilt chain is caught by them.

The attack these defend against is the database owner's: drop the triggers, edit an event (or cut
the tail), recompute every hash with consultflow's own function and rewrite the consultation's
head. Verify alone then says "intact" (it can only compare the database with itself); the heads
published before the rebuild say otherwise.
"""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from consultflow.cli.main import main
from consultflow.config import head_publishing
from consultflow.domain.accounts import account_canonical
from consultflow.domain.audit import GENESIS_HASH, text_hash, utc_iso
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.domain.heads import HeadPublishing, HeadSigner, checked, parse_lines
from consultflow.domain.vocabulary import Field
from consultflow.scheduler.channels import SmtpSettings, build_router
from consultflow.services import heads, opinions, outbox, receipts, rounds, sweep, verify
from consultflow.services.commands import Verify, VerifyAccounts, registry
from consultflow.services.context import ServiceContext
from tests.conftest import engine_of, sql_uow
from tests.helpers import COORD, PLANNER
from tests.integration.test_audit_trail import forge, small_consultation
from tests.integration.test_evidence import rehash_chain
from tests.servers import smtp_server


def _signer(tmp_path: Path, name: str = "key.pem") -> tuple[HeadSigner, Path]:
    path = tmp_path / name
    path.write_bytes(HeadSigner.generate_pem())
    path.chmod(0o600)
    return HeadSigner.from_file(path), path


@pytest.fixture
def signing(ctx: ServiceContext, tmp_path: Path) -> tuple[ServiceContext, Path]:
    """The service context as the server has it: with a signing key and a heads file."""
    signer, _ = _signer(tmp_path)
    heads_file = tmp_path / "heads.jsonl"
    return replace(ctx, heads=HeadPublishing(signer, heads_file, ("auditor@county.example",))), heads_file


def _published(heads_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in heads_file.read_text().splitlines()]


def _verify_with(ctx: ServiceContext, heads_file: Path, cid: int) -> verify.ChainReport:
    published = tuple(parse_lines(heads_file.read_text(), str(heads_file)))
    (report,) = registry()["audit.verify"].run(ctx, None, Verify(cid, heads=published)).reports
    assert isinstance(report, verify.ChainReport)
    return report


def test_a_signed_head_round_trips_and_any_edit_to_it_is_refused(tmp_path: Path) -> None:
    """The published line checks out; a changed head, sequence, statement or signature does not."""
    signer, _ = _signer(tmp_path)
    signed = signer.sign(3, 17, "ab" * 32, datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc))
    record = json.loads(signed.line())
    assert checked(record, "line 1") == signed
    assert checked(record, "line 1", signer.public_key) == signed
    for field, value in (("head", "cd" * 32), ("seq", 18), ("consultation_id", 4)):
        with pytest.raises(ValidationError, match=f"line 1: the record's {field}"):
            checked({**record, field: value}, "line 1")
    forged_statement = record["statement"].replace('"seq":17', '"seq":18')
    with pytest.raises(ValidationError, match="signature does not match"):
        checked({**record, "statement": forged_statement}, "line 1")
    with pytest.raises(ValidationError, match="signature does not match"):
        checked({**record, "signature": "00" * 64}, "line 1")
    other, _ = _signer(tmp_path, "other.pem")
    with pytest.raises(ValidationError, match=f"signed with key {signer.key_id}, not the trusted key {other.key_id}"):
        checked(record, "line 1", other.public_key)
    # A record signed by another key that claims this one's id is refused too.
    stolen = other.sign(3, 17, "ab" * 32, signed.signed_at)
    with pytest.raises(ValidationError, match="signature does not match"):
        checked({**json.loads(stolen.line()), "public_key": signer.public_key}, "line 1")
    with pytest.raises(ValidationError, match="heads.jsonl line 2: not JSON"):
        parse_lines(signed.line() + "\nnot json\n", "heads.jsonl")


def test_a_key_file_others_can_read_or_that_is_no_key_is_refused(tmp_path: Path) -> None:
    """The server refuses to start with a world-readable key or a file that holds none, in one line."""
    _, path = _signer(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        HeadSigner.from_file(path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(ConfigurationError, match="no unencrypted Ed25519 private key"):
        HeadSigner.from_file(junk)
    with pytest.raises(ConfigurationError, match="cannot read the signing key file"):
        HeadSigner.from_file(tmp_path / "missing.pem")


def test_heads_are_signed_when_a_round_closes_and_when_the_chain_grew(signing: tuple[ServiceContext, Path]) -> None:
    """Closing a round publishes its head at once (file, table, mail); signing again signs only what grew."""
    ctx, heads_file = signing
    cid, _ = small_consultation(ctx)  # closes round 1 on the way
    first = _published(heads_file)
    assert len(first) >= 1 and first[0]["consultation_id"] == cid
    assert heads.sign_heads(ctx, cid)[0].signed  # the adoption after the close made the chain grow
    again = heads.sign_heads(ctx, cid)[0]
    assert not again.signed and again.problem is None  # nothing new: nothing signed twice
    with sql_uow(ctx) as uow:
        head = uow.consultations.get(cid)
        stored = list(uow.heads.all_of(cid))
        mails = uow.session.execute(
            text("SELECT recipient_kind, recipient_name, channel, body FROM delivery WHERE kind = 'head'")
        ).all()
    lines = _published(heads_file)
    assert [h.seq for h in stored] == [line["seq"] for line in lines]
    assert lines[-1]["seq"] == head.chain_seq and lines[-1]["head"] == head.chain_head
    assert len(mails) == len(lines)
    assert {(m.recipient_kind, m.recipient_name, m.channel) for m in mails} == {
        ("publication", "auditor@county.example", "email")
    }
    assert json.loads(mails[-1].body)["signature"] == lines[-1]["signature"]
    assert _verify_with(ctx, heads_file, cid).intact


def test_a_chain_rebuilt_by_the_owner_passes_verify_alone_but_not_the_published_heads(
    signing: tuple[ServiceContext, Path],
) -> None:
    """The owner edits event #3 and recomputes every hash and the head: only the published heads catch it."""
    ctx, heads_file = signing
    cid, _ = small_consultation(ctx)
    heads.sign_heads(ctx, cid)
    new_head = rehash_chain(ctx, cid)
    with engine_of(ctx).begin() as conn:
        conn.execute(text(f"UPDATE consultation SET chain_head = '{new_head}' WHERE id = {cid}"))
    assert verify.verify_chain(ctx, cid).intact  # the database agrees with itself
    report = _verify_with(ctx, heads_file, cid)
    assert not report.intact and report.broken is not None
    first = _published(heads_file)[0]
    assert report.broken.chain_seq == first["seq"]
    assert f"the head #{first['seq']} signed" in report.broken.problem
    assert "the chain was rebuilt" in report.broken.problem
    # And the server will not sign the rebuilt chain either.
    outcome = heads.sign_heads(ctx, cid)[0]
    assert not outcome.signed and outcome.problem is not None and "no longer what was signed" in outcome.problem


def test_a_cut_tail_is_caught_by_any_later_published_head(signing: tuple[ServiceContext, Path]) -> None:
    """Events cut off the end, with the head rewound to match: the last published head is beyond the chain."""
    ctx, heads_file = signing
    cid, _ = small_consultation(ctx)
    heads.sign_heads(ctx, cid)
    last = _published(heads_file)[-1]
    with sql_uow(ctx) as uow:
        prev = uow.session.execute(
            text(f"SELECT prev_hash FROM audit_event WHERE consultation_id = {cid} AND chain_seq = {last['seq']}")
        ).scalar_one()
    forge(ctx, f"DELETE FROM audit_event WHERE consultation_id = {cid} AND chain_seq = {last['seq']}")
    with engine_of(ctx).begin() as conn:
        conn.execute(
            text(f"UPDATE consultation SET chain_seq = {last['seq'] - 1}, chain_head = '{prev}' WHERE id = {cid}")
        )
    problem = heads.against_published(ctx, cid, parse_lines(heads_file.read_text(), "heads"))
    assert problem is not None
    assert problem[0] == last["seq"] and "beyond this chain's end" in problem[1]
    assert not _verify_with(ctx, heads_file, cid).intact


def test_the_server_refuses_to_sign_an_edited_event(signing: tuple[ServiceContext, Path]) -> None:
    """An event edited after the last signed head (not rehashed) is named, and nothing is signed."""
    ctx, heads_file = signing
    cid, ids = small_consultation(ctx)
    heads.sign_heads(ctx, cid)
    opinions.fire(ctx, acting=PLANNER, opinion_id=ids[2], trigger="give_feedback", fields={Field.TEXT: "请补充"})
    before = len(_published(heads_file))
    with sql_uow(ctx) as uow:
        seq = uow.consultations.get(cid).chain_seq
    forge(ctx, f"UPDATE audit_event SET actor = '某某' WHERE consultation_id = {cid} AND chain_seq = {seq}")
    outcome = heads.sign_heads(ctx, cid)[0]
    assert (
        not outcome.signed
        and outcome.problem == f"event #{seq}'s content does not match its hash (the event was edited)"
    )
    assert len(_published(heads_file)) == before


def test_without_a_key_signing_is_refused_and_closing_a_round_still_works(ctx: ServiceContext) -> None:
    """A process without the key (a staff machine) cannot sign; its round close is not held up by that."""
    cid, _ = small_consultation(ctx)
    with pytest.raises(ConfigurationError, match="the server holds it"):
        heads.sign_heads(ctx, cid)
    rounds.close_round(ctx, acting=COORD, consultation_id=cid)
    with sql_uow(ctx) as uow:
        assert list(uow.heads.all_of(cid)) == []


def test_signed_heads_cannot_be_changed_or_removed(signing: tuple[ServiceContext, Path]) -> None:
    """Like the events, the stored heads refuse UPDATE and DELETE in the database itself."""
    ctx, _ = signing
    small_consultation(ctx)
    for statement in ("UPDATE signed_head SET head = 'x'", "DELETE FROM signed_head"):
        with pytest.raises(Exception, match="signed_head is append-only"), engine_of(ctx).begin() as conn:
            conn.execute(text(statement))


def test_a_receipt_shows_the_signed_head_that_covers_its_last_event(signing: tuple[ServiceContext, Path]) -> None:
    """The villager's timeline names the head covering her opinion's last record, and not one that does not."""
    ctx, _ = signing
    cid, ids = small_consultation(ctx)
    code = receipts.issue_receipt(ctx, acting=COORD, opinion_id=ids[2])
    line = receipts.timeline(ctx, code)
    assert line.last_event > 0 and line.head is None  # the code's issue is newer than every signed head
    heads.sign_heads(ctx, cid)
    line = receipts.timeline(ctx, code)
    assert line.head is not None and line.head.seq >= line.last_event


def test_keygen_writes_a_private_key_once_and_verify_reads_heads_files(tmp_path: Path) -> None:
    """`audit keygen` makes a 0600 key and never overwrites one; a forged heads file is refused in one line."""
    key = tmp_path / "k.pem"
    runner = CliRunner()
    made = runner.invoke(main, ["audit", "keygen", str(key)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = HeadSigner.from_file(key).public_key
    assert public in made.output
    again = runner.invoke(main, ["audit", "keygen", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.output
    forged = tmp_path / "forged.jsonl"
    signed = json.loads(HeadSigner.from_file(key).sign(1, 1, "0" * 64, datetime.now(timezone.utc)).line())
    forged.write_text(json.dumps({**signed, "signature": "11" * 64}) + "\n")
    db = tmp_path / "x.sqlite"
    assert runner.invoke(main, ["--db", str(db), "db", "upgrade"]).exit_code == 0
    refused = runner.invoke(main, ["--db", str(db), "audit", "verify", "--heads", str(forged)])
    assert refused.exit_code != 0
    assert "forged.jsonl line 1: the signature does not match" in refused.output
    assert "Traceback" not in refused.output


def test_a_signed_head_is_mailed_by_the_worker_as_published(signing: tuple[ServiceContext, Path]) -> None:
    """The outbox's mail of a signed head reaches a real SMTP server with the exact published line."""
    ctx, heads_file = signing
    small_consultation(ctx)
    with smtp_server() as inbox:
        router = build_router(channels=None, smtp=SmtpSettings(host=inbox.host, port=inbox.port), webhook_url=None)
        report = sweep.sweep(ctx, router, outbox.SweepSettings(channels=router.enabled), close_rounds=False)
    published = heads_file.read_text().splitlines()
    assert report.sent >= len(published) and len(inbox.messages) >= len(published)
    mailed = [m for m in inbox.messages if m["To"] == "auditor@county.example"]
    bodies = []
    for message in mailed:
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        bodies.append(body.decode("utf-8").strip())
    assert sorted(bodies) == sorted(published)
    assert all(checked(json.loads(b), "mail").consultation_id for b in bodies)


def _rebuild_account_log(ctx: ServiceContext) -> None:
    """The owner's rewrite of the account log: the first event's actor changed, every hash and the head recomputed."""
    engine = engine_of(ctx)
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT chain_seq, kind, actor, subject, at, key_id, payload FROM account_event ORDER BY chain_seq")
        ).all()
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS account_event_no_update"))
        else:
            conn.execute(text("ALTER TABLE account_event DISABLE TRIGGER USER"))
        prev = GENESIS_HASH
        for i, row in enumerate(rows):
            at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
            actor = "冒名者" if i == 0 else row.actor
            canonical = account_canonical(
                chain_seq=row.chain_seq, kind=row.kind, actor=actor, subject=row.subject,
                at=utc_iso(at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at), key_id=row.key_id,
                payload=row.payload,
            )  # fmt: skip
            digest = text_hash(prev, canonical, None)
            conn.execute(
                text("UPDATE account_event SET actor = :a, prev_hash = :p, hash = :h WHERE chain_seq = :s"),
                {"a": actor, "p": prev, "h": digest, "s": row.chain_seq},
            )
            prev = digest
        conn.execute(text("UPDATE account_chain SET head = :h"), {"h": prev})
        if engine.dialect.name != "sqlite":
            conn.execute(text("ALTER TABLE account_event ENABLE TRIGGER USER"))


def test_the_account_log_is_signed_too_and_its_rebuild_is_caught(signing: tuple[ServiceContext, Path]) -> None:
    """Signing every chain signs the account log (who was registered, signed in, given tokens and roles) as well;
    a log the owner rebuilt then passes verify-accounts alone but not its published heads."""
    ctx, heads_file = signing
    small_consultation(ctx)
    outcomes = heads.sign_heads(ctx)
    log_head = next(o for o in outcomes if o.consultation_id is None)
    assert log_head.signed and log_head.seq > 0
    published = parse_lines(heads_file.read_text(), "heads")
    assert [h.seq for h in published if h.consultation_id is None] == [log_head.seq]
    given = VerifyAccounts(heads=tuple(published))
    assert registry()["audit.verify-accounts"].run(ctx, None, given).intact
    _rebuild_account_log(ctx)
    alone = registry()["audit.verify-accounts"].run(ctx, None, VerifyAccounts())
    assert alone.intact  # the database agrees with itself
    caught = registry()["audit.verify-accounts"].run(ctx, None, given)
    assert not caught.intact and caught.problem is not None
    assert f"the head #{log_head.seq} signed" in caught.problem and "rebuilt" in caught.problem
    refused = next(o for o in heads.sign_heads(ctx) if o.consultation_id is None)
    assert not refused.signed and refused.problem is not None
    # The consultations' chains are untouched, and `audit verify` reads only their heads from the same file.
    (report,) = registry()["audit.verify"].run(ctx, None, Verify(1, heads=tuple(published))).reports
    assert report.intact


def test_a_head_mail_without_smtp_on_the_worker_goes_to_the_log_not_to_the_dead_letters(
    signing: tuple[ServiceContext, Path],
) -> None:
    """A worker with only the log channel logs a signed head's mail (a warning says so) instead of failing it."""
    ctx, heads_file = signing
    small_consultation(ctx)
    router = build_router(channels=None, smtp=None, webhook_url=None)
    report = sweep.sweep(ctx, router, outbox.SweepSettings(channels=router.enabled), close_rounds=False)
    assert report.failed == 0 and report.dead == 0
    assert report.sent >= len(heads_file.read_text().splitlines())


def test_a_signing_key_without_a_heads_file_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heads file is the server's record of what it signed: a key without one is one line, before anything runs."""
    _, key = _signer(tmp_path)
    monkeypatch.setenv("CONSULTFLOW_SIGNING_KEY_FILE", str(key))
    monkeypatch.delenv("CONSULTFLOW_HEADS_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="CONSULTFLOW_HEADS_FILE is not"):
        head_publishing()
    monkeypatch.setenv("CONSULTFLOW_HEADS_FILE", str(tmp_path / "heads.jsonl"))
    setup = head_publishing()
    assert setup is not None and setup.signer.key_id == HeadSigner.from_file(key).key_id


def test_another_keys_heads_in_the_file_are_not_this_servers_record(signing: tuple[ServiceContext, Path]) -> None:
    """Lines another key signed (another county's server sharing the file by mistake) neither stop nor vouch."""
    ctx, heads_file = signing
    cid, _ = small_consultation(ctx)
    assert ctx.heads is not None
    stranger = HeadSigner(Ed25519PrivateKey.generate())
    with heads_file.open("a") as f:
        f.write(stranger.sign(cid, 999, "ab" * 32, datetime.now(timezone.utc)).line() + "\n")
    outcome = heads.sign_heads(ctx, cid)[0]
    assert outcome.problem is None
    latest = heads.latest(ctx, cid)
    assert latest is not None and latest.key_id == ctx.heads.signer.key_id


def test_verify_accounts_with_heads_says_it_checked_their_signatures(
    signing: tuple[ServiceContext, Path], db_url: str
) -> None:
    """`audit verify-accounts --heads FILE --public-key KEY` says how many signed heads it checked, as `audit verify` does."""
    ctx, heads_file = signing
    small_consultation(ctx)
    heads.sign_heads(ctx)
    assert ctx.heads is not None
    signer = ctx.heads.signer
    published = len(heads_file.read_text().splitlines())
    assert published >= 2  # the consultation's head and the account log's
    args = ["--db", db_url, "audit", "verify-accounts", "--heads", str(heads_file), "--public-key", signer.public_key]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    checked_line, log_line = done.stdout.splitlines()
    assert checked_line == f"{published} signed head(s) from {heads_file}, key(s) {signer.key_id}: signatures good"
    assert log_line.startswith("account log: ") and "chain intact" in log_line
    alone = CliRunner().invoke(main, ["--db", db_url, "audit", "verify-accounts"])
    assert alone.exit_code == 0 and alone.stdout.splitlines() == [log_line]
