"""Categories, channels, states and outcomes as people write them: the key, either label, or a short form.

`opinion list` and `opinion submit` take what the tables show (产业发展, Industry development, 坝坝会,
采纳, 已合并) and refuse what no workflow knows in one line naming the allowed values, instead of
printing an empty table. The same resolution runs in the command layer, so the server gives the same.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from consultflow.services import accounts
from consultflow.services.context import ServiceContext
from tests.conftest import Cli
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit
from tests.web.portal import client


def _loop(cli: Cli) -> None:
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    cli.ok("actor", "add", PLANNER, "--role", "planner", actor=COORD)
    cli.ok("actor", "add", EXPERT, "--role", "expert", actor=COORD)
    cli.ok("participant", "add", "张秀英", "--village", "青龙村", actor=EXPERT)
    cli.ok("consultation", "create", "片区规划", "--area", "试点片区", actor=COORD)
    cli.ok("round", "open", "1", actor=COORD)


def _ids(cli: Cli, *filters: str) -> list[int]:
    listed = json.loads(cli.ok("opinion", "list", "--json", *filters).stdout)
    return [v["id"] for v in listed]


def test_submit_takes_labels_and_short_forms(cli: Cli) -> None:
    """Submitting takes a category or channel by key, label or short form; an unknown one is one line, no opinion."""
    _loop(cli)
    head = ["opinion", "submit", "--consultation", "1", "--participant", "1"]
    cli.ok(*head, "--category", "环境卫生与农村路网", "--channel", "坝坝会", "--text", "建议硬化通组道路", actor=EXPERT)
    cli.ok(*head, "--category", "Industry development", "--channel", "问卷", "--text", "发展研学基地", actor=EXPERT)
    cli.ok(*head, "--category", "public_services", "--channel", "村民会议", "--text", "增设村卫生室", actor=EXPERT)
    listed = json.loads(cli.ok("opinion", "list", "--json").stdout)
    assert [(v["category"], v["channel"]) for v in listed] == [
        ("environment_roads", "open_air_meeting"),
        ("industry", "online_survey"),
        ("public_services", "villagers_assembly"),
    ]
    refused = cli(*head, "--category", "道路交通", "--channel", "坝坝会", "--text", "修路", actor=EXPERT)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "Error: unknown category '道路交通'; allowed: 产业发展/industry, 公共服务配套/public_services, "
        "环境卫生与农村路网/environment_roads"
    )
    assert len(json.loads(cli.ok("opinion", "list", "--json").stdout)) == 3


def test_list_filters_take_keys_labels_and_short_forms(cli: Cli) -> None:
    """Listing filters by category, channel, state or outcome written as key, label or short form, in any case."""
    _loop(cli)
    head = ["opinion", "submit", "--consultation", "1", "--participant", "1"]
    cli.ok(*head, "--category", "industry", "--channel", "open_air_meeting", "--text", "发展研学基地", actor=EXPERT)
    cli.ok(*head, "--category", "environment_roads", "--channel", "online_survey", "--text", "硬化道路", actor=EXPERT)
    cli.ok("opinion", "fire", "2", "screen", actor=COORD)
    cli.ok("opinion", "assign", "2", "--to", PLANNER, actor=COORD)
    cli.ok("opinion", "fire", "2", "adopt", "--text", "已纳入", "--plan-ref", "v2 §5.3", actor=PLANNER)
    for written in ("产业发展", "industry", "Industry development", "产业", "INDUSTRY"):
        assert _ids(cli, "--category", written) == [1]
    for written in ("坝坝会", "open_air_meeting", "Open-air meeting", "院坝会"):
        assert _ids(cli, "--channel", written) == [1]
    for written in ("采纳", "adopted", "Adopted"):
        assert _ids(cli, "--outcome", written) == [2], written
        assert _ids(cli, "--state", written) == [2], written
    assert _ids(cli, "--state", "已收集") == [1]
    assert _ids(cli, "--outcome", "已合并", "--consultation", "1") == []  # a known outcome that nothing has
    assert _ids(cli, "--outcome", "部分采纳") == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--state", "adoptd", "unknown state 'adoptd' (did you mean adopted?); allowed: 已收集/submitted"),
        ("--outcome", "approved", "unknown outcome 'approved'; allowed: 采纳/adopted, 部分采纳/partly_adopted"),
        ("--category", "道路", "unknown category '道路'; allowed: 产业发展/industry"),
        ("--channel", "微信", "unknown channel '微信'; allowed: 村民大会/villagers_assembly, 坝坝会/open_air_meeting"),
    ],
)
def test_an_unknown_value_is_refused_in_one_line(cli: Cli, option: str, value: str, message: str) -> None:
    """A filter value no workflow knows is refused in one line naming the allowed values, not an empty table."""
    _loop(cli)
    for where in ((), ("--consultation", "1")):
        refused = cli("opinion", "list", option, value, *where)
        assert refused.exit_code == 1 and refused.stdout == ""
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith(f"Error: {message}")


def test_the_server_resolves_the_same_values(ctx: ServiceContext) -> None:
    """Through the staff API: labels resolve, an unknown value is the CLI's one line and exit code."""
    setup = seed(ctx)
    submit(ctx, setup, "发展研学基地", "industry")
    accounts.set_password(ctx, acting=None, name=COORD, password="correct horse battery")
    web = client(replace(ctx, acting_proven=True))
    signed = web.post("/api/v1/auth/signin", json={"name": COORD, "password": "correct horse battery"})
    bearer = {"Authorization": f"Bearer {signed.json()['token']}"}
    listed = web.post(
        "/api/v1/commands/opinion.list",
        json={"category": "产业发展", "state": "Submitted", "channel": "村民大会"},
        headers=bearer,
    )
    assert listed.status_code == 200
    lines = [json.loads(line) for line in listed.text.strip().splitlines()]
    assert [line["item"]["id"] for line in lines if "item" in line] == [1]
    refused = web.post("/api/v1/commands/opinion.list", json={"state": "adoptd"}, headers=bearer)
    last = json.loads(refused.text.strip().splitlines()[-1])
    assert last["exit_code"] == 1 and last["error"].startswith("unknown state 'adoptd' (did you mean adopted?)")
