"""The opinion loop through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from consultflow.domain.errors import (
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RoundStateError,
    ValidationError,
)
from consultflow.domain.vocabulary import Field
from consultflow.services import audit, opinion_views, opinions, people, rounds, statistics
from consultflow.services.context import ServiceContext
from tests.helpers import (
    COORD,
    EXPERT,
    PLANNER,
    VILLAGER,
    Setup,
    assert_loop_invariants,
    check_consistency,
    seed,
    snapshot,
    submit,
)


def fire(ctx: ServiceContext, opinion_id: int, trigger: str, actor: str = PLANNER, **fields: object):
    return opinions.fire(
        ctx, acting=actor, opinion_id=opinion_id, trigger=trigger, fields={Field(k): v for k, v in fields.items()}
    )


def feedback_cycle(ctx: ServiceContext, opinion_id: int, stance: str = "object") -> None:
    """Feedback now, the participant's reply now: the opinion is back under review."""
    fire(ctx, opinion_id, "give_feedback", text="已研究，请确认")
    fire(ctx, opinion_id, "reparticipate", actor=EXPERT, stance=stance, text="仍有意见")


def next_round(ctx: ServiceContext, setup: Setup) -> None:
    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)


def test_three_rounds_to_three_outcomes(ctx: ServiceContext) -> None:
    """Adopted after three rounds, partly adopted after two, rejected after one; the report agrees."""
    setup = seed(ctx)
    adopted, partly, rejected = (submit(ctx, setup, f"意见{i}") for i in range(3))
    for oid in (adopted, partly, rejected):
        fire(ctx, oid, "screen", actor=EXPERT)
    fire(ctx, rejected, "reject", reason="与上位规划冲突")
    feedback_cycle(ctx, adopted)
    feedback_cycle(ctx, partly, "revise")
    next_round(ctx, setup)
    fire(ctx, partly, "partly_adopt", text="部分采纳", plan_ref="v2 §4.1")
    feedback_cycle(ctx, adopted)
    next_round(ctx, setup)
    result = fire(ctx, adopted, "adopt", text="已纳入规划", plan_ref="v2 §5.3 农村路网")
    assert result.rounds_count == 3
    assert result.round_no == 3

    report = statistics.rounds_report(ctx, setup.consultation_id, per_opinion=True)
    hist = {o.outcome: o.histogram for o in report.outcomes}
    assert hist == {"adopted": {3: 1}, "partly_adopted": {2: 1}, "rejected": {1: 1}}
    assert {(r.opinion_id, r.rounds) for r in report.opinions} == {(adopted, 3), (partly, 2), (rejected, 1)}
    view, entries = opinion_views.show_opinion(ctx, adopted)
    assert view.plan_ref == "v2 §5.3 农村路网"
    assert [e.kind for e in entries] == ["feedback", "reparticipation"] * 2 + ["feedback"]
    assert [e.round_no for e in entries] == [1, 1, 2, 2, 3]
    assert check_consistency(ctx, setup.consultation_id) == []


@pytest.mark.parametrize(
    ("trigger", "actor", "fields", "error"),
    [
        ("adopt", PLANNER, {"text": "x", "plan_ref": "v2"}, InvalidTransitionError),  # not from submitted
        ("adoptt", PLANNER, {}, InvalidTransitionError),
        ("screen", "孙审计", {}, PermissionDeniedError),  # auditors change nothing
        ("screen", "nobody", {}, NotFoundError),
        ("screen", EXPERT, {"plan_ref": "v2"}, ValidationError),
        ("merge", COORD, {"merge_target": "1"}, ValidationError),  # into itself
        ("merge", COORD, {"merge_target": "999"}, ValidationError),
    ],
)
def test_refused_transition_writes_nothing(
    ctx: ServiceContext, trigger: str, actor: str, fields: dict[str, object], error: type[Exception]
) -> None:
    """Every refusal raises a clear error and leaves opinions, events and entries as they were."""
    setup = seed(ctx)
    oid = submit(ctx, setup)
    before = snapshot(ctx)
    with pytest.raises(error):
        fire(ctx, oid, trigger, actor=actor, **fields)
    assert snapshot(ctx) == before


def test_bulk_fire_is_all_or_nothing(ctx: ServiceContext) -> None:
    """If one trigger of a batch is refused, none of the batch is written."""
    setup = seed(ctx)
    a, b = submit(ctx, setup), submit(ctx, setup)
    before = snapshot(ctx)
    requests = [opinions.FireRequest(a, "screen", {}), opinions.FireRequest(b, "adopt", {})]
    with pytest.raises(InvalidTransitionError):
        opinions.fire_many(ctx, acting=EXPERT, requests=requests)
    assert snapshot(ctx) == before


def test_transitions_need_an_open_round(ctx: ServiceContext) -> None:
    """Between rounds nothing moves; the error says how to open one."""
    setup = seed(ctx)
    oid = submit(ctx, setup)
    rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    before = snapshot(ctx)
    with pytest.raises(RoundStateError, match="round open"):
        fire(ctx, oid, "screen", actor=EXPERT)
    with pytest.raises(RoundStateError):
        submit(ctx, setup)
    assert snapshot(ctx) == before


def test_only_one_round_open_at_a_time(ctx: ServiceContext) -> None:
    """Opening a second round while one is open is refused."""
    setup = seed(ctx)
    with pytest.raises(RoundStateError, match="still open"):
        rounds.open_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    with pytest.raises(PermissionDeniedError):
        rounds.close_round(ctx, acting=PLANNER, consultation_id=setup.consultation_id)


def test_round_close_applies_the_rules_and_dry_run_equals_real_close(ctx: ServiceContext) -> None:
    """Unscreened and unanswered opinions carry over; unanswered feedback lapses back to review."""
    setup = seed(ctx)
    waiting, reviewing, answered, decided = (submit(ctx, setup, f"意见{i}") for i in range(4))
    for oid in (reviewing, answered, decided):
        fire(ctx, oid, "screen", actor=EXPERT)
    fire(ctx, answered, "give_feedback", text="请补充位置")
    fire(ctx, decided, "reject", reason="不在范围")
    before = snapshot(ctx)
    dry = rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id, dry_run=True)
    assert snapshot(ctx) == before
    real = rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    assert {(s.opinion_id, s.action, s.from_state, s.to_state) for s in dry.steps} == {
        (waiting, "carry_over", "submitted", "submitted"),
        (reviewing, "carry_over", "under_review", "under_review"),
        (answered, "fire", "feedback_given", "under_review"),
    }
    assert real.steps == ()  # a real close gives totals; each opinion's step is its audit event
    assert (real.affected, real.moves) == (dry.affected, dry.moves) == (3, tuple(real.moves))
    assert sorted(real.summary()) == [
        ("carry_over", "submitted", "submitted", 1),
        ("carry_over", "under_review", "under_review", 1),
        ("lapse", "feedback_given", "under_review", 1),
    ]
    stepped = [e for e in audit.history(ctx, answered)[1] if e.kind == "carried_over"]
    assert [(e.trigger, e.from_state, e.to_state) for e in stepped] == [("lapse", "feedback_given", "under_review")]
    by_id = {v.id: v for v in opinion_views.list_opinions(ctx, consultation_id=setup.consultation_id)}
    assert by_id[answered].state == "under_review"
    assert by_id[answered].rounds_count == 1
    assert by_id[waiting].current_round == 2
    assert by_id[decided].current_round == 1
    assert check_consistency(ctx, setup.consultation_id) == []


def test_merge_records_the_target_and_refuses_merged_targets(ctx: ServiceContext) -> None:
    """A merged opinion points at the one it joined; merging into a merged one is refused with a hint."""
    setup = seed(ctx)
    a, b, c = submit(ctx, setup), submit(ctx, setup), submit(ctx, setup)
    fire(ctx, b, "merge", actor=COORD, merge_target=str(a))
    view, _ = opinion_views.show_opinion(ctx, b)
    assert (view.state, view.merged_into, view.outcome) == ("merged", a, "merged")
    with pytest.raises(ValidationError, match=f"merge into {a} instead"):
        fire(ctx, c, "merge", actor=COORD, merge_target=str(b))


def test_assignment_builds_a_planners_work_queue(ctx: ServiceContext) -> None:
    """`--assigned-to` with `--state` lists exactly what the planner owes."""
    setup = seed(ctx)
    mine, other = submit(ctx, setup, assign=False), submit(ctx, setup, assign=False)
    fire(ctx, mine, "screen", actor=EXPERT)
    fire(ctx, other, "screen", actor=EXPERT)
    opinions.assign(ctx, acting=COORD, opinion_ids=[mine], planner=PLANNER)
    queue = opinion_views.list_opinions(ctx, assigned_to=PLANNER, state="under_review")
    assert [v.id for v in queue] == [mine]
    with pytest.raises(ValidationError, match="not a registered planner"):
        opinions.assign(ctx, acting=COORD, opinion_ids=[other], planner=EXPERT)
    with pytest.raises(PermissionDeniedError):
        opinions.assign(ctx, acting=PLANNER, opinion_ids=[other], planner=PLANNER)


def test_unknown_category_lists_the_allowed_ones(ctx: ServiceContext) -> None:
    """A category outside the workflow is refused with the list of categories."""
    setup = seed(ctx)
    with pytest.raises(
        ValidationError,
        match="allowed: 产业发展/industry, 公共服务配套/public_services, 环境卫生与农村路网/environment_roads",
    ):
        submit(ctx, setup, category="roads")


def test_ownership_participants_experts_and_planners(ctx: ServiceContext) -> None:
    """Each acts on their own: the villager on their opinion, experts on theirs, planners on the assigned."""
    setup = seed(ctx)
    people.add_actor(ctx, acting=COORD, name="周专家", roles=["expert"])
    people.add_actor(ctx, acting=COORD, name="陈规划", roles=["planner"])
    other = people.add_participant(ctx, acting="周专家", name="李四", village="白马村").id
    people.add_actor(ctx, acting=COORD, name="无记录村民", roles=["participant"])
    with pytest.raises(ValidationError, match="add --role participant"):
        people.add_actor(ctx, acting=COORD, name="错配", roles=["expert"], participant_id=other)

    def submit_as(actor: str, participant_id: int) -> int:
        return opinions.submit_opinion(
            ctx, acting=actor, consultation_id=setup.consultation_id, participant_id=participant_id,
            category="industry", channel="online_survey", text="意见",
        ).id  # fmt: skip

    own = submit_as(VILLAGER, setup.participant_id)  # the villager, as themselves
    with pytest.raises(PermissionDeniedError, match="only as their own participant record"):
        submit_as(VILLAGER, other)
    for_other = submit_as(EXPERT, other)  # 赵专家 records for 周专家's participant
    with pytest.raises(PermissionDeniedError, match="another participant's opinion"):
        fire(ctx, for_other, "withdraw", actor=VILLAGER)
    with pytest.raises(PermissionDeniedError, match="not tied to a participant record"):
        fire(ctx, own, "withdraw", actor="无记录村民")
    fire(ctx, for_other, "screen", actor="周专家")  # represents the participant, though 赵专家 recorded it
    with pytest.raises(PermissionDeniedError, match="recorded by another local expert"):
        fire(ctx, own, "screen", actor="周专家")
    fire(ctx, own, "screen", actor=EXPERT)
    with pytest.raises(PermissionDeniedError, match="not assigned to a planner yet"):
        fire(ctx, own, "give_feedback", actor=PLANNER, text="反馈")
    opinions.assign(ctx, acting=COORD, opinion_ids=[own], planner="陈规划")
    with pytest.raises(PermissionDeniedError, match="assigned to another planner; a coordinator may reassign") as no:
        fire(ctx, own, "give_feedback", actor=PLANNER, text="反馈")
    assert "陈规划" not in str(no.value)
    opinions.assign(ctx, acting=COORD, opinion_ids=[own], planner=PLANNER)
    fire(ctx, own, "give_feedback", actor=PLANNER, text="反馈")
    fire(ctx, own, "withdraw", actor=VILLAGER, reason="已解决")
    assert_loop_invariants(ctx, setup.consultation_id)
