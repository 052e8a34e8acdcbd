"""`audit verify` replays the draft plan's, the reviews', the ratings', the clause links' and the groups' events.

An honest consultation, built with the real use cases (two draft versions, planners' clause links,
a review with ratings and a comment, participants' groups changed after their opinions, one of
them in two consultations), verifies intact on both backends: the replay agrees with what the use
cases write. Then each kind of row is added, edited or deleted with plain SQL as the database's
owner, and verify names it, by clause, round, version, opinion or participant id, never by a
name, a contact or a comment.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import text

from consultflow.domain.plan import parse_markdown
from consultflow.services import consultations, opinions, participation, people, plans, receipts, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.services.plans import RatingIn
from tests.conftest import engine_of
from tests.helpers import COORD, EXPERT, PLANNER, seed, submit

DRAFT = "# 草案\n\n## 一、交通\n\n1. 环线公路\n2. 通组道路硬化\n\n## 二、产业\n\n1. 生猪种业园区\n"
DRAFT_2 = (
    "# 送审稿\n\n## 一、交通\n\n1. 环线公路，宽6米\n2. 通组道路硬化\n3. 停车场\n\n## 二、产业\n\n1. 生猪种业园区\n"
)
COMMENT = "路太窄，会车困难"
FULL_NAME, CONTACT, OTHER_NAME = "张秀英", "13812345678", "李建国"


@dataclass(frozen=True)
class Honest:
    """What the use cases made: the consultation, the other one, both participants, and a planner-linked opinion."""

    consultation_id: int
    other_id: int
    first: int  # in both consultations, her group changed after her opinions (an event in each chain)
    second: int  # registered with a group (no event says it)
    linked_opinion: int


def _honest(ctx: ServiceContext) -> Honest:
    setup = seed(ctx)
    cid, first = setup.consultation_id, setup.participant_id
    second = people.add_participant(ctx, acting=EXPERT, name=OTHER_NAME, village="青龙村", group="residents").id
    oid = submit(ctx, setup)
    opinions.submit_opinion(
        ctx,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=second,
        category="environment_roads",
        channel="villagers_assembly",
        text="建议修停车场",
    )
    other = consultations.create_consultation(ctx, acting=COORD, title="另一片区", area="金田片区").id
    rounds.open_round(ctx, acting=COORD, consultation_id=other)
    submit(ctx, type(setup)(other, first))
    groups = participation.groups_of(ctx, cid)
    participation.set_participant_group(ctx, acting=COORD, participant_id=first, group="officials", groups=groups)
    participation.set_participant_group(ctx, acting=COORD, participant_id=first, group=None, groups=groups)
    participation.set_participant_group(ctx, acting=COORD, participant_id=first, group="companies", groups=groups)
    plans.import_plan(ctx, acting=PLANNER, consultation_id=cid, clauses=parse_markdown(DRAFT), label="草案")
    plans.link_clauses(ctx, acting=PLANNER, opinion_id=oid, clauses=["1.2"])
    plans.import_plan(ctx, acting=PLANNER, consultation_id=cid, clauses=parse_markdown(DRAFT_2), source="v2.md")
    plans.link_clauses(ctx, acting=PLANNER, opinion_id=oid, clauses=["1.2", "1.3", "2.1"])
    rounds.close_round(ctx, acting=COORD, consultation_id=cid)
    plans.open_review(ctx, acting=COORD, consultation_id=cid)
    plans.record_ratings(
        ctx,
        acting=EXPERT,
        consultation_id=cid,
        participant_id=first,
        ratings=(RatingIn("1.1", "满意"), RatingIn("1.2", "不满意", COMMENT), RatingIn("2.1", "基本满意")),
    )
    plans.record_ratings(
        ctx, acting=EXPERT, consultation_id=cid, participant_id=second, ratings=(RatingIn("1.1", "不满意"),)
    )
    return Honest(cid, other, first, second, oid)


def _owner(ctx: ServiceContext, *statements: str, **params: object) -> None:
    with engine_of(ctx).begin() as conn:
        for statement in statements:
            assert conn.execute(text(statement), params).rowcount >= 1, statement


def _problem(ctx: ServiceContext, consultation_id: int) -> str:
    report = verify.verify_chain(ctx, consultation_id)
    assert not report.intact and report.broken is not None
    problem = report.broken.problem
    for personal in (FULL_NAME, CONTACT, OTHER_NAME, COMMENT):  # the subject is named, never the person or words
        assert personal not in problem, problem
    return problem


def test_an_honest_review_with_drafts_links_ratings_and_group_changes_verifies_intact(ctx: ServiceContext) -> None:
    """An auditor relies on verify saying "intact" for what the use cases wrote: two drafts, links, a review, ratings
    with a comment, and group changes recorded in two consultations' chains (no false alarm to explain away).
    """
    honest = _honest(ctx)
    for cid in (honest.consultation_id, honest.other_id):
        report = verify.verify_chain(ctx, cid)
        assert report.intact, report.broken


RATING = "(SELECT min(id) FROM plan_rating WHERE participant_id = :first AND rating = 'not_satisfied')"
TAMPERING = [
    pytest.param(
        [
            (
                "INSERT INTO plan_rating (round_id, clause_id, participant_id, rating, recorded_by_id, at) "
                "SELECT round_id, (SELECT id FROM plan_clause WHERE number = '1.3'), :second, 'satisfied', "
                "recorded_by_id, at FROM plan_rating WHERE participant_id = :second"
            )
        ],
        "review round 2, clause 1.3: the live ratings count 1 but the clause_rated events record 0: "
        "participant {second}'s rating was added without an event",
        id="ballot-stuffed",
    ),
    pytest.param(
        [f"UPDATE plan_rating SET rating = 'satisfied' WHERE id = {RATING}"],
        "review round 2, clause 1.2: participant {first}'s rating is 'satisfied' live but clause_rated event",
        id="rating-turned",
    ),
    pytest.param(
        ["DELETE FROM plan_rating WHERE participant_id = :second"],
        "review round 2, clause 1.1: the live ratings count 1 but the clause_rated events record 2: "
        "participant {second}'s rating (clause_rated event",
        id="rating-deleted",
    ),
    pytest.param(
        [f"UPDATE plan_rating SET comment = NULL, opinion_id = NULL WHERE id = {RATING}"],
        "the comment of participant {first}'s rating is not the one clause_rated event",
        id="comment-dropped",
    ),
    pytest.param(
        [
            (
                "INSERT INTO opinion_clause (opinion_id, clause_id, linked_at, linked_by_id) "
                "SELECT :oid, id, '2026-03-01 00:00:00', 1 FROM plan_clause WHERE number = '1.1'"
            )
        ],
        "opinion {oid}: the live links name clause 1.1, which no clauses_linked or clause_rated event records",
        id="link-added",
    ),
    pytest.param(
        [
            (
                "DELETE FROM opinion_clause WHERE opinion_id = :oid "
                "AND clause_id = (SELECT id FROM plan_clause WHERE number = '2.1')"
            )
        ],
        "opinion {oid}: event #",
        id="link-deleted",
    ),
    pytest.param(
        [
            (
                "INSERT INTO plan_version (consultation_id, number, label, clauses, imported_at, imported_by_id) "
                "VALUES (:cid, 3, '第三稿', 0, '2026-03-01 00:00:00', 1)"
            )
        ],
        "plan version 3: the live tables have it but no plan_imported event records it",
        id="version-added",
    ),
    pytest.param(
        [
            "DELETE FROM plan_clause_text WHERE version_id = (SELECT id FROM plan_version WHERE number = 1)",
            "DELETE FROM plan_version WHERE number = 1",
        ],
        "records plan version 1, which the live tables no longer have",
        id="version-deleted",
    ),
    pytest.param(
        ["UPDATE plan_clause_text SET text = '改写过的条文' WHERE position = 1"],
        "plan version 1: its live clauses (3) are not the ones plan_imported event",
        id="clause-text-rewritten",
    ),
    pytest.param(
        [
            (
                "INSERT INTO plan_clause_text (version_id, clause_id, position, section_no, section_title, text) "
                "SELECT (SELECT id FROM plan_version WHERE number = 1), id, 9, '一', '交通', '加的' "
                "FROM plan_clause WHERE number = '1.3'"
            )
        ],
        "plan version 1: its live clauses (4) are not the ones",
        id="clause-text-added",
    ),
    pytest.param(
        ["UPDATE plan_version SET label = '送审稿' WHERE number = 1"],
        "plan version 1: its live label is '送审稿' but plan_imported event",
        id="version-relabelled",
    ),
    pytest.param(
        ["INSERT INTO plan_clause (consultation_id, number) VALUES (:cid, '9.9')"],
        "the live plan has clause 9.9, which no imported version has",
        id="clause-added",
    ),
    pytest.param(
        ["UPDATE plan_review SET category = 'forged'"],
        "review round 2: its live category is 'forged' but review_opened event",
        id="review-recategorised",
    ),
    pytest.param(
        ["UPDATE plan_review SET version_id = (SELECT id FROM plan_version WHERE number = 1)"],
        "review round 2: its live plan version is 1 but review_opened event",
        id="review-moved-to-another-version",
    ),
    pytest.param(
        ["DELETE FROM plan_rating", "DELETE FROM plan_review"],
        "opens round 2 as a review, which the live tables no longer have",
        id="review-deleted",
    ),
    pytest.param(
        ["UPDATE participant SET group_id = 'residents' WHERE id = :first"],
        "participant {first}: the live group is 'residents' but the last group event",
        id="group-changed",
    ),
    pytest.param(
        ["UPDATE participant SET group_id = NULL WHERE id = :first"],
        "participant {first}: the live group is None but the last group event",
        id="group-cleared",
    ),
]


@pytest.mark.parametrize(("statements", "named"), TAMPERING)
def test_each_plan_review_link_and_group_row_changed_behind_the_events_is_named(
    ctx: ServiceContext, statements: list[str], named: str
) -> None:
    """An auditor relies on verify naming any draft version, clause text, review, rating, comment, clause link or
    group added, edited or deleted with plain SQL (the owner's here; the server's login may add some), by its
    subject: what the results and the figures by group count is what the events record.
    """
    honest = _honest(ctx)
    ids = {"cid": honest.consultation_id, "first": honest.first, "second": honest.second, "oid": honest.linked_opinion}
    _owner(ctx, *statements, **{k: v for k, v in ids.items() if any(f":{k}" in s for s in statements)})
    assert named.format(**ids) in _problem(ctx, honest.consultation_id)


def test_a_later_group_change_over_a_silent_edit_is_named_in_every_consultation(ctx: ServiceContext) -> None:
    """An auditor relies on a group edited without an event staying visible after a coordinator's next change:
    that change's event names the group it found, which is not what the events before it left.
    """
    honest = _honest(ctx)
    _owner(ctx, "UPDATE participant SET group_id = 'officials' WHERE id = :first", first=honest.first)
    groups = participation.groups_of(ctx, honest.consultation_id)
    participation.set_participant_group(
        ctx, acting=COORD, participant_id=honest.first, group="residents", groups=groups
    )
    for cid in (honest.consultation_id, honest.other_id):
        assert "found 'officials', but the events before it leave 'companies'" in _problem(ctx, cid)


def test_a_group_no_event_ever_named_is_not_checked(ctx: ServiceContext) -> None:
    """An auditor relies on the docs' word: a group given at registration is in no chain, so verify cannot check it
    (and says intact); only groups changed after a participant's first opinion are.
    """
    honest = _honest(ctx)
    _owner(ctx, "UPDATE participant SET group_id = 'companies' WHERE id = :second", second=honest.second)
    assert verify.verify_chain(ctx, honest.consultation_id).intact


def test_a_group_the_portal_gives_in_one_consultation_holds_in_the_others_chains(ctx: ServiceContext) -> None:
    """An auditor relies on no false alarm when a villager's group is given on the portal of one consultation (its
    event is in that chain only) after it was cleared in all of hers: each chain is checked against the latest
    group event in any chain, and an edit after it is named in every consultation she took part in.
    """
    honest = _honest(ctx)
    groups = participation.groups_of(ctx, honest.consultation_id)
    participation.set_participant_group(ctx, acting=COORD, participant_id=honest.first, group=None, groups=groups)
    rounds.close_round(ctx, acting=COORD, consultation_id=honest.consultation_id)  # the review
    rounds.open_round(ctx, acting=COORD, consultation_id=honest.consultation_id)
    form = receipts.OnlineOpinion(
        consultation_id=honest.consultation_id,
        category="industry",
        text="建议在村口建设农产品冷链仓储点",
        village="青龙村",
        name=FULL_NAME,
        contact=CONTACT,
        contact_consent=True,
        group="respected_villagers",
    )
    assert receipts.submit_online(ctx, form).opinion.participant_id == honest.first  # she came back
    for cid in (honest.consultation_id, honest.other_id):
        assert verify.verify_chain(ctx, cid).intact, cid
    _owner(ctx, "UPDATE participant SET group_id = 'officials' WHERE id = :first", first=honest.first)
    for cid in (honest.consultation_id, honest.other_id):
        assert "the live group is 'officials' but the last group event" in _problem(ctx, cid)
