"""Issue 26 through the server's staff API: a participant's group changed, the participation report and the dashboard."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from consultflow.services import accounts, opinions, participation, programmes
from consultflow.services.context import ServiceContext
from tests.helpers import AUDITOR, COORD, EXPERT, PLANNER, seed
from tests.web.portal import client

PASSWORD = "correct horse battery"


def _signed_in(web: TestClient, ctx: ServiceContext, name: str) -> dict[str, str]:
    accounts.set_password(ctx, acting=None, name=name, password=PASSWORD)
    answer = web.post("/api/v1/auth/signin", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _document(answer: Any) -> dict[str, Any]:
    """A streamed report's JSON lines: its chunks joined, read as the JSON document they are."""
    lines = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
    assert lines[-1] == {"end": len(lines) - 1}, lines[-1]
    data = b"".join(base64.b64decode(line["item"]["data"]) for line in lines[:-1])
    found: dict[str, Any] = json.loads(data)
    return found


def test_groups_and_participation_through_the_staff_api(ctx: ServiceContext) -> None:
    """An expert changes a group, an auditor reads the report and the dashboard: the same figures as here."""
    setup = seed(ctx)
    for text in ("建议一", "建议二"):
        opinions.submit_opinion(
            ctx, acting=EXPERT, consultation_id=1, participant_id=setup.participant_id, category="industry",
            channel="open_air_meeting", text=text,
        )  # fmt: skip
    programmes.create_programme(ctx, acting=COORD, name="县域片区", title="某县片区国土空间规划")
    web = client(replace(ctx, acting_proven=True))
    expert = _signed_in(web, ctx, EXPERT)
    changed = web.post(
        "/api/v1/commands/participant.group", json={"participant_id": 1, "group": "乡村乡贤"}, headers=expert
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["group"] == "respected_villagers" and changed.json()["consultations"] == [1]
    unknown = web.post("/api/v1/commands/participant.group", json={"participant_id": 1, "group": "x"}, headers=expert)
    assert unknown.status_code == 422 and "allowed: 乡镇干部/officials" in unknown.json()["error"]
    planner = _signed_in(web, ctx, PLANNER)
    added = web.post(
        "/api/v1/commands/programme.add-area", json={"programme": "县域片区", "consultation_id": 1}, headers=planner
    )
    assert added.status_code == 403  # coordinators only
    coordinator = _signed_in(web, ctx, COORD)
    added = web.post(
        "/api/v1/commands/programme.add-area", json={"programme": "县域片区", "consultation_id": 1}, headers=coordinator
    )
    assert added.status_code == 200 and added.json()["changed"]

    auditor = _signed_in(web, ctx, AUDITOR)
    answer = web.post(
        "/api/v1/commands/report.participation", json={"consultation_id": 1, "format": "json"}, headers=auditor
    )
    assert answer.status_code == 200
    doc = _document(answer)
    here = participation.participation_summary(ctx, 1)
    assert (doc["figures"]["participants"], doc["figures"]["times"], doc["figures"]["repeat_share"]) == (
        here.participants, here.times, here.repeat_share,
    ) == (1, 2, 100.0)  # fmt: skip
    people = next(t for t in doc["tables"] if t["key"] == "people")
    assert people["rows"] == [[1, "张某某", "青龙村", "乡村乡贤", 2, 0, 2]]
    assert "张秀英" not in answer.text
    full = web.post(
        "/api/v1/commands/report.participation",
        json={"consultation_id": 1, "format": "json", "names": "full", "purpose": "x"},
        headers=auditor,
    )
    assert "张秀英" not in full.text and "error" in json.loads(full.text.splitlines()[-1])  # coordinators only
    board = web.post("/api/v1/commands/report.programme", json={"programme": "1", "format": "json"}, headers=auditor)
    areas = _document(board)["figures"]["areas"]
    assert [(a["consultation_id"], a["opinions"], a["repeat_share"]) for a in areas] == [(1, 2, 100.0)]


def test_the_portal_api_takes_the_submitters_group(ctx: ServiceContext) -> None:
    """POST /api/v1/consultations/1/opinions with a group: her group; an unknown one is 422 naming the allowed ones."""
    seed(ctx)
    web = client(ctx)
    body = {
        "category": "industry",
        "text": "建议发展乡村旅游",
        "village": "青龙村",
        "name": "陈桂兰",
        "group": "企业代表",
    }
    assert web.post("/api/v1/consultations/1/opinions", json=body).status_code == 201
    refused = web.post("/api/v1/consultations/1/opinions", json={**body, "name": "陈二", "group": "外星人"})
    assert refused.status_code == 422 and "allowed: 乡镇干部/officials" in refused.json()["error"]
    summary = participation.participation_summary(ctx, 1)
    assert summary.participants == 1 and ("companies", 1, 0) in summary.by_group
