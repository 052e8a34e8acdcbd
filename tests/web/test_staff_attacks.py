"""Insider attacks on the staff API, each a test that fails if the attack works.

The attackers hold no database credentials: a planner, a local expert, an auditor, a participant
who signs in, a read-only token, a revoked or expired token, and a client with no token at all.
Everything goes through the HTTP API in-process (FastAPI's TestClient over a FixedClock), on
SQLite. argon2 runs with cheap parameters here so that the many sign-ins stay fast; the rules
under test do not depend on its cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from consultflow.domain import accounts as account_rules
from consultflow.domain.clock import FixedClock
from consultflow.domain.roles import Role
from consultflow.services import accounts, opinions, people, personal_data
from consultflow.services.commands import registry
from consultflow.services.context import ServiceContext
from consultflow.store.models import AccessToken, AccountEvent, Participant, StaffCredential
from consultflow.web import limits
from consultflow.web.app import create_app
from consultflow.web.common import WebSettings, parse_limits
from tests.conftest import sql_uow
from tests.helpers import AUDITOR, COORD, EXPERT, PLANNER, VILLAGER, Setup, seed, snapshot, submit
from tests.web.portal import SECRET

PASSWORD = "correct horse battery"
PLANNER2, EXPERT2 = "陈规划", "钱专家"
FULL_NAME, CONTACT = "张秀英", "13812345678"  # the participant `seed` registers
OTHER_NAME, OTHER_CONTACT = "刘德华", "13999998888"  # one registered by the second expert
STAFF = (COORD, PLANNER, PLANNER2, EXPERT, EXPERT2, AUDITOR, VILLAGER)


@dataclass
class World:
    """A consultation with two planners, two experts, an auditor and a villager, all able to sign in."""

    ctx: ServiceContext
    clock: FixedClock
    setup: Setup
    mine: int  # recorded by EXPERT, assigned to PLANNER
    theirs: int  # recorded by EXPERT2 for the participant EXPERT2 registered, assigned to PLANNER2
    other_participant: int
    clients: dict[str, TestClient] = field(default_factory=dict)

    def web(self, host: str = "testclient") -> TestClient:
        """A client of the server from address `host` (one app, built once)."""
        if host not in self.clients:
            app = self.clients["testclient"].app if self.clients else None
            if app is None:
                app = create_app(replace(self.ctx, acting_proven=True), WebSettings(SECRET, parse_limits("")))
            made = TestClient(app, follow_redirects=False, raise_server_exceptions=False, client=(host, 50000))
            self.clients.setdefault("testclient", made)
            self.clients[host] = made
        return self.clients[host]

    def token(self, name: str, **extra: Any) -> str:
        """A fresh token for `name` from a password sign-in."""
        answer = self.web().post("/api/v1/auth/signin", json={"name": name, "password": PASSWORD, **extra})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def call(self, command: str, token: str | None, body: Any = None, **kw: Any) -> Any:
        """POST a command (JSON body) with a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return self.web().post(f"/api/v1/commands/{command}", json={} if body is None else body, headers=headers, **kw)


@pytest.fixture(name="world")
def _world(sqlite_ctx: ServiceContext, clock: FixedClock) -> Iterator[World]:
    setup = seed(sqlite_ctx)
    people.add_actor(sqlite_ctx, acting=COORD, name=PLANNER2, roles=["planner"])
    people.add_actor(sqlite_ctx, acting=COORD, name=EXPERT2, roles=["expert"])
    other = people.add_participant(sqlite_ctx, acting=EXPERT2, name=OTHER_NAME, village="白虎村", contact=OTHER_CONTACT)
    mine = submit(sqlite_ctx, setup)
    theirs = opinions.submit_opinion(
        sqlite_ctx,
        acting=EXPERT2,
        consultation_id=setup.consultation_id,
        participant_id=other.id,
        category="industry",
        channel="villagers_assembly",
        text="建议修桥",
    ).id
    opinions.assign(sqlite_ctx, acting=COORD, opinion_ids=[theirs], planner=PLANNER2)
    for name in STAFF:
        accounts.set_password(sqlite_ctx, acting=None, name=name, password=PASSWORD)
    made = World(sqlite_ctx, clock, setup, mine, theirs, other.id)
    yield made
    for web in made.clients.values():
        web.close()


def _state(ctx: ServiceContext) -> dict[str, object]:
    """What a refused attack must leave as it was: opinions and events, accounts, people, tokens."""
    found: dict[str, object] = {
        **snapshot(ctx),
        "roles": [(a.name, tuple(a.roles)) for a in people.list_actors(ctx)],
        "access": len(personal_data.access_records(ctx)),
    }
    with sql_uow(ctx) as uow:
        s = uow.session
        found["account_events"] = s.scalar(select(func.count()).select_from(AccountEvent))
        found["participants"] = s.scalar(select(func.count()).select_from(Participant))
        found["tokens"] = sorted((t.id, t.revoked_at is None) for t in s.scalars(select(AccessToken)))
        creds = s.scalars(select(StaffCredential))
        found["credentials"] = sorted((c.actor_id, c.password_hash, c.totp_secret or "") for c in creds)
    return found


def _last(answer: Any) -> dict[str, Any]:
    """The JSON document of an answer, or the last line of a streamed one."""
    lines = [line for line in answer.text.splitlines() if line.strip()]
    found: dict[str, Any] = json.loads(lines[-1])
    return found


def _refused(answer: Any) -> bool:
    """Whether the answer is a refusal (a status of 4xx, or a stream that ends in an error line)."""
    return 400 <= answer.status_code < 500 or (answer.status_code == 200 and "error" in _last(answer))


# A plausible body for every command that changes data: what an attacker would send.
WRITES: dict[str, dict[str, Any]] = {
    "account.disable": {"name": PLANNER},
    "account.enable": {"name": PLANNER},
    "account.issue-token": {"name": "x", "scope": "write"},
    "account.revoke-token": {"token_id": 1},
    "account.set-password": {"name": COORD, "password": "another password 9"},
    "account.totp-confirm": {"code": "123456"},
    "account.totp-disable": {"name": COORD},
    "account.totp-enable": {},
    "actor.add": {"name": "evil", "roles": ["coordinator"]},
    "actor.bind": {"name": COORD, "login": "evil"},
    "consultation.auto-close": {"consultation_id": 1, "enabled": True},
    "consultation.create": {"title": "t", "area": "a"},
    "opinion.assign": {"opinion_ids": [1, 2], "planner": PLANNER},
    "opinion.correct": {"opinion_id": 2, "text": "篡改", "reason": "r"},
    "opinion.fire": {"opinion_ids": [1, 2], "trigger": "withdraw"},
    "opinion.import": {
        "consultation_id": 1,
        "headers": ["name", "village", "category", "channel", "text"],
        "rows": [[2, ["某人", "村", "industry", "villagers_assembly", "导入"]]],
    },
    "opinion.merge": {"opinion_ids": [2], "target": 1},
    "opinion.receipt": {"opinion_id": 2},
    "opinion.submit": {
        "consultation_id": 1,
        "participant_id": 2,
        "category": "industry",
        "channel": "villagers_assembly",
        "text": "伪造",
    },
    "participant.add": {"name": "p", "village": "v"},
    "plan.import": {
        "consultation_id": 1,
        "clauses": [{"number": "1.1", "section_no": "1", "section_title": "t", "text": "篡改"}],
    },
    "plan.link": {"opinion_id": 2, "clauses": ["1.1"]},
    "participant.erase": {"participant_id": 2, "reason": "r"},
    "participant.group": {"participant_id": 2, "group": "officials"},
    "programme.create": {"name": "p", "title": "t"},
    "programme.add-area": {"programme": "1", "consultation_id": 1},
    "reminders.cancel": {"reminder_ids": [1]},
    "review.open": {"consultation_id": 1},
    "review.record": {"consultation_id": 1, "participant_id": 2, "ratings": [{"clause": "1.1", "rating": "不满意"}]},
    "reminders.requeue": {},
    "audit.sign": {"consultation_id": 1},
    "role.grant": {"name": PLANNER, "role": "coordinator"},
    "role.revoke": {"name": COORD, "role": "coordinator"},
    "round.close": {"consultation_id": 1},
    "round.open": {"consultation_id": 1},
    "round.reschedule": {"consultation_id": 1, "closes_at": "2027-01-01T00:00:00+08:00"},
    "theme.code": {"theme": "篡改", "opinion_ids": [1, 2]},
}


def test_every_write_command_has_an_attack_body() -> None:
    """The sweeps below cover every command that changes data (a new one must be added here)."""
    assert set(WRITES) == {name for name, c in registry().items() if c.writes}


def test_a_read_only_token_changes_nothing_through_any_write_command(world: World) -> None:
    """A coordinator's read token is refused by every command that writes, before anything runs."""
    read = world.token(COORD, scope="read")
    before = _state(world.ctx)
    for name, body in WRITES.items():
        answer = world.call(name, read, body)
        assert answer.status_code == 403, (name, answer.text)
        assert "may only read" in answer.json()["error"], name
    assert _state(world.ctx) == before


def test_coordinator_only_commands_refuse_every_other_role(world: World) -> None:
    """Planner, experts, auditor and villager are refused every coordinator-only command; nothing changes."""
    coordinator_only = [n for n, c in registry().items() if c.roles == frozenset({Role.COORDINATOR})]
    assert "role.grant" in coordinator_only
    before = _state(world.ctx)
    for person in (PLANNER, EXPERT, AUDITOR, VILLAGER):
        token = world.token(person)
        before["account_events"] = _state(world.ctx)["account_events"]  # the sign-in itself
        before["tokens"] = _state(world.ctx)["tokens"]
        for name in coordinator_only:
            answer = world.call(name, token, WRITES.get(name, {}))
            assert answer.status_code == 403, (person, name, answer.text)
        assert _state(world.ctx) == before, person


def test_an_auditor_changes_nothing_through_commands_open_to_all_staff(world: World) -> None:
    """Commands every role may call (fire, merge, accounts) check the auditor's role inside: all refused."""
    coordinators = world.web().get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {world.token(COORD)}"})
    token = world.token(AUDITOR)
    before = _state(world.ctx)
    attacks = [
        ("opinion.fire", {"opinion_ids": [world.mine], "trigger": "screen"}),
        ("opinion.fire", {"opinion_ids": [world.mine], "trigger": "withdraw"}),
        ("opinion.merge", {"opinion_ids": [world.theirs], "target": world.mine}),
        ("account.set-password", {"name": COORD, "password": "another password 9"}),
        ("account.totp-disable", {"name": COORD}),
        ("account.revoke-token", {"token_id": coordinators.json()["token_id"]}),
    ]
    for name, body in attacks:
        assert _refused(world.call(name, token, body)), name
    assert _state(world.ctx) == before


def test_identity_fields_in_the_body_headers_or_query_are_ignored(world: World) -> None:
    """'acting', 'actor', '--as' lookalikes and proxy-user headers never change who acts: the token does."""
    token = world.token(PLANNER)
    before = _state(world.ctx)
    body = {"title": "t", "area": "a"}
    for extra in ({"acting": COORD}, {"actor": COORD}, {"as": COORD}, {"acting_as": COORD}, {"who": {"name": COORD}}):
        answer = world.call("consultation.create", token, {**body, **extra})
        assert answer.status_code == 403 and PLANNER in answer.json()["error"], extra
    for header in ("X-Actor", "X-Consultflow-Actor", "X-Forwarded-User", "X-Remote-User", "Remote-User"):
        answer = world.web().post(
            "/api/v1/commands/consultation.create",
            content=json.dumps(body).encode(),
            headers=[
                (b"Authorization", f"Bearer {token}".encode()),
                (b"Content-Type", b"application/json"),
                (header.encode(), COORD.encode()),
            ],
        )
        assert answer.status_code == 403, header
    web = world.web()
    answer = web.post(
        "/api/v1/commands/consultation.create",
        params={"acting": COORD, "actor": COORD, "as": COORD},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 403
    assert _state(world.ctx) == before


def test_a_planner_fires_only_on_opinions_assigned_to_them(world: World) -> None:
    """Another planner's opinion is refused, also hidden in a list with one's own (all or nothing) and by merge."""
    token = world.token(PLANNER)
    before = _state(world.ctx)
    for body in (
        {"opinion_ids": [world.theirs], "trigger": "screen"},
        {"opinion_ids": [world.mine, world.theirs], "trigger": "screen"},
        {"opinion_ids": [world.theirs], "trigger": "merge", "merge_target": str(world.mine)},
    ):
        answer = world.call("opinion.fire", token, body)
        assert _refused(answer) and "assigned to another planner" in _last(answer)["error"], body
        assert PLANNER2 not in _last(answer)["error"]  # the refusal names no owner
    merged = world.call("opinion.merge", token, {"opinion_ids": [world.theirs], "target": world.mine})
    assert merged.status_code == 403
    assert _state(world.ctx) == before


def test_an_expert_acts_only_on_what_they_recorded_or_whom_they_represent(world: World) -> None:
    """Correcting, issuing a receipt for or withdrawing another expert's opinion is refused; nothing changes."""
    token = world.token(EXPERT)
    before = _state(world.ctx)
    corrected = world.call("opinion.correct", token, {"opinion_id": world.theirs, "text": "篡改", "reason": "typo"})
    assert corrected.status_code == 403 and "another local expert" in corrected.json()["error"]
    assert world.call("opinion.receipt", token, {"opinion_id": world.theirs}).status_code == 403
    for trigger in ("withdraw", "screen"):
        assert _refused(world.call("opinion.fire", token, {"opinion_ids": [world.theirs], "trigger": trigger}))
    assert _state(world.ctx) == before


def test_a_participant_acts_only_as_their_own_record(world: World) -> None:
    """The villager cannot submit for, withdraw or import as another participant."""
    token = world.token(VILLAGER)
    before = _state(world.ctx)
    submit_other = {**WRITES["opinion.submit"], "participant_id": world.other_participant}
    assert world.call("opinion.submit", token, submit_other).status_code == 403
    assert _refused(world.call("opinion.fire", token, {"opinion_ids": [world.theirs], "trigger": "withdraw"}))
    assert world.call("opinion.import", token, WRITES["opinion.import"]).status_code == 403
    assert _state(world.ctx) == before


def test_full_names_and_contacts_are_for_coordinators_with_a_purpose_and_on_record(world: World) -> None:
    """Other roles are refused with or without a purpose; a coordinator without one too; with one, it is on record."""
    asks = [
        ("participant.list", {"full_names": True, "purpose": "回访"}),
        ("participant.list", {"with_contact": True, "purpose": "回访"}),
        ("report.render", {"consultation_id": 1, "kind": "account", "format": "csv", "names": "full", "purpose": "x"}),
        ("report.render", {"consultation_id": 1, "kind": "plan", "format": "csv", "names": "full", "purpose": "x"}),
    ]
    for person in (PLANNER, EXPERT, AUDITOR, VILLAGER):
        token = world.token(person)
        for name, body in asks:
            answer = world.call(name, token, body)
            assert _refused(answer), (person, name)
            assert FULL_NAME not in answer.text and CONTACT not in answer.text, (person, name)
    coordinator = world.token(COORD, scope="read")
    for name, body in asks:
        answer = world.call(name, coordinator, {**body, "purpose": "  "})
        assert _refused(answer) and "--purpose" in _last(answer)["error"], name
    assert not personal_data.access_records(world.ctx)
    read = world.call("participant.list", coordinator, {"with_contact": True, "purpose": "回访核对"})
    assert CONTACT in read.text and _last(read) == {"end": 2}
    assert [(r.actor, r.purpose) for r in personal_data.access_records(world.ctx)] == [(COORD, "回访核对")]


def test_every_staff_read_shows_participants_only_under_pseudonyms(world: World) -> None:
    """Lists, histories, events, reports and the access record show a planner no full name or contact."""
    # Not here: reminders.show and reminders.failed, whose deliveries do name participants in full (reported).
    token = world.token(PLANNER)
    reads = {
        "actor.list": {},
        "audit.access": {},
        "audit.as-of": {"moment": "2030-01-01T00:00:00Z"},
        "audit.events": {},
        "audit.history": {"opinion_id": world.theirs},
        "consultation.show": {"consultation_id": 1},
        "opinion.list": {},
        "opinion.show": {"opinion_id": world.theirs},
        "participant.list": {},
        "reminders.list": {},
        "report.render": {"consultation_id": 1, "kind": "account", "format": "json"},
    }
    for name, body in reads.items():
        answer = world.call(name, token, body)
        assert answer.status_code == 200, (name, answer.text)
        for secret in (FULL_NAME, OTHER_NAME, CONTACT, OTHER_CONTACT):
            assert secret not in answer.text, (name, secret)


def test_the_account_log_is_ones_own_unless_coordinator_or_auditor(world: World) -> None:
    """A planner reads only events about themselves; asking for another's is refused."""
    token = world.token(PLANNER)
    refused = world.call("audit.accounts", token, {"name": COORD})
    assert refused.status_code == 403
    events = world.call("audit.accounts", token, {"limit": 10_000}).json()["events"]
    assert events and all(PLANNER in (e["actor"], e["subject"]) for e in events)
    assert world.call("account.tokens", token, {"everyone": True}).status_code == 403
    audited = world.call("audit.accounts", world.token(AUDITOR), {"name": COORD})
    assert audited.status_code == 200


def test_no_password_token_or_totp_secret_reaches_the_account_log_or_the_server_log(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sign-ins, token issues, password and two-step changes leave no secret in the log's payloads or on stderr."""
    from consultflow.logconfig import configure_logging

    configure_logging(json_lines=True)
    capsys.readouterr()
    token = world.token(PLANNER)
    issued = world.call("account.issue-token", token, {"name": "script", "scope": "read"}).json()["token"]
    world.call(
        "account.set-password", token, {"name": PLANNER, "password": "new phrase here 1", "current_password": "x"}
    )
    secret = world.call("account.totp-enable", token).json()["secret"]
    code = pyotp.TOTP(secret).at(world.clock.now())
    assert world.call("account.totp-confirm", token, {"code": code, "current_password": PASSWORD}).status_code == 200
    wrong = world.web().post("/api/v1/auth/signin", json={"name": PLANNER, "password": "guessed wrong 1"})
    assert wrong.status_code == 403
    out = capsys.readouterr()
    with sql_uow(world.ctx) as uow:
        payloads = " ".join(
            json.dumps(e.payload, ensure_ascii=False) for e in uow.session.scalars(select(AccountEvent))
        )
        hashes = [t.token_hash for t in uow.session.scalars(select(AccessToken))]
    for text in (payloads, out.out, out.err):
        for leaked in (PASSWORD, "new phrase here 1", "guessed wrong 1", token, issued, secret, *hashes):
            assert leaked not in text


def test_changing_ones_own_password_takes_the_current_one_and_a_wrong_one_is_on_record(world: World) -> None:
    """A taken token cannot change the password without it; the wrong try is a failed sign-in in the log."""
    token = world.token(PLANNER)
    before = _state(world.ctx)["credentials"]
    for current in (None, "not the password"):
        body = {"name": PLANNER, "password": "taken over 123", "current_password": current}
        assert world.call("account.set-password", token, body).status_code == 403
    for variant in (f"{PLANNER} ", f" {PLANNER}", f"{PLANNER}\u200b"):  # look-alike names are other people
        assert world.call(
            "account.set-password", token, {"name": variant, "password": "taken over 123"}
        ).status_code in (
            403,
            404,
        )
    assert _state(world.ctx)["credentials"] == before
    kinds = [e.kind for e in accounts.account_events(world.ctx, acting=COORD, name=PLANNER, kind="signin_failed")]
    assert len(kinds) == 2


def test_tokens_end_at_signout_disable_and_expiry_and_stay_ended(world: World) -> None:
    """A signed-out, disabled-then-enabled or expired token is refused everywhere, streams included."""
    web = world.web()

    def works(token: str) -> bool:
        return web.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    out = world.token(PLANNER)
    assert web.post("/api/v1/auth/signout", headers={"Authorization": f"Bearer {out}"}).status_code == 200
    assert not works(out)
    assert world.call("opinion.list", out).status_code == 403
    assert web.post("/api/v1/auth/signout", headers={"Authorization": f"Bearer {out}"}).status_code == 403

    held, read = world.token(PLANNER2), world.token(PLANNER2, scope="read")
    script = world.call("account.issue-token", held, {"name": "cron", "scope": "write"}).json()["token"]
    coordinator = world.token(COORD)
    assert world.call("account.disable", coordinator, {"name": PLANNER2}).status_code == 200
    assert not any(works(t) for t in (held, read, script))
    refused = web.post("/api/v1/auth/signin", json={"name": PLANNER2, "password": PASSWORD})
    assert refused.status_code == 403
    assert world.call("account.enable", coordinator, {"name": PLANNER2}).status_code == 200
    assert not any(works(t) for t in (held, read, script))

    short = world.token(EXPERT, expires_days=1)
    assert works(short)
    world.clock.advance(timedelta(days=1, seconds=1))
    assert not works(short)
    assert world.call("opinion.fire", short, {"opinion_ids": [world.mine], "trigger": "withdraw"}).status_code == 403


def test_a_token_is_taken_only_from_the_authorization_header(world: World) -> None:
    """Query strings, cookies, other schemes and altered tokens prove nobody."""
    token = world.token(COORD)
    web = world.web()
    for params in ({"token": token}, {"access_token": token}):
        assert web.get("/api/v1/auth/whoami", params=params).status_code == 403
        assert web.post("/api/v1/commands/consultation.list", params=params, json={}).status_code == 403
    web.cookies.set("token", token)
    assert web.get("/api/v1/auth/whoami").status_code == 403
    web.cookies.clear()
    for header in (
        f"Basic {token}",
        f"Token {token}",
        token,
        f"Bearer {token}x",
        f"Bearer {token[:-1]}",
        "Bearer ' or 1=1 --",
    ):
        assert web.get("/api/v1/auth/whoami", headers={"Authorization": header}).status_code == 403, header


def test_another_persons_token_cannot_be_revoked_or_listed_by_a_planner(world: World) -> None:
    """Revoking the coordinator's token by id is refused, and the token keeps working."""
    coordinator = world.token(COORD)
    token_id = (
        world.web().get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {coordinator}"}).json()["token_id"]
    )
    planner = world.token(PLANNER)
    assert world.call("account.revoke-token", planner, {"token_id": token_id}).status_code == 403
    assert world.call("consultation.list", coordinator).status_code == 200


def test_a_name_locks_after_five_failures_whatever_the_client(world: World) -> None:
    """Five wrong passwords from five addresses lock the name; the right one is then refused from a sixth."""
    for i in range(5):
        web = world.web(f"203.0.113.{i + 1}")
        assert web.post("/api/v1/auth/signin", json={"name": EXPERT, "password": f"wrong one {i}"}).status_code == 403
    for variant in (EXPERT, f" {EXPERT} ", f"{EXPERT}\t"):
        locked = world.web("198.51.100.7").post("/api/v1/auth/signin", json={"name": variant, "password": PASSWORD})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0, variant


def test_forwarded_headers_do_not_spread_one_client_over_many(world: World) -> None:
    """The app itself believes no X-Forwarded-For: twenty failures from one address lock it, whatever it claims."""
    web = world.web("192.0.2.50")
    for i in range(20):
        spoof = {"X-Forwarded-For": f"203.0.113.{i + 1}", "X-Real-IP": f"203.0.113.{i + 1}", "Forwarded": "for=1.2.3.4"}
        answer = web.post("/api/v1/auth/signin", json={"name": f"nobody {i}", "password": "wrong"}, headers=spoof)
        assert answer.status_code == 403
    locked = web.post(
        "/api/v1/auth/signin", json={"name": COORD, "password": PASSWORD}, headers={"X-Forwarded-For": "9.9.9.9"}
    )
    assert locked.status_code == 429


def test_an_unknown_name_costs_the_same_password_check(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known name, unknown name, account without password: one argon2 verification each, the same refusal."""
    checks: list[str] = []
    real = account_rules.verify_password

    def counting(stored: str | None, password: str) -> bool:
        checks.append("known" if stored else "dummy")
        return real(stored, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    people.add_actor(world.ctx, acting=COORD, name="无密码", roles=["planner"])
    answers = [
        world.web().post("/api/v1/auth/signin", json={"name": name, "password": "wrong password"}).json()
        for name in (PLANNER, "nobody at all", "无密码")
    ]
    assert checks == ["known", "dummy", "dummy"]
    assert all(a == answers[0] for a in answers)


def test_a_two_step_code_is_accepted_once(world: World) -> None:
    """The same TOTP code cannot sign in twice (a code seen over a shoulder is spent)."""
    token = world.token(AUDITOR)
    secret = world.call("account.totp-enable", token).json()["secret"]
    totp = pyotp.TOTP(secret)
    assert (
        world.call(
            "account.totp-confirm", token, {"code": totp.at(world.clock.now()), "current_password": PASSWORD}
        ).status_code
        == 200
    )
    world.clock.advance(timedelta(seconds=30))
    code = totp.at(world.clock.now())
    body = {"name": AUDITOR, "password": PASSWORD, "totp_code": code}
    assert world.web().post("/api/v1/auth/signin", json=body).status_code == 200
    assert world.web().post("/api/v1/auth/signin", json=body).status_code == 403
    assert world.web().post("/api/v1/auth/signin", json={"name": AUDITOR, "password": PASSWORD}).status_code == 403


def test_the_last_coordinator_and_consultflows_own_actors_cannot_be_taken_over(world: World) -> None:
    """No role 'system', no account for the system actor, and the last coordinator keeps theirs."""
    coordinator = world.token(COORD)
    before = _state(world.ctx)
    for name, body in (
        ("account.disable", {"name": COORD}),
        ("role.revoke", {"name": COORD, "role": "coordinator"}),
        ("role.grant", {"name": PLANNER, "role": "system"}),
        ("actor.add", {"name": "sys2", "roles": ["system"]}),
        ("account.set-password", {"name": "system", "password": "abcdefghijk"}),
    ):
        assert world.call(name, coordinator, body).status_code == 422, name
    assert _state(world.ctx) == before
    assert world.web().post("/api/v1/auth/signin", json={"name": "system", "password": "x"}).status_code == 403
    failed = accounts.account_events(world.ctx, acting=COORD, kind="signin_failed")
    assert [(e.subject, e.payload["reason"]) for e in failed] == [(None, "unknown_account")]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"consultation_id": ' + b"9" * 5000 + b"}",
        b'{"consultation_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"consultation_id": "\xff\xfe"}',
        b'{"consultation_id": NaN}',
        b'{"consultation_id": 9223372036854775808}',
        b'{"consultation_id": 1.5}',
        b"[1]",
        b"null",
        b"",
        b'{"consultation_id": 1',
    ],
    ids=[
        "4300-digit-int",
        "deep-nesting",
        "invalid-utf8",
        "nan",
        "int64-overflow",
        "float",
        "array",
        "null",
        "empty",
        "cut",
    ],
)
def test_malformed_json_is_refused_without_an_internal_error(world: World, raw: bytes) -> None:
    """Huge integers, deep nesting, invalid UTF-8, NaN and cut bodies are a 4xx, never a 500; nothing runs."""
    token = world.token(COORD)
    before = _state(world.ctx)
    answer = world.web().post(
        "/api/v1/commands/round.close",
        content=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text and "internal" not in answer.text
    assert _state(world.ctx) == before


def test_control_characters_are_refused_in_stored_text(world: World) -> None:
    """A NUL in a title or opinion text is a validation error naming the field, not stored."""
    token = world.token(COORD)
    before = _state(world.ctx)
    answer = world.call("consultation.create", token, {"title": "a\x00b", "area": "x"})
    assert answer.status_code == 422 and "U+0000" in answer.json()["error"]
    answer = world.call("opinion.submit", token, {**WRITES["opinion.submit"], "text": "a\x00b"})
    assert answer.status_code == 422
    assert _state(world.ctx) == before


def test_two_million_and_one_ids_are_refused_by_the_8mb_limit(world: World) -> None:
    """2,000,001 ids to a command with the ordinary limit are refused (413) with one line; nothing runs."""
    token = world.token(COORD)
    ids = ("[" + ",".join(map(str, range(1, 2_000_002))) + "]").encode()
    assert len(ids) > limits.BODY_LIMIT
    answer = world.web().post(
        "/api/v1/commands/reminders.cancel",
        content=b'{"reminder_ids": ' + ids + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json()["kind"] == "too_large"


def test_out_of_range_ids_are_one_line(world: World) -> None:
    """Ids past the database's integer are a validation line in the stream, not a database error."""
    token = world.token(PLANNER)
    answer = world.call("opinion.fire", token, {"opinion_ids": [2**63], "trigger": "screen"})
    assert _last(answer)["kind"] == "validation"


PATH_TRICKS = (
    "/api/v1/commands/../commands/round.open",
    "/api/v1/commands/%2e%2e/auth/whoami",
    "/api/v1//commands/round.open",
    "//api/v1/commands/round.open",
    "/API/V1/commands/round.open",
    "/api/v1/commands/ROUND.OPEN",
    "/api/v1/commands/round.open%00",
    "/api/v1/commands/round.open;x",
    "/api/v1/auth/../commands/round.open",
)


def test_path_tricks_reach_no_command(world: World) -> None:
    """Dot segments, double slashes, case and encodings never run a command a role does not allow."""
    planner = world.token(PLANNER)
    before = _state(world.ctx)
    for path in PATH_TRICKS:
        for headers in ({}, {"Authorization": f"Bearer {planner}"}):
            answer = world.web().post(path, json={"consultation_id": 1}, headers=headers)
            assert answer.status_code in (403, 404, 405, 307), (path, answer.status_code)
    assert _state(world.ctx) == before


def test_static_files_do_not_escape_their_folder(world: World) -> None:
    """Encoded dot segments under /static serve nothing of the source tree."""
    web = world.web()
    for path in ("/static/..%2f..%2fapp.py", "/static/%2e%2e/app.py", "/static/..%2f..%2f..%2fREADME.md"):
        answer = web.get(path)
        assert answer.status_code == 404 and "import" not in answer.text, path


def test_the_openapi_document_holds_no_secret_path_or_personal_data(world: World) -> None:
    """The public OpenAPI lists commands and roles; no file path, database, key, hash or participant."""
    world.call("participant.list", world.token(COORD), {"full_names": True, "purpose": "x"})
    text = world.web().get("/api/v1/openapi.json").text
    assert '"/api/v1/commands/round.open"' in text
    for leaked in (
        str(world.ctx.workflows_dir),
        "sqlite",
        "postgresql",
        "password_hash",
        "token_hash",
        "totp_secret",
        "chain_key",
        SECRET.decode(),
        FULL_NAME,
        CONTACT,
    ):
        assert leaked not in text, leaked
    assert world.web().get("/docs").status_code == 404


def test_refusals_name_no_owner_and_no_person(world: World) -> None:
    """Ownership and role refusals name the role that holds an opinion, never a participant's name or contact."""
    expert = world.token(EXPERT)
    answers = [
        world.call("opinion.correct", expert, {"opinion_id": world.theirs, "text": "x", "reason": "y"}),
        world.call("opinion.fire", expert, {"opinion_ids": [world.theirs], "trigger": "withdraw"}),
        world.call("participant.list", expert, {"full_names": True, "purpose": "x"}),
    ]
    for answer in answers:
        for leaked in (EXPERT2, OTHER_NAME, OTHER_CONTACT, FULL_NAME, CONTACT):
            assert leaked not in answer.text


def test_the_attack_inputs_match_the_registry() -> None:
    """Every body above names only fields its command has (so a refusal is the rule, not a typo)."""
    for name, body in WRITES.items():
        known = {f.name for f in fields(registry()[name].input)}
        assert set(body) <= known, name
