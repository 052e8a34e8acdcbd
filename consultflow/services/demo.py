"""The demo: a consultation shaped like the county pilot, run through the real use cases.

About 800 opinions in the pilot's theme shares (57% / 28.3% / 14.7%) go through three rounds
and end with 203 adopted. Every step calls the same services the CLI calls, on a simulated
clock that starts in March 2023, so histories read like a real consultation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import ValidationError
from consultflow.domain.vocabulary import Field, Stance
from consultflow.services import consultations, demo_plan, opinion_views, opinions, people, rounds, themes
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import FireRequest, NewOpinion
from consultflow.services.participation import groups_of, set_groups
from consultflow.services.programmes import add_area, create_programme

COORDINATOR = "李协调"
PLANNERS = ("王规划", "张规划")
EXPERTS = ("赵土专家", "钱土专家")
AUDITOR = "孙审计"

THEMES = (("industry", 0.57), ("public_services", 0.283), ("environment_roads", 0.147))
CHANNELS = (
    ("villagers_assembly", 0.30),
    ("open_air_meeting", 0.25),
    ("lecture_hall", 0.10),
    ("online_survey", 0.20),
    ("feedback_point", 0.15),
)
VILLAGES = (
    "青龙村",
    "白鹤村",
    "石桥村",
    "柳树湾村",
    "金田村",
    "油菜坝村",
    "高峰村",
    "河口村",
)
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何罗高林"
GIVEN = (
    "建国",
    "秀英",
    "志强",
    "桂兰",
    "德明",
    "玉梅",
    "海军",
    "春花",
    "永福",
    "淑芬",
    "国华",
    "小红",
)
ASKS = {
    "industry": (
        "建议扩大生猪种业园区配套用地",
        "希望油菜制种基地延伸加工产业链",
        "建议发展乡村旅游和研学基地",
        "希望支持大健康食品加工企业落地",
    ),
    "public_services": (
        "建议村里增设卫生室",
        "希望改善幼儿园和小学条件",
        "建议建设老年活动中心",
        "希望增加便民服务点",
    ),
    "environment_roads": (
        "建议硬化通组道路",
        "希望整治生活污水排放",
        "建议增设垃圾收集点",
        "希望修缮村道桥梁",
    ),
}
PLAN_SECTIONS = {
    "industry": ("v2 §3.2 产业布局", "v2 §3.4 三产融合项目"),
    "public_services": ("v2 §4.1 公共服务设施", "v2 §4.3 养老与教育"),
    "environment_roads": ("v2 §5.2 人居环境整治", "v2 §5.3 农村路网"),
}
ADOPTED = 203
PARTLY_SHARE, WITHDRAWN_SHARE, MERGED_SHARE = 0.18, 0.02, 0.045
ROUNDS_MIX = {
    "adopted": (0.3, 0.45, 0.25),
    "partly_adopted": (0.25, 0.45, 0.3),
    "rejected": (0.5, 0.35, 0.15),
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: where to look next."""

    consultation_id: int
    opinions: int
    participants: int
    rounds: int
    programme_id: int | None = None  # the county programme its area is in, with a second, small area
    second_area: int | None = None


@dataclass
class _Fate:
    """The outcome an opinion is steered to, and in how many rounds."""

    opinion_id: int
    category: str
    outcome: str
    rounds: int


def split(total: int, shares: Sequence[float]) -> list[int]:
    """`total` divided by `shares` with largest remainders, so the parts add up exactly."""
    raw = [total * s / sum(shares) for s in shares]
    parts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts


def run_demo(ctx: ServiceContext, *, total: int = 809, seed: int = 2023) -> DemoResult:
    """Run the pilot-shaped consultation through three rounds."""
    if total < 300:
        msg = "the demo needs at least 300 opinions to reach the pilot's 203 adopted"
        raise ValidationError(msg)
    rng = random.Random(seed)
    clock = FixedClock(datetime(2023, 3, 1, 1, 0, tzinfo=timezone.utc), tick=timedelta(seconds=7))
    sim = replace(ctx, clock=clock)
    _register_people(sim)
    villagers = [
        people.add_participant(
            sim,
            acting=rng.choice(EXPERTS),
            name=rng.choice(SURNAMES) + rng.choice(GIVEN),
            village=rng.choice(VILLAGES),
        ).id
        for _ in range(total // 3)
    ]
    consultation = consultations.create_consultation(
        sim,
        acting=COORDINATOR,
        title="三产融合片区国土空间规划意见征集",
        area="三产融合试点片区",
    )
    cid = consultation.id
    demo_plan.import_draft(sim, cid)  # the draft plan the last round reviews
    _give_groups(sim, random.Random(seed + 17), villagers)
    fates, took_part = _submit_round_one(sim, rng, cid, total, villagers)
    for round_no in (1, 2, 3):
        if round_no > 1:
            rounds.open_round(
                sim,
                acting=COORDINATOR,
                consultation_id=cid,
                closes_at=clock.now() + timedelta(days=21),
            )
        _play_round(sim, rng, cid, round_no, fates)
        clock.advance(timedelta(days=20))
        rounds.close_round(sim, acting=COORDINATOR, consultation_id=cid)
        clock.advance(timedelta(days=10))
    demo_plan.review_draft(sim, clock, random.Random(seed + 19), cid, villagers)  # 成果评审, then version 2
    _code_themes(sim, cid)
    programme, second = _programme_of_two_areas(sim, clock, random.Random(seed + 26), cid)
    # those who gave an opinion, not everyone registered
    return DemoResult(cid, total, took_part, 3, programme, second)


# How a planner codes the demo's opinions with themes (主题): (category, keyword in the text, theme),
# each applied with `opinion theme add --matching`, so the brief names the pilot's adopted themes.
DEMO_THEMES = (
    ("industry", "种业园区", "特色农业"),
    ("industry", "种业园区", "完善产业联农带农机制"),
    ("industry", "制种基地", "特色农业"),
    ("industry", "加工产业链", "完善产业联农带农机制"),
    ("industry", "加工企业", "完善产业联农带农机制"),
    ("industry", "乡村旅游", "乡村旅游"),
    ("public_services", "便民服务点", "加强交通设施配套"),
    ("public_services", "老年活动中心", "加强交通设施配套"),
    ("public_services", "幼儿园和小学", "学校"),
    ("public_services", "卫生室", "卫生院"),
    ("environment_roads", "污水", "加强环境整治"),
    ("environment_roads", "垃圾", "加强环境整治"),
    ("environment_roads", "垃圾", "垃圾处理"),
    ("environment_roads", "硬化", "加强环境整治"),
    ("environment_roads", "道路", "农村路网"),
    ("environment_roads", "桥梁", "农村路网"),
)


def _code_themes(ctx: ServiceContext, cid: int) -> None:
    """A planner codes every opinion with the themes its text is about (DEMO_THEMES)."""
    for category, keyword, theme in DEMO_THEMES:
        themes.code(
            ctx, acting=PLANNERS[0], theme=theme, add=True, matching=keyword, consultation_id=cid, category=category
        )


# Who the demo's villagers are (参与群体), in shares like a county's consultations: mostly residents.
GROUP_SHARES = (
    ("officials", 0.06),
    ("companies", 0.08),
    ("business_leaders", 0.10),
    ("respected_villagers", 0.12),
    ("residents", 0.64),
)


def _give_groups(ctx: ServiceContext, rng: random.Random, villagers: Sequence[int]) -> None:
    """Each villager's group, in GROUP_SHARES (its own random stream: the rest of the demo is unchanged)."""
    kinds = [g for (g, _), n in zip(GROUP_SHARES, split(len(villagers), [s for _, s in GROUP_SHARES]), strict=True)
             for _ in range(n)]  # fmt: skip
    rng.shuffle(kinds)
    groups = groups_of(ctx)  # the default workflow's (the five kinds)
    set_groups(ctx, acting=EXPERTS[0], assignments=dict(zip(villagers, kinds, strict=True)), groups=groups)


SECOND_AREA = "乡村振兴第二片区"


def _programme_of_two_areas(ctx: ServiceContext, clock: FixedClock, rng: random.Random, cid: int) -> tuple[int, int]:
    """The county programme: the pilot area, and a second, small area started from its setup.

    The second area's one round: 30 opinions from 12 villagers (most give two or three), screened
    and answered; most answer the feedback, and a few are decided.
    """
    programme = create_programme(ctx, acting=COORDINATOR, name="县域片区规划", title="某县片区国土空间规划意见征集")
    add_area(ctx, acting=COORDINATOR, programme=programme.name, consultation_id=cid)
    second = consultations.create_consultation(
        ctx, acting=COORDINATOR, title="乡村振兴第二片区规划意见征集", area=SECOND_AREA, copy_from=cid
    ).id
    villagers = [
        people.add_participant(
            ctx, acting=EXPERTS[1], name=rng.choice(SURNAMES) + rng.choice(GIVEN), village=rng.choice(VILLAGES[4:])
        ).id
        for _ in range(12)
    ]
    kinds = ["officials", "companies", "business_leaders", "respected_villagers"] + ["residents"] * 8
    set_groups(
        ctx, acting=EXPERTS[1], assignments=dict(zip(villagers, kinds, strict=True)), groups=groups_of(ctx, second)
    )
    rounds.open_round(ctx, acting=COORDINATOR, consultation_id=second, closes_at=ctx.clock.now() + timedelta(days=21))
    themes = [t for t, _ in THEMES]
    items = [
        NewOpinion(
            villagers[i % len(villagers)], themes[i % 3], CHANNELS[i % len(CHANNELS)][0], ASKS[themes[i % 3]][i % 4]
        )
        for i in range(30)
    ]
    made = opinions.submit_many(ctx, acting=EXPERTS[1], consultation_id=second, items=items)
    ids = [v.id for v in made]
    opinions.fire_many(ctx, acting=EXPERTS[1], requests=[FireRequest(i, "screen", {}) for i in ids])
    opinions.assign(ctx, acting=COORDINATOR, opinion_ids=ids, planner=PLANNERS[1])
    decided, answered = ids[:6], ids[6:]
    requests = [
        FireRequest(
            i, "adopt", {Field.TEXT: "意见合理可行，已纳入规划", Field.PLAN_REF: rng.choice(PLAN_SECTIONS["industry"])}
        )
        for i in decided
    ] + [FireRequest(i, "give_feedback", {Field.TEXT: _feedback(rng, 1)}) for i in answered]
    opinions.fire_many(ctx, acting=PLANNERS[1], requests=requests)
    replies = [
        FireRequest(i, "reparticipate", {Field.STANCE: Stance.AGREE.value, Field.TEXT: _reply(Stance.AGREE)})
        for i in answered[:16]
    ]
    opinions.fire_many(ctx, acting=EXPERTS[1], requests=replies)
    clock.advance(timedelta(days=20))
    rounds.close_round(ctx, acting=COORDINATOR, consultation_id=second)
    return programme.id, second


def _register_people(ctx: ServiceContext) -> None:
    existing = {a.name for a in people.list_actors(ctx)}
    if existing and COORDINATOR not in existing:
        msg = "the demo needs an empty database (or one the demo made); pass --db with a new file"
        raise ValidationError(msg)
    roster = [(COORDINATOR, "coordinator")] + [(p, "planner") for p in PLANNERS] + [(e, "expert") for e in EXPERTS]
    for name, role in [*roster, (AUDITOR, "auditor")]:
        if name not in existing:
            people.add_actor(
                ctx,
                acting=COORDINATOR if existing or name != COORDINATOR else None,
                name=name,
                roles=[role],
            )
            existing.add(name)


def _submit_round_one(
    ctx: ServiceContext, rng: random.Random, cid: int, total: int, villagers: list[int]
) -> tuple[dict[int, _Fate], int]:
    """Round one's intake; returns each opinion's fate and how many villagers took part."""
    rounds.open_round(
        ctx,
        acting=COORDINATOR,
        consultation_id=cid,
        closes_at=ctx.clock.now() + timedelta(days=21),
    )
    categories = [c for (c, _), n in zip(THEMES, split(total, [s for _, s in THEMES]), strict=True) for _ in range(n)]
    channels = [c for (c, _), n in zip(CHANNELS, split(total, [s for _, s in CHANNELS]), strict=True) for _ in range(n)]
    rng.shuffle(categories)
    rng.shuffle(channels)
    items = [
        NewOpinion(
            rng.choice(villagers),
            cat,
            ch,
            f"{rng.choice(ASKS[cat])}（{rng.choice(VILLAGES)}）",
        )
        for cat, ch in zip(categories, channels, strict=True)
    ]
    submitted = []
    for i, expert in enumerate(EXPERTS):
        submitted += opinions.submit_many(ctx, acting=expert, consultation_id=cid, items=items[i :: len(EXPERTS)])
    partly = round(total * PARTLY_SHARE)
    withdrawn = round(total * WITHDRAWN_SHARE)
    merged = round(total * MERGED_SHARE)
    outcomes = (
        ["adopted"] * ADOPTED
        + ["partly_adopted"] * partly
        + ["withdrawn"] * withdrawn
        + ["merged"] * merged
        + ["rejected"] * (total - ADOPTED - partly - withdrawn - merged)
    )
    rng.shuffle(outcomes)
    fates = {}
    for view, outcome in zip(submitted, outcomes, strict=True):
        mix = ROUNDS_MIX.get(outcome, (1.0, 0.0, 0.0))
        fates[view.id] = _Fate(view.id, view.category, outcome, rng.choices((1, 2, 3), weights=mix)[0])
    return fates, len({view.participant_id for view in submitted})


def _play_round(
    ctx: ServiceContext,
    rng: random.Random,
    cid: int,
    round_no: int,
    fates: dict[int, _Fate],
) -> None:
    """One round: screening, assignment, feedback or decisions, then the participants' replies."""
    waiting = {v.id: v for v in opinion_views.list_opinions(ctx, consultation_id=cid) if v.outcome is None}
    to_screen = [i for i, v in waiting.items() if v.state == "submitted"]
    if to_screen:
        for expert in EXPERTS:  # each local expert screens the opinions they recorded
            mine = [i for i in to_screen if waiting[i].recorded_by == expert]
            if mine:
                opinions.fire_many(ctx, acting=expert, requests=[FireRequest(i, "screen", {}) for i in mine])
        for n, planner in enumerate(PLANNERS):
            opinions.assign(
                ctx,
                acting=COORDINATOR,
                opinion_ids=to_screen[n :: len(PLANNERS)],
                planner=planner,
            )
        waiting = {v.id: v for v in opinion_views.list_opinions(ctx, consultation_id=cid) if v.outcome is None}
    review = [i for i, v in waiting.items() if v.state in ("submitted", "under_review")]
    merge_targets = {
        cat: [f.opinion_id for f in fates.values() if f.category == cat and f.outcome == "adopted"]
        for cat in PLAN_SECTIONS
    }
    by_planner: dict[str, list[FireRequest]] = {p: [] for p in (*PLANNERS, COORDINATOR)}
    for opinion_id in review:
        fate = fates[opinion_id]
        planner = waiting[opinion_id].assigned_to or COORDINATOR
        if fate.outcome == "merged":
            target = rng.choice(merge_targets[fate.category])
            by_planner[planner].append(
                FireRequest(
                    opinion_id,
                    "merge",
                    {Field.MERGE_TARGET: target, Field.TEXT: "与同类意见合并办理"},
                )
            )
        elif fate.outcome == "withdrawn" or fate.rounds > round_no:
            by_planner[planner].append(FireRequest(opinion_id, "give_feedback", {Field.TEXT: _feedback(rng, round_no)}))
        else:
            by_planner[planner].append(_decision(rng, fate))
    for planner, requests in by_planner.items():
        if requests:
            opinions.fire_many(ctx, acting=planner, requests=requests)
    replies = []
    for opinion_id in review:
        fate = fates[opinion_id]
        if fate.outcome == "withdrawn":
            replies.append(FireRequest(opinion_id, "withdraw", {Field.REASON: "问题已由村里自行解决"}))
        elif fate.rounds > round_no and fate.outcome != "merged" and rng.random() < 0.75:
            stance = rng.choice([Stance.OBJECT, Stance.REVISE, Stance.AGREE])
            replies.append(
                FireRequest(
                    opinion_id,
                    "reparticipate",
                    {Field.STANCE: stance.value, Field.TEXT: _reply(stance)},
                )
            )
    for expert in EXPERTS:  # the expert who recorded an opinion brings back its participant's reply
        theirs = [r for r in replies if waiting[r.opinion_id].recorded_by == expert]
        if theirs:
            opinions.fire_many(ctx, acting=expert, requests=theirs)


def _decision(rng: random.Random, fate: _Fate) -> FireRequest:
    section = rng.choice(PLAN_SECTIONS[fate.category])
    if fate.outcome == "adopted":
        return FireRequest(
            fate.opinion_id,
            "adopt",
            {Field.TEXT: "意见合理可行，已纳入规划", Field.PLAN_REF: section},
        )
    if fate.outcome == "partly_adopted":
        return FireRequest(
            fate.opinion_id,
            "partly_adopt",
            {
                Field.TEXT: "部分内容已纳入规划，其余在实施中统筹",
                Field.PLAN_REF: section,
            },
        )
    reason = rng.choice(
        [
            "与上位规划管控要求冲突",
            "涉及永久基本农田，无法调整",
            "超出本片区规划范围，已转交相关部门",
        ]
    )
    return FireRequest(
        fate.opinion_id,
        "reject",
        {Field.REASON: reason, Field.TEXT: "经研究暂不采纳，已作解释说明"},
    )


def _feedback(rng: random.Random, round_no: int) -> str:
    return (
        rng.choice(
            [
                "已收到，规划团队正在研究用地条件",
                "初步方案已调整，请确认是否符合诉求",
                "需进一步核实现状，请补充具体位置",
            ]
        )
        + f"（第{round_no}轮）"
    )


def _reply(stance: Stance) -> str:
    return {
        Stance.AGREE: "同意调整方案",
        Stance.OBJECT: "调整后仍不能满足需求",
        Stance.REVISE: "补充：希望同时考虑排水",
    }[stance]
