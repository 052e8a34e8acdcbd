"""Personal information through the staff API: a full-name list ends only once its read is on record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consultflow.domain.errors import DatabaseUnavailableError
from consultflow.services import personal_data
from consultflow.services.context import ServiceContext
from consultflow.store.personal_data import PersonalDataStore
from consultflow.store.uow import UnitOfWork
from tests.helpers import COORD, PLANNER, seed
from tests.web.test_staff_api import _signed_in

FULL_NAMES = {"full_names": True, "purpose": "回访核对"}


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_full_name_list_ends_only_once_its_read_is_on_record(
    sqlite_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the record's commit fails, the stream ends in that error (no end line, nothing to show); else it is on record."""
    seed(sqlite_ctx)
    web, token = _signed_in(sqlite_ctx, COORD)
    bearer = {"Authorization": f"Bearer {token}"}

    record, commit = PersonalDataStore.record_access, UnitOfWork.commit
    recorded: list[bool] = []

    def recording(store: PersonalDataStore, **fields: Any) -> int:
        recorded.append(True)
        return record(store, **fields)

    def refuse(uow: UnitOfWork) -> None:  # the commit of the transaction that holds the record fails
        if recorded:
            msg = "the database went away"
            raise DatabaseUnavailableError(msg)
        commit(uow)

    with monkeypatch.context() as broken:
        broken.setattr(PersonalDataStore, "record_access", recording)
        broken.setattr(UnitOfWork, "commit", refuse)
        failed = _lines(web.post("/api/v1/commands/participant.list", json=FULL_NAMES, headers=bearer).text)
    assert recorded and failed[0]["item"]["name"] == "张秀英"  # the rows went out as read ...
    assert failed[-1]["error"] == "the database went away"  # ... but the answer ends in the failure,
    assert not any("end" in line for line in failed)  # never an end line: the CLI shows none of it
    assert not personal_data.access_records(sqlite_ctx)

    done = _lines(web.post("/api/v1/commands/participant.list", json=FULL_NAMES, headers=bearer).text)
    assert done[-1] == {"end": 1}
    assert done[0]["item"]["name"] == "张秀英" and done[0]["item"]["contact"] is None
    records = personal_data.access_records(sqlite_ctx)
    assert [(r.actor, r.what, r.purpose, r.participants) for r in records] == [
        (COORD, "participant list with full names", "回访核对", 1)
    ]


def test_a_planner_gets_no_full_names_through_the_api_and_nothing_is_recorded(sqlite_ctx: ServiceContext) -> None:
    """The service's own rule holds behind the API: only coordinators read full names; the refusal is the last line."""
    seed(sqlite_ctx)
    web, token = _signed_in(sqlite_ctx, PLANNER)
    bearer = {"Authorization": f"Bearer {token}"}
    refused = _lines(web.post("/api/v1/commands/participant.list", json=FULL_NAMES, headers=bearer).text)
    assert refused == [
        {
            "error": f"{PLANNER} (role: planner) may not see participants' full names or contacts; "
            "allowed roles: coordinator",
            "exit_code": 1,
            "kind": "permission_denied",
        }
    ]
    pseudonyms = _lines(web.post("/api/v1/commands/participant.list", json={}, headers=bearer).text)
    assert [line.get("item", {}).get("name") for line in pseudonyms] == ["张某某", None]
    assert not personal_data.access_records(sqlite_ctx)
