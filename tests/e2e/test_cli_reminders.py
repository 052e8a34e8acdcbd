"""Coordinators looking after reminders from the CLI."""

from __future__ import annotations

import json

from tests.conftest import Cli
from tests.e2e.test_cli_loop import COORD, EXPERT, PLANNER, setup_people, submit
from tests.servers import free_port


def under_review(cli: Cli) -> int:
    setup_people(cli)
    cli.ok("round", "open", "1", "--closes-at", "2026-03-20", actor=COORD)
    oid = submit(cli, "建议硬化通组道路", "environment_roads")
    cli.ok("opinion", "fire", str(oid), "screen", actor=EXPERT)
    cli.ok("opinion", "assign", str(oid), "--to", PLANNER, actor=COORD)
    return oid


def test_run_once_list_show_and_cancel(cli: Cli) -> None:
    """A sweep at a given time sends what is due; coordinators see, inspect and cancel reminders."""
    under_review(cli)
    pending = json.loads(cli.ok("reminders", "list", "--status", "pending", "--json").stdout)
    assert [(r["rule"], r["recipient_role"]) for r in pending] == [
        ("feedback_due", "planner"),
        ("feedback_due", "planner"),
        ("feedback_overdue", "coordinator"),
    ]
    report = json.loads(cli.ok("--json", "reminders", "run-once", "--digest", "--now", "2026-03-07T12:00").stdout)
    assert (report["dispatched"], report["sent"]) == (
        1,
        1 + 2,
    )  # one reminder, plus the planner's and coordinator's digests
    shown = json.loads(cli.ok("reminders", "show", str(pending[0]["id"]), "--json").stdout)
    [delivery] = shown["deliveries"]
    assert (delivery["recipient"], delivery["channel"], delivery["status"]) == (PLANNER, "log", "sent")
    assert delivery["history"][0]["ok"] is True
    refused = cli("reminders", "cancel", str(pending[2]["id"]), actor=PLANNER)
    assert refused.exit_code == 1 and "may not manage reminders" in refused.stderr
    cli.ok("reminders", "cancel", str(pending[2]["id"]), "--reason", "已电话督办", actor=COORD)
    again = cli("reminders", "cancel", str(pending[2]["id"]), actor=COORD)
    assert again.exit_code == 1 and "only pending reminders can be cancelled" in again.stderr
    later = json.loads(cli.ok("--json", "reminders", "run-once", "--now", "2026-03-20T12:00").stdout)
    assert later["dispatched"] == 1  # the escalation was cancelled by hand
    assert json.loads(cli.ok("reminders", "list", "--failed", "--json").stdout) == []


def test_reschedule_moves_participant_reminders(cli: Cli) -> None:
    """Changing the round's closing time moves the reminders that are due at the close."""
    oid = under_review(cli)
    cli.ok("opinion", "fire", str(oid), "give_feedback", "--text", "请确认", actor=PLANNER)
    cli.ok("round", "reschedule", "1", "2026-03-25T18:00", actor=COORD)
    reminders = json.loads(cli.ok("reminders", "list", "--json").stdout)
    open_ones = [r for r in reminders if r["rule"] == "reparticipation_open"]
    assert sorted(r["status"] for r in open_ones) == ["cancelled", "pending"]
    [pending] = [r for r in open_ones if r["status"] == "pending"]
    assert pending["due_at"] == "2026-03-25T18:00:00+08:00"


def test_run_once_exits_3_when_deliveries_die_and_requeue_gives_them_another_try(cli: Cli) -> None:
    """A webhook nobody answers: the sweep dead-letters and says so with exit 3; a coordinator requeues."""
    oid = under_review(cli)
    port = free_port()  # nothing listens there
    webhook = ["--channels", "log,webhook", "--webhook-url", f"http://127.0.0.1:{port}/hook", "--max-attempts", "1"]
    webhook.append("--webhook-allow-private")  # the test's gateway is on loopback
    cli.ok("opinion", "fire", str(oid), "give_feedback", "--text", "请确认", actor=PLANNER)
    # the participant (a mobile number: the webhook) is reminded two days before the round closes
    swept = cli("reminders", "run-once", "--now", "2026-03-19T09:00", *webhook)
    assert swept.exit_code == 3, swept.output
    assert "dead-lettered" in swept.stderr and "13812345678" not in swept.output
    failed = json.loads(cli.ok("reminders", "list", "--failed", "--json").stdout)
    assert [d["status"] for d in failed] == ["dead"]
    refused = cli("reminders", "requeue", "--all-dead", actor=PLANNER)
    assert refused.exit_code == 1 and "may not manage reminders" in refused.stderr
    assert cli("reminders", "requeue", "--all-dead", "1", actor=COORD).exit_code == 2  # ids or --all-dead
    requeued = json.loads(cli.ok("--json", "reminders", "requeue", "--all-dead", actor=COORD).stdout)
    assert requeued["requeued"] == [failed[0]["id"]]
    assert json.loads(cli.ok("reminders", "list", "--failed", "--json").stdout)[0]["status"] == "pending"


def test_a_villagers_delivery_shows_them_pseudonymised(cli: Cli) -> None:
    """Reminders to a participant name them as every staff view does (张某某): full names are for the record."""
    oid = under_review(cli)
    cli.ok("opinion", "fire", str(oid), "give_feedback", "--text", "请确认", actor=PLANNER)
    cli.ok("--json", "reminders", "run-once", "--now", "2026-03-19T12:00")
    reminders = json.loads(cli.ok("reminders", "list", "--json").stdout)
    [sent] = [r for r in reminders if r["recipient_role"] == "participant" and r["status"] == "dispatched"]
    shown = json.loads(cli.ok("reminders", "show", str(sent["id"]), "--json").stdout)
    names = {d["recipient"] for d in shown["deliveries"]}
    assert "张秀英" not in names and "张某某" in names, names
