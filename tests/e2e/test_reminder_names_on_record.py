"""A villager's name in reminders and deliveries: pseudonymised, or read in full by a coordinator on record."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from consultflow.domain.vocabulary import Field
from consultflow.services import opinions, personal_data, rounds, sweep
from consultflow.services.context import ServiceContext
from consultflow.services.outbox import DeliveryError, OutgoingMessage, SweepSettings
from tests.conftest import Cli
from tests.e2e.test_cli_reminders import under_review
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit
from tests.servers import free_port
from tests.web.test_staff_api import _signed_in

OPINION = "建议硬化通组道路"
BODY = "当前状态："  # a line of every Chinese reminder's body (the subject has none)


def failed_to_villager(cli: Cli) -> int:
    """A reminder to 张秀英 whose webhook delivery died; its id."""
    oid = under_review(cli)
    cli.ok("opinion", "fire", str(oid), "give_feedback", "--text", "请确认", actor=PLANNER)
    hook = ["--channels", "log,webhook", "--webhook-url", f"http://127.0.0.1:{free_port()}/hook", "--max-attempts", "1"]
    assert cli("reminders", "run-once", "--now", "2026-03-19T09:00", *hook, "--webhook-allow-private").exit_code == 3
    reminders = json.loads(cli.ok("reminders", "list", "--json").stdout)
    [sent] = [r for r in reminders if r["recipient_role"] == "participant" and r["status"] == "dispatched"]
    return int(sent["id"])


def accesses(cli: Cli) -> list[dict[str, Any]]:
    return list(json.loads(cli.ok("--json", "audit", "access").stdout))


def test_without_a_purpose_staff_see_the_villager_pseudonymised_and_no_body(cli: Cli) -> None:
    """Without a purpose, staff see a failed reminder's villager pseudonymised and no body, and nothing is recorded."""
    rid = failed_to_villager(cli)
    for args in (("reminders", "list", "--failed"), ("reminders", "show", str(rid))):
        for fmt in ((), ("--json",)):
            shown = cli.ok(*args, *fmt, actor=PLANNER).stdout
            assert "张秀英" not in shown and "张某某" in shown, shown
            assert BODY not in shown  # the message's body is not shown
    assert accesses(cli) == []


def test_a_coordinator_reads_full_names_and_bodies_on_record(cli: Cli) -> None:
    """A coordinator giving a purpose reads full names and bodies, and each reading is on record with its purpose."""
    rid = failed_to_villager(cli)
    shown = cli.ok("reminders", "show", str(rid), "--names", "full", "--purpose", "电话回访未送达的提醒", actor=COORD)
    assert "张秀英" in shown.stdout
    assert BODY in shown.stdout  # the message as it was sent
    failed = json.loads(
        cli.ok("reminders", "list", "--failed", "--json", "--names", "full", "--purpose", "核对", actor=COORD).stdout
    )
    assert [d["recipient"] for d in failed] == ["张秀英"] and BODY in failed[0]["body"]
    records = json.loads(cli.ok("--json", "audit", "access", "--participant", "1").stdout)
    assert [(r["actor"], r["what"], r["purpose"]) for r in records] == [
        (COORD, "failed deliveries with full names", "核对"),
        (COORD, f"reminder {rid} with full names", "电话回访未送达的提醒"),
    ]


@pytest.mark.parametrize(
    ("who", "extra", "code", "says"),
    [
        (COORD, (), 1, "give --purpose WHY"),
        (COORD, ("--purpose", "   "), 1, "give --purpose WHY"),
        (PLANNER, ("--purpose", "好奇"), 1, "may not"),
    ],
)
def test_full_names_without_a_purpose_or_by_a_non_coordinator_are_refused_and_not_recorded(
    cli: Cli, who: str, extra: tuple[str, ...], code: int, says: str
) -> None:
    """Full names without a purpose, or for a non-coordinator, are refused in one line; no name shown or recorded."""
    rid = failed_to_villager(cli)
    for args in (("reminders", "show", str(rid)), ("reminders", "list", "--failed")):
        refused = cli(*args, "--names", "full", *extra, actor=who)
        assert refused.exit_code == code, refused.output
        assert says in refused.stderr and "张秀英" not in refused.output
        assert len(refused.stderr.strip().splitlines()) == 1
    assert accesses(cli) == []


def test_full_names_of_reminders_themselves_is_a_usage_mistake(cli: Cli) -> None:
    """Reminders name roles (planner, participant), not people: --names full is for --failed or show."""
    under_review(cli)
    wrong = cli("reminders", "list", "--names", "full", "--purpose", "x", actor=COORD)
    assert wrong.exit_code == 2 and "--failed" in wrong.stderr


class Refusing:
    """A channel that fails every message (so each lands in the failed list)."""

    def send(self, message: OutgoingMessage) -> None:
        raise DeliveryError("gateway down")


def test_through_the_server_the_same(sqlite_ctx: ServiceContext) -> None:
    """The staff API: pseudonyms by default; full names and bodies only for a coordinator with a purpose, on record."""
    setup = seed(sqlite_ctx, open_first_round=False)
    now = sqlite_ctx.clock.now()
    rounds.open_round(
        sqlite_ctx, acting=COORD, consultation_id=setup.consultation_id, closes_at=now + timedelta(days=1)
    )
    oid = submit(sqlite_ctx, setup, OPINION)
    opinions.fire(sqlite_ctx, acting=EXPERT, opinion_id=oid, trigger="screen", fields={})
    opinions.fire(sqlite_ctx, acting=PLANNER, opinion_id=oid, trigger="give_feedback", fields={Field.TEXT: "请确认"})
    settings = SweepSettings(channels=frozenset({"log", "webhook"}), max_attempts=1)
    sweep.sweep(sqlite_ctx, Refusing(), settings, now=now + timedelta(hours=1))

    coord, token = _signed_in(sqlite_ctx, COORD)
    bearer = {"Authorization": f"Bearer {token}"}
    plain = coord.post("/api/v1/commands/reminders.failed", json={}, headers=bearer)
    assert plain.status_code == 200 and "张秀英" not in plain.text and BODY not in plain.text
    assert "张某某" in plain.text
    full = {"full_names": True, "purpose": "电话回访"}
    named = coord.post("/api/v1/commands/reminders.failed", json=full, headers=bearer)
    assert named.status_code == 200 and "张秀英" in named.text and BODY in named.text
    no_purpose = coord.post("/api/v1/commands/reminders.failed", json={"full_names": True}, headers=bearer)
    assert no_purpose.status_code != 200 and no_purpose.json()["exit_code"] == 1 and "张秀英" not in no_purpose.text
    planner, planner_token = _signed_in(sqlite_ctx, PLANNER)
    refused = planner.post(
        "/api/v1/commands/reminders.failed", json=full, headers={"Authorization": f"Bearer {planner_token}"}
    )
    assert refused.status_code == 403 and "张秀英" not in refused.text
    records = personal_data.access_records(sqlite_ctx)
    assert [(r.actor, r.what, r.purpose, r.participants) for r in records] == [
        (COORD, "failed deliveries with full names", "电话回访", 1)
    ]
