"""`consultflow plan` and `consultflow review`: the draft plan in versions, and its review by the public.

Output is in Chinese unless `--lang en`.
"""

from __future__ import annotations

from pathlib import Path

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, shorten, table
from consultflow.domain.plan import RATINGS
from consultflow.importing.plan_files import read_plan
from consultflow.services.commands.core import OfOpinion
from consultflow.services.commands.plans import DiffPlan, ImportPlan, LinkClauses, OpenReview, RecordRatings, ShowPlan
from consultflow.services.inputs import parse_time
from consultflow.services.plans import OpinionClauses, RatingIn

_WORDS: dict[str, tuple[str, str]] = {
    "imported": (
        "咨询 {c} 的规划草案第 {v} 版已导入：{n} 条条款，{s} 个章节{src}",
        "plan version {v} of consultation {c} imported: {n} clause(s) in {s} section(s){src}",
    ),
    "from": ("（来自 {f}）", " (from {f})"),
    "version": (
        "咨询 {c} 规划草案第 {v} 版{label}，{n} 条条款，导入于 {at}（{by}）",
        "consultation {c}, plan version {v}{label}: {n} clause(s), imported {at} by {by}",
    ),
    "versions": ("各版本：{vs}", "versions: {vs}"),
    "reviewed": ("评审轮次：{rs}", "review rounds: {rs}"),
    "round_of": ("第 {r} 轮（第 {v} 版，{status}）", "round {r} (version {v}, {status})"),
    "open": ("进行中", "open"),
    "closed": ("已结束", "closed"),
    "diff_head": (
        "咨询 {c} 规划草案 第 {a} 版 → 第 {b} 版：新增 {added}，删除 {removed}，修改 {changed}",
        "consultation {c}, plan version {a} -> {b}: {added} added, {removed} removed, {changed} changed",
    ),
    "added": ("新增", "added"),
    "removed": ("删除", "removed"),
    "changed": ("修改", "changed"),
    "before": ("原文", "before"),
    "after": ("现文", "after"),
    "asked": ("其间采纳的相关意见", "opinions adopted in between"),
    "no_change": ("两版之间没有变化", "no clause differs between the two versions"),
    "linked": ("意见 {o} 关联的规划条款：{cs}", "opinion {o} is linked to plan clause(s): {cs}"),
    "none": ("无", "none"),
    "review_open": (
        "咨询 {c} 第 {r} 轮已开启，为规划草案第 {v} 版的成果评审（{n} 条条款；意见归入类别 {cat}）{until}",
        "round {r} of consultation {c} is open: a review of plan version {v} ({n} clause(s); comments filed under {cat}){until}",
    ),
    "until": ("，截止 {at}", " until {at}"),
    "recorded": (
        "已记录参与者 {p} 在第 {r} 轮对 {n} 条条款的评价，其中 {k} 条附意见（已作为意见进入办理流程）",
        "recorded participant {p}'s rating of {n} clause(s) in round {r}; {k} with a comment (each now an opinion)",
    ),
    "clause": ("条款", "clause"),
    "rating": ("评价", "rating"),
    "opinion": ("意见编号", "opinion"),
}


def _w(state: CliState, key: str, **kw: object) -> str:
    zh, en = _WORDS[key]
    return (en if state.settings.lang == "en" else zh).format(**kw)


@click.group("plan")
def plan_group() -> None:
    """The draft plan (规划草案): versions of numbered sections and clauses, and their diff."""


@plan_group.command("import")
@click.argument("consultation_id", type=ID)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--version-label", help="A name for this version (such as 征求意见稿).")
@as_option
@pass_state
def plan_import(state: CliState, consultation_id: int, file: Path, version_label: str | None) -> None:
    """Import FILE (.md, .docx, .csv, .json) as the next version of CONSULTATION_ID's draft.

    Markdown and DOCX: headings are sections; numbered items or paragraphs under them are clauses
    (2.3 = section 2, clause 3). CSV/JSON: the columns section, clause, text. A clause number
    already known keeps its clause across versions.
    """
    clauses = tuple(read_plan(file))
    made = state.call("plan.import", ImportPlan(consultation_id, clauses, version_label, file.name))
    sections = len({c.section_no for c in clauses})
    source = _w(state, "from", f=file.name)
    state.emit(
        made, lambda: _w(state, "imported", c=consultation_id, v=made.number, n=made.clauses, s=sections, src=source)
    )


@plan_group.command("show")
@click.argument("consultation_id", type=ID)
@click.option("--version", "version", type=ID, help="Which version (default: the latest).")
@json_flag
@pass_state
def plan_show(state: CliState, consultation_id: int, version: int | None) -> None:
    """A version of the draft: its sections and clauses, in order."""
    shown = state.call("plan.show", ShowPlan(consultation_id, version))
    v = shown.version

    def text() -> str:
        label = f"（{v.label}）" if v.label and state.settings.lang != "en" else f" ({v.label})" if v.label else ""
        at = local_time(v.imported_at, state.settings.tz)
        out = [
            _w(state, "version", c=consultation_id, v=v.number, label=label, n=v.clauses, at=at, by=v.imported_by),
            _w(state, "versions", vs=", ".join(str(x.number) for x in shown.versions)),
        ]
        if shown.reviews:
            rounds = ", ".join(
                _w(
                    state,
                    "round_of",
                    r=r.round_no,
                    v=r.version_number,
                    status=_w(state, "open" if r.open else "closed"),
                )
                for r in shown.reviews
            )
            out.append(_w(state, "reviewed", rs=rounds))
        section = None
        for c in shown.clauses:
            if c.section_no != section:
                section = c.section_no
                out += ["", f"{c.section_no} {c.section_title}".strip()]
            out.append(f"  {c.number}  {c.text}")
        return "\n".join(out)

    state.emit(shown, text)


@plan_group.command("diff")
@click.argument("consultation_id", type=ID)
@click.argument("from_version", type=ID)
@click.argument("to_version", type=ID)
@json_flag
@pass_state
def plan_diff(state: CliState, consultation_id: int, from_version: int, to_version: int) -> None:
    """Clauses added, removed and changed from one version to another, and the opinions behind each change.

    For each clause, the opinions linked to it (by a review comment, 'plan link', or a plan
    reference naming its number) that were adopted or partly adopted between the two imports.
    """
    found = state.call("plan.diff", DiffPlan(consultation_id, from_version, to_version))

    def text() -> str:
        out = [
            _w(
                state,
                "diff_head",
                c=consultation_id,
                a=found.from_version,
                b=found.to_version,
                added=found.count("added"),
                removed=found.count("removed"),
                changed=found.count("changed"),
            )
        ]
        if not found.lines:
            out.append(_w(state, "no_change"))
        for line in found.lines:
            out += ["", f"{line.number}  [{_w(state, line.change)}]"]
            if line.before is not None:
                out.append(f"  - {_w(state, 'before')}: {line.before}")
            if line.after is not None:
                out.append(f"  + {_w(state, 'after')}: {line.after}")
            if line.opinions:
                listed = ", ".join(
                    f"#{o.opinion_id} ({state.label(o.outcome_label) if o.outcome_label else o.outcome})"
                    for o in line.opinions
                )
                out.append(f"  {_w(state, 'asked')}: {listed}")
        return "\n".join(out)

    state.emit(found, text)


@plan_group.command("link")
@click.argument("opinion_id", type=ID)
@click.argument("clauses", nargs=-1, required=True)
@as_option
@pass_state
def plan_link(state: CliState, opinion_id: int, clauses: tuple[str, ...]) -> None:
    """Link OPINION_ID to the plan clauses it is about (by number, such as 2.3)."""
    linked = state.call("plan.link", LinkClauses(opinion_id, clauses))
    numbers = ", ".join(c.number for c in linked.clauses) or _w(state, "none")
    state.emit(linked, lambda: _w(state, "linked", o=opinion_id, cs=numbers))


@click.group("review")
def review_group() -> None:
    """Review rounds (成果评审 / 大众点评): the public rates each clause of a plan version."""


@review_group.command("open")
@click.argument("consultation_id", type=ID)
@click.option("--version", "version", type=ID, help="The plan version to review (default: the latest).")
@click.option("--category", help="The category its comments are recorded under (default: the workflow's first).")
@click.option("--closes-at", help="When the round is due to close (local time, ISO 8601).")
@as_option
@pass_state
def review_open(
    state: CliState, consultation_id: int, version: int | None, category: str | None, closes_at: str | None
) -> None:
    """Open the next round of CONSULTATION_ID as a review of a plan version."""
    when = parse_time(closes_at, state.settings.tz) if closes_at else None
    made = state.call("review.open", OpenReview(consultation_id, version, category, when))
    until = _w(state, "until", at=local_time(when, state.settings.tz)) if when else ""
    state.emit(
        made,
        lambda: _w(
            state,
            "review_open",
            c=consultation_id,
            r=made.round.number,
            v=made.version,
            n=made.clauses,
            cat=(made.category_en if state.settings.lang == "en" else made.category_zh) or made.category,
            until=until,
        ),
    )


@review_group.command("record")
@click.argument("consultation_id", type=ID)
@click.argument("participant_id", type=ID)
@click.option(
    "--rate",
    "rates",
    nargs=2,
    multiple=True,
    metavar="CLAUSE RATING",
    help="A clause and its rating: 满意 (satisfied), 基本满意 (mostly) or 不满意 (not_satisfied). Repeat per clause.",
)
@click.option(
    "--comment", "comments", nargs=2, multiple=True, metavar="CLAUSE TEXT", help="A comment on a rated clause."
)
@click.option("--channel", default="villagers_assembly", show_default=True, help="Where the ratings were given.")
@as_option
@pass_state
def review_record(
    state: CliState,
    consultation_id: int,
    participant_id: int,
    rates: tuple[tuple[str, str], ...],
    comments: tuple[tuple[str, str], ...],
    channel: str,
) -> None:
    """Record PARTICIPANT_ID's ratings in the open review (at an assembly); a comment becomes an opinion."""
    said = {}
    for clause, comment in comments:
        if clause in said:
            raise click.UsageError(f"--comment {clause}: one comment per clause")
        said[clause] = comment
    unrated = [c for c in said if c not in {r[0] for r in rates}]
    if unrated:
        raise click.UsageError(
            f"--comment {unrated[0]}: rate that clause too (--rate {unrated[0]} 满意|基本满意|不满意)"
        )
    ratings = tuple(RatingIn(clause, rating, said.get(clause)) for clause, rating in rates)
    done = state.call("review.record", RecordRatings(consultation_id, participant_id, ratings, channel))

    def text() -> str:
        head = _w(
            state,
            "recorded",
            p=participant_id,
            r=done.round_no,
            n=len(done.ratings),
            k=sum(1 for r in done.ratings if r.opinion_id),
        )
        rows = [(r.clause, state.label(RATINGS[r.rating]), r.opinion_id or "") for r in done.ratings]
        return head + "\n" + table([_w(state, "clause"), _w(state, "rating"), _w(state, "opinion")], rows)

    state.emit(done, text)


def linked_clauses(state: CliState, opinion_id: int) -> OpinionClauses:
    """The plan clauses an opinion is linked to (for `opinion show`)."""
    linked: OpinionClauses = state.call("plan.clauses-of", OfOpinion(opinion_id))
    return linked


def clause_lines(state: CliState, linked: OpinionClauses) -> list[str]:
    """`opinion show`'s line about the plan clauses an opinion is linked to (none: no line)."""
    if not linked.clauses:
        return []
    listed = "; ".join(f"{c.number} {shorten(c.text or '', 30)}".strip() for c in linked.clauses)
    return [_w(state, "linked", o=linked.opinion_id, cs=listed)]


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(plan_group)
    main.add_command(review_group)
