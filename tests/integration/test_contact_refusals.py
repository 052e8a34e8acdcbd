"""A contact that cannot be one is refused in one line on every path that registers it, and never logged.

An over-long contact used to reach PostgreSQL, fail there as an internal error, and leave its first
150 characters in the error log. Now every path refuses it before the database: exit 1 (or the
portal's 422), one line, nothing written, and the value nowhere in the output or the logs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select
from structlog.testing import capture_logs

from consultflow.cli.main import main
from consultflow.domain import messages
from consultflow.services.context import ServiceContext
from consultflow.store.models import Actor, Participant
from tests.conftest import WORKFLOWS, Cli, sql_uow
from tests.e2e.test_cli_loop import COORD, EXPERT, setup_people
from tests.helpers import seed
from tests.web.portal import client, submit_form

# Well-formed, each of them, except for length or a control character; the marker shows if any of it leaks.
TOO_LONG_EMAIL = "zhangxiuyingmarker" + "x" * 280 + "@county.example"
TOO_LONG_NUMBER = "13812345678" + "9" * 250
CONTROL = "zhangxiuyingmarker@county.example\r\nBcc: everyone@county.example"
BAD = [
    pytest.param(TOO_LONG_EMAIL, "at most 254", id="long-email"),
    pytest.param(TOO_LONG_NUMBER, "at most 254", id="long-number"),
    pytest.param(CONTROL, "control character", id="line-break"),
]


def leaks(value: str, text: str) -> bool:
    """Whether `value`, or its first 20 characters, or its tail, shows in `text`."""
    return value in text or value[:20] in text or value.strip()[-20:] in text


def run(cli: Cli, *args: str, actor: str | None = None) -> Result:
    """The CLI with detailed logs (-v): whatever it would log is in the captured stderr."""
    head = ["--db", cli.url, "--workflows", str(WORKFLOWS), "-v", *(["--as", actor] if actor else [])]
    return cli.runner.invoke(main, [*head, *args], obj={"clock": cli.clock}, catch_exceptions=False)


@pytest.fixture
def error_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "errors.log"
    monkeypatch.setenv("CONSULTFLOW_ERROR_LOG", str(path))
    return path


def counts(cli: Cli) -> tuple[int, int]:
    people = json.loads(cli.ok("participant", "list", "--json").stdout)
    actors = json.loads(cli.ok("actor", "list", "--json").stdout)
    return len(people), len(actors["actors"] if isinstance(actors, dict) else actors)


def refused_cleanly(result: Result, value: str, says: str, error_log: Path) -> None:
    assert result.exit_code == 1, result.output
    out = result.stdout + result.stderr
    assert says in result.stderr
    assert "Traceback" not in out and "internal error" not in out
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        result.stderr.strip().splitlines()[-1]
    ]
    assert not leaks(value, out)
    assert not error_log.exists() or not leaks(value, error_log.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("value", "says"), BAD)
def test_participant_add_refuses_it(cli: Cli, error_log: Path, value: str, says: str) -> None:
    """Adding a villager with an impossible contact is refused in one line, writes nothing, and logs no trace of it."""
    setup_people(cli)
    before = counts(cli)
    result = run(cli, "participant", "add", "王秀兰", "--village", "青龙村", "--contact", value, actor=EXPERT)
    refused_cleanly(result, value, says, error_log)
    assert counts(cli) == before


@pytest.mark.parametrize(("value", "says"), BAD)
def test_actor_add_refuses_it(cli: Cli, error_log: Path, value: str, says: str) -> None:
    """Adding staff with an impossible contact is refused in one line, writes nothing, and logs no trace of it."""
    setup_people(cli)
    before = counts(cli)
    result = run(cli, "actor", "add", "刘规划", "--role", "planner", "--contact", value, actor=COORD)
    refused_cleanly(result, value, says, error_log)
    assert counts(cli) == before


@pytest.mark.parametrize(("value", "says"), BAD)
def test_an_import_refuses_the_row(cli: Cli, error_log: Path, tmp_path: Path, value: str, says: str) -> None:
    """An import leaves an impossible contact out, counted, keeps the opinion, and shows the contact nowhere."""
    setup_people(cli)
    cli.ok("round", "open", "1", actor=COORD)
    before = counts(cli)
    out = io.StringIO()
    csv.writer(out).writerows(
        [
            ["姓名", "村", "电话", "类别", "意见内容"],
            ["王秀兰", "青龙村", "13900001111", "产业发展", "建议扩大生猪种业园区配套用地"],
            ["李建国", "白马村", value, "产业发展", "希望增设村卫生室"],
        ]
    )
    source = tmp_path / "assembly.csv"
    source.write_text(out.getvalue(), encoding="utf-8")
    result = run(
        cli, "opinion", "import", str(source), "--consultation", "1", "--channel", "villagers_assembly", actor=EXPERT
    )
    # An optional contact that is refused is left out, counted; the opinion goes in (nothing lost).
    assert result.exit_code == 0, result.output
    assert "1 contact(s) left out" in result.stdout + result.stderr
    assert not leaks(value, result.stdout + result.stderr)
    assert not error_log.exists() or not leaks(value, error_log.read_text(encoding="utf-8"))
    assert counts(cli)[0] == before[0] + 2
    assert len(json.loads(cli.ok("opinion", "list", "--json").stdout)) == 2
    assert not leaks(value, cli.ok("participant", "list", "--with-contact", "--purpose", "核对", actor=COORD).stdout)


@pytest.mark.parametrize(("value", "says"), BAD)
def test_the_portal_refuses_it(
    ctx: ServiceContext, error_log: Path, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The portal refuses an impossible contact (422, plain words), registers nobody and logs no trace of it."""
    setup = seed(ctx)
    web = client(ctx)
    _key, data = submit_form(web, setup.consultation_id, name="王秀兰", contact=value, consent="yes")
    with sql_uow(ctx) as uow:
        before = (
            uow.session.scalar(select(func.count()).select_from(Participant)),
            uow.session.scalar(select(func.count()).select_from(Actor)),
        )
    with capture_logs() as logs:
        refused = web.post(f"/c/{setup.consultation_id}/submit", data=data)
    assert refused.status_code == 422 and messages.say(messages.Said("contact_invalid"), "zh") in refused.text
    assert not leaks(value, str(logs))  # (the form comes back filled in, to the person who typed it)
    captured = capsys.readouterr()
    assert not leaks(value, captured.out + captured.err)
    assert not error_log.exists() or not leaks(value, error_log.read_text(encoding="utf-8"))
    with sql_uow(ctx) as uow:
        after = (
            uow.session.scalar(select(func.count()).select_from(Participant)),
            uow.session.scalar(select(func.count()).select_from(Actor)),
        )
    assert after == before


def test_the_longest_contact_goes_in_on_both_backends(cli: Cli) -> None:
    """254 characters fit the column (255) on PostgreSQL as on SQLite."""
    setup_people(cli)
    longest = "a" * 239 + "@county.example"
    cli.ok("participant", "add", "王秀兰", "--village", "青龙村", "--contact", longest, actor=EXPERT)
    shown = json.loads(
        cli.ok("participant", "list", "--with-contact", "--purpose", "核对联系方式", "--json", actor=COORD).stdout
    )
    assert longest in [p["contact"] for p in shown]
