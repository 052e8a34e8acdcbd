"""Concurrency proven with real processes, on SQLite and PostgreSQL.

Several processes fire, assign, merge and bulk-fire on the same opinions (one in several batches
within each transaction) while another closes and opens rounds and two sweep reminders. Afterwards: no traceback anywhere, every refusal a clean
consultflow error, and every invariant of the loop holds.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from consultflow.domain.errors import ConflictError, ConsultflowError, RoundStateError
from consultflow.domain.vocabulary import Field
from consultflow.services import opinion_views, opinions, outbox, rounds, sweep
from consultflow.services.context import ServiceContext
from consultflow.store.database import SqlDatabase
from consultflow.store.models import DeliveryAttempt
from tests.conftest import WORKFLOWS, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, assert_loop_invariants, seed, snapshot, submit

pytestmark = pytest.mark.slow
T = TypeVar("T")

FIELDS: dict[str, dict[Field, object]] = {
    "give_feedback": {Field.TEXT: "反馈"},
    "reparticipate": {Field.STANCE: "revise", Field.TEXT: "补充"},
    "adopt": {Field.TEXT: "采纳", Field.PLAN_REF: "v2 §5.3"},
    "reject": {Field.REASON: "不可行"},
}
WHO = {"screen": EXPERT, "give_feedback": PLANNER, "reparticipate": EXPERT, "adopt": PLANNER, "reject": PLANNER}
NEXT = {
    "submitted": ["screen"],
    "under_review": ["give_feedback", "adopt", "reject"],
    "feedback_given": ["reparticipate"],
}
FUTURE = datetime(2030, 1, 1, tzinfo=timezone.utc)
OPS = 25


class _RecordingSender:
    """Appends each message's idempotency key to a file shared by the sweepers."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: outbox.OutgoingMessage) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(message.idempotency_key + "\n")


def _when_open(rng: random.Random, action: Callable[[], T]) -> T:
    """Do `action` as a person would: between rounds, wait for the next one to open, then do it."""
    for _attempt in range(19):
        try:
            return action()
        except RoundStateError:
            time.sleep(rng.uniform(0.02, 0.08))
    return action()


def _submit_when_open(ctx: ServiceContext, rng: random.Random, items: list[opinions.NewOpinion]) -> list[int]:
    """Record `items` once a round is open; their ids."""
    views = _when_open(rng, lambda: opinions.submit_many(ctx, acting=EXPERT, consultation_id=1, items=items))
    return [view.id for view in views]


def _one(kind: str, ctx: ServiceContext, rng: random.Random, ids: list[int], sent: Path) -> None:
    if kind == "fire":  # a trigger the opinion's state allows when read (another process may move it first)
        opinion_id = rng.choice(ids)
        allowed = NEXT.get(opinion_views.show_opinion(ctx, opinion_id)[0].state)
        trigger = rng.choice(allowed or list(WHO))  # decided: any trigger, refused
        fields = FIELDS.get(trigger, {})
        _when_open(
            rng, lambda: opinions.fire(ctx, acting=WHO[trigger], opinion_id=opinion_id, trigger=trigger, fields=fields)
        )
    elif kind == "assign":
        opinions.assign(ctx, acting=COORD, opinion_ids=[rng.choice(ids)], planner=PLANNER)
    elif kind == "bulk":  # a meeting's notes come in, then are screened together with older ones
        items = [opinions.NewOpinion(1, "industry", "villagers_assembly", f"会上意见 {n}") for n in range(3)]
        new = _submit_when_open(ctx, rng, items)
        requests = [opinions.FireRequest(i, "screen", {}) for i in [*new, rng.choice(ids)]]
        try:
            opinions.fire_many(ctx, acting=EXPERT, requests=requests)
        except ConsultflowError:  # the older one may not be waiting for screening: all or nothing
            opinions.fire_many(ctx, acting=EXPERT, requests=requests[:-1])
    elif kind == "batches":  # fresh opinions assigned, screened and answered, each over several batches
        new = _submit_when_open(
            ctx, rng, [opinions.NewOpinion(1, "industry", "online_survey", f"问卷意见 {n}") for n in range(6)]
        )
        opinions.assign(ctx, acting=COORD, opinion_ids=new, planner=PLANNER)
        for trigger in ("screen", "give_feedback"):
            fields = FIELDS.get(trigger, {})
            opinions.fire_many(ctx, acting=WHO[trigger], requests=opinions.SameTrigger(new, trigger, fields))
    elif kind == "merge":
        source, target = rng.sample(ids[:10], 2)  # merges stay among ten, so others remain open
        fields = {Field.MERGE_TARGET: target, Field.TEXT: "合并"}
        _when_open(rng, lambda: opinions.fire(ctx, acting=COORD, opinion_id=source, trigger="merge", fields=fields))
    elif kind == "rounds":  # close and reopen, then leave the round open a moment, as a coordinator would
        rounds.close_round(ctx, acting=COORD, consultation_id=1)
        rounds.open_round(ctx, acting=COORD, consultation_id=1)
        time.sleep(rng.uniform(0.05, 0.15))
    elif kind == "sweep":
        sweep.sweep(ctx, _RecordingSender(sent), outbox.SweepSettings(batch=20), now=FUTURE)


def _processes() -> ForkServerContext:
    """Real processes, each with its own connections, forked from a server process that imported this module once.

    A spawned process would start a fresh interpreter and import everything again: a second or two
    of CPU for each of the ten, which on a loaded 2-core machine delays the test, not its proof.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _worker(
    kind: str, url: str, ids: list[int], seed_: int, sent: str, start: Any, results: Any, ops: int = OPS
) -> None:
    """One process: OPS operations of one kind; reports successes, refusals, conflicts and tracebacks."""
    ctx = ServiceContext(database=SqlDatabase.from_url(url), workflows_dir=WORKFLOWS)
    if kind == "batches":
        opinions.FIRE_BATCH = 2  # this process only: six opinions take three batches, each flushed and let go
    start.wait(timeout=120)  # every process is imported and connected: they begin together
    rng = random.Random(seed_)
    counts: dict[str, int] = {"ok": 0, "refused": 0, "conflict": 0}
    reasons: dict[str, int] = {}
    crashes: list[str] = []
    for _ in range(ops):
        try:
            _one(kind, ctx, rng, ids, Path(sent))
            counts["ok"] += 1
        except ConflictError as exc:
            counts["conflict"] += 1
            reasons[str(exc)[:90]] = reasons.get(str(exc)[:90], 0) + 1
        except ConsultflowError as exc:
            counts["refused"] += 1
            reasons[str(exc)[:90]] = reasons.get(str(exc)[:90], 0) + 1
        except BaseException:  # noqa: BLE001 - a crash is what this test looks for
            crashes.append(traceback.format_exc())
    ctx.database.dispose()
    results.put((kind, counts | {"reasons": reasons}, crashes))


def test_many_processes_at_once_keep_every_invariant(ctx: ServiceContext, db_url: str, tmp_path: Path) -> None:
    """Fire, assign, merge, bulk fire, round close and sweeps in parallel processes: nothing breaks."""
    setup = seed(ctx)
    ids = [submit(ctx, setup, text=f"意见 {i}") for i in range(30)]
    sent = tmp_path / "sent.txt"
    sent.touch()
    kinds = ["fire", "fire", "fire", "assign", "bulk", "batches", "merge", "rounds", "sweep", "sweep"]
    processes = _processes()
    results = processes.Queue()
    start = processes.Barrier(len(kinds))
    procs = [
        processes.Process(target=_worker, args=(kind, db_url, ids, n, str(sent), start, results))
        for n, kind in enumerate(kinds)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    crashes = [crash for _kind, _counts, found in reports for crash in found]
    assert crashes == [], crashes[0]
    succeeded = dict.fromkeys(kinds, 0)
    for kind, counts, _ in reports:
        succeeded[kind] += counts["ok"]
    summary = "\n".join(
        f"{kind}: ok {c['ok']}, refused {c['refused']}, conflicts {c['conflict']}; "
        + "; ".join(f"{n}× {why}" for why, n in sorted(c["reasons"].items(), key=lambda r: -r[1])[:3])
        for kind, c, _ in reports
    )
    assert all(n > 0 for n in succeeded.values()), summary  # a run where everything is refused proves nothing

    assert_loop_invariants(ctx, setup.consultation_id)
    keys = sent.read_text(encoding="utf-8").split()
    assert len(keys) == len(set(keys)), "a message was sent twice"
    with sql_uow(ctx) as uow:
        twice = uow.session.scalar(
            select(func.count()).select_from(
                select(DeliveryAttempt.delivery_id)
                .where(DeliveryAttempt.ok.is_(True))
                .group_by(DeliveryAttempt.delivery_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert twice == 0


def test_killing_writers_mid_transaction_leaves_every_invariant(
    ctx: ServiceContext, db_url: str, tmp_path: Path
) -> None:
    """SIGKILL firers, an assigner, bulk intake and the round closer mid-work: what they did is whole, what
    they were doing is gone, and the database takes new work at once."""
    setup = seed(ctx)
    ids = [submit(ctx, setup, text=f"意见 {i}") for i in range(30)]
    events_before = snapshot(ctx)["events"]
    sent = tmp_path / "sent.txt"
    sent.touch()
    doomed = ["fire", "fire", "assign", "bulk", "merge", "rounds"]
    processes = _processes()
    results = processes.Queue()
    start = processes.Barrier(len(doomed) + 2)
    procs = [
        processes.Process(target=_worker, args=(kind, db_url, ids, n, str(sent), start, results, 10_000))
        for n, kind in enumerate(doomed)
    ]
    sweepers = [
        processes.Process(target=_worker, args=("sweep", db_url, ids, 100 + n, str(sent), start, results))
        for n in range(2)
    ]
    for proc in [*procs, *sweepers]:
        proc.start()
    # Kill once they are well into their work (on a loaded machine that takes longer to reach).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and snapshot(ctx)["events"] < events_before + 60:  # type: ignore[operator]
        time.sleep(0.05)
    for proc in procs:
        assert proc.is_alive(), "a writer finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
    reports = [results.get(timeout=240) for _ in sweepers]
    for proc in sweepers:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert [crash for _kind, _counts, found in reports for crash in found] == []
    events_after = snapshot(ctx)["events"]
    assert isinstance(events_before, int) and isinstance(events_after, int)
    assert events_after > events_before + 50, "the killed writers had done little work"

    # The database is not left locked: new work goes through at once, then everything still agrees.
    if rounds.round_status(ctx, setup.consultation_id).open_round is None:
        rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    new = submit(ctx, setup, text="杀掉进程之后的新意见")
    opinions.fire(ctx, acting=EXPERT, opinion_id=new, trigger="screen", fields={})
    assert_loop_invariants(ctx, setup.consultation_id)
    keys = sent.read_text(encoding="utf-8").split()
    assert len(keys) == len(set(keys)), "a message was sent twice"


def test_two_imports_of_one_file_at_once_record_each_row_once(ctx: ServiceContext, db_url: str, tmp_path: Path) -> None:
    """Two local experts import the same questionnaire export at the same moment: every row once, no error."""
    import csv
    import json
    import subprocess
    import sys

    from consultflow.services import opinion_views

    setup = seed(ctx)
    path = tmp_path / "问卷.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["序号", "村", "类别", "意见内容"])
        writer.writerows([i, "青龙村", "产业发展", f"意见{i}"] for i in range(1, 3001))
    command = [
        sys.executable, "-m", "consultflow", "--db", db_url, "--workflows", str(WORKFLOWS), "-q", "--as", EXPERT,
        "--json", "opinion", "import", str(path), "--consultation", str(setup.consultation_id),
        "--channel", "online_survey",
    ]  # fmt: skip
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _out, err in outcomes]
    reports = [json.loads(out) for out, _err in outcomes]
    # each process saw every row: imported by it, or already there from the other
    assert sum(r["imported"] for r in reports) == 3000
    assert all(r["imported"] + r["already"] == 3000 for r in reports)
    assert len(opinion_views.list_opinions(ctx, consultation_id=setup.consultation_id)) == 3000
    assert_loop_invariants(ctx, setup.consultation_id)
