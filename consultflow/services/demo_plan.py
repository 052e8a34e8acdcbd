"""The demo's draft plan and its public review (成果评审 / 大众点评), through the real use cases.

The planning team imports the draft (征求意见稿) before the first round. After the three rounds, a
planner links adopted opinions to the clauses they changed, the coordinator opens a final review
round, local experts record villagers' ratings at an assembly (three of them comment, and each
comment is an opinion, merged into the adopted opinion that asked the same), and the team imports
the second version (送审稿) with those clauses changed: `plan diff` shows which opinions changed
which clause.

The three comments are two about industry and one about public services, so the pilot's category
split (57% / 28.3% / 14.7%) still reads the same to one decimal; adopted stays 203.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from consultflow.domain.clock import FixedClock
from consultflow.domain.plan import parse_markdown
from consultflow.domain.vocabulary import Field
from consultflow.services import opinion_views, opinions, plans, rounds
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import FireRequest
from consultflow.services.plans import RatingIn

COORDINATOR = "李协调"
PLANNER = "王规划"
EXPERTS = ("赵土专家", "钱土专家")

DRAFT = """# 三产融合片区国土空间规划（征求意见稿）

## 一、交通设施

1. 新建片区环线公路，连接青龙村、白鹤村和石桥村，路面宽度6米。
2. 各村通组道路全部硬化，宽度不小于3.5米。
3. 在镇区设置客运招呼站两处。

## 二、产业联农带农

1. 在金田村布局生猪种业园区，用地约200亩。
2. 建设油菜制种基地，配套烘干和仓储设施。
3. 推行“企业+合作社+农户”利益联结机制。

## 三、公共服务

1. 在片区中心村设置卫生室一处。
2. 改扩建片区小学和幼儿园各一所。
3. 在柳树湾村建设老年活动中心。

## 四、环境整治

1. 开展农村生活污水治理，覆盖率达到60%。
2. 每村设置垃圾收集点一处。
3. 修缮河口村村道桥梁两座。
"""

# What the second version says where opinions asked for a change (clause number: new text).
SECOND = {
    "1.2": "各村通组道路全部硬化，宽度不小于4米，并在错车处加宽。",
    "2.1": "在金田村布局生猪种业园区，用地约200亩，优先吸纳本村劳动力就业。",
    "2.2": "建设油菜制种基地，配套烘干、仓储和初加工设施，延伸加工产业链。",
    "3.3": "在柳树湾村和高峰村各建设老年活动中心一处。",
    "4.1": "开展农村生活污水治理，覆盖率达到80%。",
    "4.2": "每村设置垃圾分类收集点不少于两处。",
}
# The demo's plan references (services.demo.PLAN_SECTIONS) and the clauses their opinions asked to change.
REF_CLAUSES = {
    "v2 §3.2 产业布局": "2.1",
    "v2 §3.4 三产融合项目": "2.2",
    "v2 §4.3 养老与教育": "3.3",
    "v2 §5.2 人居环境整治": "4.2",
    "v2 §5.3 农村路网": "1.2",
}
LINKS_PER_REF = 4
RATERS = 40
# (clause, category, comment): the three villagers who comment in the review.
COMMENTS = (
    ("2.1", "industry", "种业园区要优先招本村人务工"),
    ("2.2", "industry", "制种基地要配套加工，让油菜卖得上价"),
    ("3.3", "public_services", "高峰村老人多，也需要老年活动中心"),
)
WEIGHTS = (("satisfied", 0.55), ("mostly", 0.3), ("not_satisfied", 0.15))


def import_draft(ctx: ServiceContext, consultation_id: int) -> None:
    """The planning team imports the first draft, before the first round."""
    plans.import_plan(
        ctx,
        acting=PLANNER,
        consultation_id=consultation_id,
        clauses=parse_markdown(DRAFT),
        label="征求意见稿",
        source="三产融合片区规划-征求意见稿.md",
    )


def review_draft(
    ctx: ServiceContext, clock: FixedClock, rng: random.Random, consultation_id: int, villagers: Sequence[int]
) -> None:
    """Link adopted opinions to clauses, run the review round, answer its comments, import version 2."""
    decided = opinion_views.list_opinions(ctx, consultation_id=consultation_id, state="adopted")
    linked: dict[str, int] = {}
    for view in decided:
        clause = REF_CLAUSES.get(view.plan_ref or "")
        if clause is not None and linked.get(clause, 0) < LINKS_PER_REF:
            plans.link_clauses(ctx, acting=PLANNER, opinion_id=view.id, clauses=[clause])
            linked[clause] = linked.get(clause, 0) + 1
    targets = {c: next(v.id for v in decided if REF_CLAUSES.get(v.plan_ref or "") == c) for c, _cat, _t in COMMENTS}
    review = plans.open_review(
        ctx, acting=COORDINATOR, consultation_id=consultation_id, closes_at=ctx.clock.now() + timedelta(days=14)
    )
    numbers = [c.number for c in plans.show_plan(ctx, consultation_id, review.version).clauses]
    said = {c: (cat, text) for c, cat, text in COMMENTS}
    raters = rng.sample(list(villagers), min(RATERS, len(villagers)))
    comment_opinions: list[tuple[int, str]] = []
    for i, participant in enumerate(raters):
        chosen = sorted(rng.sample(numbers, rng.randint(3, 6)))
        if i < len(COMMENTS):
            chosen = sorted({*chosen, COMMENTS[i][0]})
        ratings = []
        for number in chosen:
            rating = rng.choices([k for k, _w in WEIGHTS], [w for _k, w in WEIGHTS])[0]
            comment = said[number][1] if i < len(COMMENTS) and number == COMMENTS[i][0] else None
            category = said[number][0] if comment else None
            ratings.append(RatingIn(number, "not_satisfied" if comment else rating, comment, category))
        done = plans.record_ratings(
            ctx,
            acting=EXPERTS[i % len(EXPERTS)],
            consultation_id=consultation_id,
            participant_id=participant,
            ratings=tuple(ratings),
        )
        comment_opinions += [(r.opinion_id, r.clause) for r in done.ratings if r.opinion_id is not None]
    clock.advance(timedelta(days=10))
    opinions.fire_many(
        ctx,
        acting=COORDINATOR,
        requests=[
            FireRequest(oid, "merge", {Field.MERGE_TARGET: targets[clause], Field.TEXT: "与已采纳的同类意见合并办理"})
            for oid, clause in comment_opinions
        ],
    )
    rounds.close_round(ctx, acting=COORDINATOR, consultation_id=consultation_id)
    clock.advance(timedelta(days=5))
    second = [
        c if c.number not in SECOND else type(c)(c.number, c.section_no, c.section_title, SECOND[c.number])
        for c in parse_markdown(DRAFT)
    ]
    plans.import_plan(
        ctx,
        acting=PLANNER,
        consultation_id=consultation_id,
        clauses=second,
        label="送审稿",
        source="三产融合片区规划-送审稿.md",
    )
