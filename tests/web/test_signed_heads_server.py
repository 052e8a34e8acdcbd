"""Signed heads through the server, as people use them: the key stays on the server, heads are published.

A real `consultflow serve` holds the signing key; staff work through it with their sign-ins. When
a round closes, the server signs the chain's head and publishes it to the heads file and on the
portal (with its public key); an auditor checks the chain against the published heads with the
CLI; a villager's receipt page names the signed head that covers her opinion; every event the
server writes records the token it came with, which no client can set.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.domain.heads import HeadSigner
from tests.conftest import _pg_schema_url
from tests.web.test_staff import (
    AUDITOR,
    COORD,
    EXPERT,
    PLANNER,
    PLANNER2,
    WALK,
    People,
    _login,
    _post,
    _staff,
    _token,
    server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(name="signing_server")
def _signing_server(db_url: str, tmp_path: Path) -> Iterator[tuple[People, str, Path, HeadSigner]]:
    key = tmp_path / "server" / "signing.pem"
    key.parent.mkdir()
    key.write_bytes(HeadSigner.generate_pem())
    key.chmod(0o600)
    heads_file = tmp_path / "server" / "heads.jsonl"
    people = People(db_url, tmp_path / "home")
    people.env.update(
        {
            "CONSULTFLOW_SIGNING_KEY_FILE": str(key),
            "CONSULTFLOW_HEADS_FILE": str(heads_file),
            "CONSULTFLOW_HEADS_SECONDS": "3600",  # only what the test does signs (and the first run, at start)
        }
    )
    _staff(people)
    with server(people, tmp_path) as base:
        _login(people, base, COORD, PLANNER, PLANNER2, EXPERT, AUDITOR)
        _signed_at_start(heads_file)
        for who, args in WALK[:7]:
            people.ok(*args, person=who)
        yield people, base, heads_file, HeadSigner.from_file(key)


def _signed_at_start(heads_file: Path) -> None:
    """Wait for the server's first signing run (a second after it starts): it signs the account log.

    Before it no consultation exists, so it signs none; after it only what a test does signs. Without
    the wait the run could land in the middle of a test, on a loaded machine, and sign its chain.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if heads_file.exists() and any(
            json.loads(line)["consultation_id"] is None for line in heads_file.read_text().splitlines()
        ):
            return
        time.sleep(0.1)
    pytest.fail(f"the server's first signing run did not sign the account log: {heads_file}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return str(answer.read().decode("utf-8"))


def test_a_closed_round_is_signed_published_and_checkable_by_anyone(
    signing_server: tuple[People, str, Path, HeadSigner],
) -> None:
    """Round close → a signed head in the file, on the portal and from `audit heads`; verify --heads passes."""
    people, base, heads_file, signer = signing_server
    assert "CONSULTFLOW_SIGNING_KEY_FILE" not in os.environ  # the CLI below has no key: only the server does
    people.ok("round", "close", "1", person=COORD)
    head = json.loads(people.ok("audit", "head", "1", "--json", person=AUDITOR))
    lines = [json.loads(line) for line in heads_file.read_text().splitlines()]
    assert lines[-1]["seq"] == head["seq"] and lines[-1]["head"] == head["hash"]
    assert lines[-1]["key_id"] == signer.key_id
    page = _get(f"{base}/c/1")
    assert head["hash"] in page and signer.public_key in page and signer.key_id in page
    published = _get(f"{base}/c/1/heads.jsonl")
    assert published.splitlines() == people.ok("audit", "heads", "1", person=AUDITOR).splitlines()
    # the file holds every chain's heads (the account log's too); the portal publishes this consultation's
    assert [json.loads(x) for x in published.splitlines()] == [x for x in lines if x["consultation_id"] == 1]
    checked = people.run("audit", "verify", "1", "--heads", f"{base}/c/1/heads.jsonl", "--public-key",
                         signer.public_key, person=AUDITOR)  # fmt: skip
    assert checked.code == 0, checked.err
    assert "signatures good" in checked.out and "chain intact" in checked.out


def test_signing_on_request_is_for_coordinators_and_auditors_and_signs_only_growth(
    signing_server: tuple[People, str, Path, HeadSigner],
) -> None:
    """`audit sign` through the server signs a grown chain once; a planner may not ask for it."""
    people, _base, heads_file, _signer = signing_server
    refused = people.run("audit", "sign", "1", person=PLANNER)
    assert refused.code != 0 and "may not run audit.sign" in refused.err
    first = people.ok("audit", "sign", "1", person=AUDITOR)
    assert "signed and published" in first or "already signed" in first
    again = people.ok("audit", "sign", "1", person=COORD)
    assert "already signed" in again
    seqs = [json.loads(line)["seq"] for line in heads_file.read_text().splitlines()]
    assert len(seqs) == len(set(seqs))  # never the same head twice


def test_a_receipt_names_the_signed_head_that_covers_it(signing_server: tuple[People, str, Path, HeadSigner]) -> None:
    """The villager's timeline (API and page data) gives the covering head once the server has signed one."""
    people, base, _heads_file, _signer = signing_server
    code = people.ok("opinion", "receipt", "1", "--json", person=COORD)
    receipt = json.loads(code)["receipt_code"] if code.strip().startswith("{") else code.strip().split()[-1]
    status, before = _post(base, None, "/api/v1/receipts/timeline", {"code": receipt})
    last_event = before["last_event"]
    assert status == 200 and before["head"] is None and isinstance(last_event, int) and last_event > 0
    people.ok("audit", "sign", "1", person=COORD)
    status, after = _post(base, None, "/api/v1/receipts/timeline", {"code": receipt})
    assert status == 200 and after["head"] is not None
    head = after["head"]
    assert isinstance(head, dict) and isinstance(after["last_event"], int) and head["seq"] >= after["last_event"]


def test_events_written_through_the_server_record_the_token_not_a_clients_word(
    signing_server: tuple[People, str, Path, HeadSigner],
) -> None:
    """Each event from a staff request carries the id of the token it came with; a "token" in a body changes nothing."""
    people, base, _heads_file, _signer = signing_server
    events = json.loads(people.ok("audit", "history", "1", "--json", person=AUDITOR))["events"]
    by_server = [e for e in events if e["actor"] == EXPERT]
    tokens = {e["payload"].get("token") for e in by_server}
    assert len(tokens) == 1 and isinstance(next(iter(tokens)), int)  # the expert's one sign-in
    status, answer = _post(
        base, _token(people, EXPERT), "/api/v1/commands/opinion.correct",
        {"opinion_id": 1, "text": "改写", "reason": "笔误", "token": 999_999, "actor": COORD},
    )  # fmt: skip
    assert status == 200, answer
    last = json.loads(people.ok("audit", "history", "1", "--json", person=AUDITOR))["events"][-1]
    assert last["kind"] == "corrected" and last["actor"] == EXPERT and last["payload"]["token"] in tokens


def _as_login(url: str, login: str, password: str) -> str:
    """The same database and schema, connected as `login`."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}:{password}@{rest.split('@', 1)[1]}"


@pytest.mark.postgres
def test_the_server_and_the_worker_run_on_their_own_least_privileged_logins(tmp_path: Path) -> None:
    """On PostgreSQL the owner only migrates and makes logins; the server signs and publishes as its own login.

    `db login` makes the server's and the worker's logins; the whole walk, a round close with its
    signed head and `verify --heads` run through a server connected as the server's login, and the
    worker's sweep runs as the worker's; neither login could have changed the audit trail by hand.
    """
    for owner_url in _pg_schema_url():
        owner = People(owner_url, tmp_path / "home")
        _staff(owner)
        suffix = os.urandom(4).hex()
        logins = {kind: f"cf_e2e_{kind}_{suffix}" for kind in ("server", "worker")}
        secret = tmp_path / "pw"
        secret.write_text("a long login password\n")
        secret.chmod(0o600)
        try:
            for kind, login in logins.items():
                owner.ok("db", "login", login, "--role", kind, "--password-file", str(secret), local=True)
            key = tmp_path / "signing.pem"
            key.write_bytes(HeadSigner.generate_pem())
            key.chmod(0o600)
            people = People(_as_login(owner_url, logins["server"], "a long login password"), tmp_path / "home")
            people.env.update(
                {"CONSULTFLOW_SIGNING_KEY_FILE": str(key), "CONSULTFLOW_HEADS_FILE": str(tmp_path / "heads.jsonl")}
            )
            with server(people, tmp_path) as base:
                _login(people, base, COORD, EXPERT, AUDITOR, PLANNER)
                for who, args in WALK[:7]:
                    people.ok(*args, person=who)
                people.ok("round", "close", "1", person=COORD)
                heads = _get(f"{base}/c/1/heads.jsonl").splitlines()
                assert heads, "the round close was signed"
                verified = people.run("audit", "verify", "1", "--heads", f"{base}/c/1/heads.jsonl", person=AUDITOR)
                assert verified.code == 0, verified.err
            worker = People(_as_login(owner_url, logins["worker"], "a long login password"), tmp_path / "home")
            swept = worker.run("reminders", "run-once", "--channels", "log", local=True)
            assert swept.code == 0, swept.err
            forged = worker.run("audit", "sign", "1", local=True)  # the worker has no key, and no grant either
            assert forged.code != 0
        finally:
            from sqlalchemy import create_engine, text

            engine = create_engine(owner_url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                for login in logins.values():
                    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": login}).first():
                        conn.execute(text(f'DROP OWNED BY "{login}"'))
                        conn.execute(text(f'DROP ROLE "{login}"'))
            engine.dispose()
