"""Reports for publication: the adoption table, the published account (意见采纳情况说明), plan traceability.

Each report is built as a `Document` (titled tables plus structured figures) in zh or en, so one
renderer per format serves them all. Contact details never appear here; names can be pseudonymised.
Unless names are shown in full, the texts (opinions, feedback, reasons) are published redacted:
phone, ID-card and bank-card numbers, e-mail addresses and the participant's own name masked
(consultflow.domain.redaction).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TypeVar

from consultflow.domain.document import Cell, Document, Reread, Row, Table, held
from consultflow.domain.labels import Lang
from consultflow.domain.model import AccountRow, ConsultationRow
from consultflow.domain.privacy import NameMode, display_name
from consultflow.domain.redaction import redacted
from consultflow.domain.vocabulary import DECIDED_OUTCOMES, Outcome
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services import statistics
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.personal_data import read_on_record
from consultflow.services.ports import UnitOfWork

T = TypeVar("T")

_WORDS: dict[str, tuple[str, str]] = {
    "adoption_title": ("意见采纳情况统计", "Adoption of opinions"),
    "account_title": ("意见采纳情况说明", "Account of how opinions were taken up"),
    "plan_title": ("规划条款与意见对应表", "Plan sections and the opinions they answer"),
    "summary": ("总体情况", "Summary"),
    "outcomes": ("办理结果", "Outcomes"),
    "by_category": ("按类别", "By category"),
    "by_channel": ("按渠道", "By channel"),
    "rounds": ("办理轮次分布", "Rounds to outcome"),
    "item": ("项目", "Item"),
    "value": ("数值", "Value"),
    "opinions": ("意见数", "Opinions"),
    "share": ("占比(%)", "Share (%)"),
    "participants": ("参与人数", "Participants"),
    "rounds_held": ("已开展轮次", "Rounds held"),
    "decided": ("已办结", "Decided"),
    "open": ("办理中", "Still open"),
    "outcome": ("结果", "Outcome"),
    "category": ("类别", "Category"),
    "channel": ("渠道", "Channel"),
    "adoption_rate": ("采纳率(%)", "Adopted (%)"),
    "mean": ("平均轮次", "Mean rounds"),
    "n_rounds": ("{n}轮", "{n} round(s)"),
    "id": ("编号", "No."),
    "who": ("提出人", "Raised by"),
    "village": ("村/片区", "Village"),
    "asked": ("意见内容", "What was asked"),
    "feedback": ("反馈意见", "Feedback"),
    "decision": ("办理结果", "Decision"),
    "why": ("理由或规划落实", "Reason, or where the plan reflects it"),
    "plan_section": ("规划条款", "Plan section"),
    "in_progress": ("办理中", "In progress"),
    "round": ("第{n}轮", "Round {n}"),
    "all_rounds": ("全部轮次", "All rounds"),
    "by_theme": ("采纳意见主题", "Adopted opinions by theme"),
    "theme": ("主题", "Theme"),
    "adopted": ("采纳意见数", "Adopted opinions"),
    "share_of_adopted": ("占采纳(%)", "Share of adopted (%)"),
}


def _w(key: str, lang: Lang, **kw: object) -> str:
    zh, en = _WORDS[key]
    return (zh if lang == "zh" else en).format(**kw)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def adoption_report(ctx: ServiceContext, consultation_id: int, lang: Lang = "zh") -> Document:
    """The pilot's table for any consultation: totals, outcomes, categories, channels, rounds."""
    with ctx.reading() as uow:  # counted by the database: no opinion is loaded
        c = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(c.workflow_id))
        counts = uow.figures.outcome_counts(c.id)
        participants = uow.figures.participant_count(c.id)
        rounds_held = len(uow.consultations.rounds(c.id))
        theme_rows = uow.themes.counts(c.id)  # (category, theme, outcome, opinions)
    outcomes: Counter[str | None] = Counter()
    for _category, _channel, outcome, n in counts:
        outcomes[outcome] += n
    total = sum(outcomes.values())
    decided = sum(n for k, n in outcomes.items() if k is not None)
    summary = Table(
        "summary",
        _w("summary", lang),
        (_w("item", lang), _w("value", lang)),
        (
            (_w("opinions", lang), total),
            (_w("participants", lang), participants),
            (_w("rounds_held", lang), int(rounds_held)),
            (_w("decided", lang), decided),
            (_w("open", lang), total - decided),
        ),
    )
    outcome_rows = (
        *tuple((o.label.get(lang), outcomes.get(o.value, 0), _pct(outcomes.get(o.value, 0), total)) for o in Outcome),
        (_w("open", lang), outcomes.get(None, 0), _pct(outcomes.get(None, 0), total)),
    )
    outcome_table = Table(
        "outcomes", _w("outcomes", lang), (_w("outcome", lang), _w("opinions", lang), _w("share", lang)), outcome_rows
    )

    def breakdown(key: str, column: int, labels: dict[str, str]) -> tuple[Table, list[dict[str, object]]]:
        groups: dict[str, Counter[str | None]] = defaultdict(Counter)
        for row in counts:
            groups[str(row[column])][row[2]] += row[3]
        names = list(labels) + sorted(set(groups) - set(labels))
        rows: list[tuple[Cell, ...]] = []
        figures: list[dict[str, object]] = []
        for name in names:
            g = groups.get(name, Counter())
            n = sum(g.values())
            per = [g.get(o.value, 0) for o in DECIDED_OUTCOMES]
            rows.append((labels.get(name, name), n, _pct(n, total), *per, _pct(per[0], n)))
            figures.append(
                {
                    "name": name,
                    "label": labels.get(name, name),
                    "opinions": n,
                    "share": _pct(n, total),
                    **{o.value: v for o, v in zip(DECIDED_OUTCOMES, per, strict=True)},
                }
            )
        headers = (
            _w(key.removeprefix("by_"), lang),
            _w("opinions", lang),
            _w("share", lang),
            *[o.label.get(lang) for o in DECIDED_OUTCOMES],
            _w("adoption_rate", lang),
        )
        return Table(key, _w(key, lang), headers, tuple(rows)), figures

    by_category, category_figures = breakdown("by_category", 0, {k: v.get(lang) for k, v in spec.categories.items()})
    by_channel, channel_figures = breakdown("by_channel", 1, {k: v.get(lang) for k, v in spec.channels.items()})
    rounds = statistics.rounds_report(ctx, consultation_id)
    most = max((max(o.histogram, default=0) for o in rounds.outcomes), default=0)
    rounds_table = Table(
        "rounds",
        _w("rounds", lang),
        (
            _w("outcome", lang),
            _w("opinions", lang),
            *[_w("n_rounds", lang, n=n) for n in range(1, most + 1)],
            _w("mean", lang),
        ),
        tuple(
            (
                Outcome(o.outcome).label.get(lang),
                o.total,
                *[o.histogram.get(n, 0) for n in range(1, most + 1)],
                round(o.mean, 2),
            )
            for o in rounds.outcomes
        ),
    )
    by_theme, theme_figures = _adopted_by_theme(theme_rows, outcomes.get(Outcome.ADOPTED.value, 0), lang)
    figures = {
        "consultation_id": c.id,
        "title": c.title,
        "area": c.area,
        "opinions": total,
        "participants": participants,
        "rounds_held": int(rounds_held),
        "outcomes": {
            o.value: {"opinions": outcomes.get(o.value, 0), "share": _pct(outcomes.get(o.value, 0), total)}
            for o in Outcome
        },
        "open": outcomes.get(None, 0),
        "by_category": category_figures,
        "by_channel": channel_figures,
        "rounds": {o.outcome: {str(k): v for k, v in o.histogram.items()} for o in rounds.outcomes},
        "adopted_by_theme": theme_figures,
    }
    return Document(
        title=f"{c.title} — {_w('adoption_title', lang)}",
        subtitle=f"{c.area} · {spec.key}",
        tables=(summary, outcome_table, by_category, by_channel, rounds_table, *by_theme),
        figures=figures,
    )


def _adopted_by_theme(
    rows: Iterable[tuple[str, str, str | None, int]], adopted: int, lang: Lang
) -> tuple[tuple[Table, ...], list[dict[str, object]]]:
    """Adopted opinions counted by theme (most first): a table when any adopted opinion is coded, and figures.

    A theme is a planner's tag, published like any text: redacted.
    """
    counted: Counter[str] = Counter()
    for _category, theme, outcome, n in rows:
        if outcome == Outcome.ADOPTED.value:
            counted[redacted(theme)] += n
    ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    figures: list[dict[str, object]] = [{"theme": t, "adopted": n, "share": _pct(n, adopted)} for t, n in ranked]
    if not ranked:
        return (), figures
    headers = (_w("theme", lang), _w("adopted", lang), _w("share_of_adopted", lang))
    table = Table("by_theme", _w("by_theme", lang), headers, tuple((t, n, _pct(n, adopted)) for t, n in ranked))
    return (table,), figures


def account_report(
    ctx: ServiceContext,
    consultation_id: int,
    *,
    lang: Lang = "zh",
    round_no: int | None = None,
    names: NameMode = "pseudonym",
    acting: str | None = None,
    purpose: str | None = None,
    at_most: int | None = None,
) -> Document:
    """The published account, held: for a web page or a test (see `use_account_report`).

    With `at_most`, each category keeps its first rows, and a table cut short says so.
    """
    return use_account_report(
        ctx,
        consultation_id,
        partial(held, at_most=at_most),
        lang=lang,
        round_no=round_no,
        names=names,
        acting=acting,
        purpose=purpose,
    )


def use_account_report(
    ctx: ServiceContext,
    consultation_id: int,
    use: Callable[[Document], T],
    *,
    lang: Lang = "zh",
    round_no: int | None = None,
    names: NameMode = "pseudonym",
    acting: str | None = None,
    purpose: str | None = None,
) -> T:
    """The published account (意见采纳情况说明), grouped by category, given to `use` while it can be read.

    Without a round: every opinion with its latest feedback and its decision. With `round_no`:
    the opinions answered in that round, with that round's feedback. The tables stream from the
    database on each pass, so `use` (writing a file, say) holds one row at a time, whatever the
    size. Full names need a coordinator and a purpose, and the read is on record.
    """

    def read(uow: UnitOfWork) -> T:
        c = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(c.workflow_id))
        return use(_account(uow, c, spec, lang, round_no, names))

    if names != "full":
        with ctx.reading() as uow:
            return read(uow)

    def shown(uow: UnitOfWork) -> Iterable[int]:
        spec = spec_for(uow.workflows.get(uow.consultations.get(consultation_id).workflow_id))
        return uow.figures.account_participants(consultation_id, list(spec.categories), round_no)

    return read_on_record(
        ctx,
        acting=acting,
        what=f"account of consultation {consultation_id} with full names",
        purpose=purpose,
        shown=shown,
        read=read,
    )


_ACCOUNT_KEYS = ("id", "raised_by", "village", "asked", "feedback", "decision", "why")


def _shown_text(names: NameMode) -> Callable[[str | None, str], str]:
    """How a report shows a free text of a participant's opinion: whole with full names, else redacted."""
    if names == "full":
        return lambda text, _name: text or ""
    return redacted


def _account(
    uow: UnitOfWork, c: ConsultationRow, spec: WorkflowSpec, lang: Lang, round_no: int | None, names: NameMode
) -> Document:
    shown = _shown_text(names)

    def decided(a: AccountRow) -> bool:
        return a.opinion.outcome is not None and (round_no is None or a.last_round == round_no)

    def row_of(a: AccountRow) -> Row:
        o, decided_now = a.opinion, decided(a)
        decision = spec.states[o.state].label.get(lang) if decided_now else in_progress
        why = ""
        if decided_now and o.plan_ref:
            why = o.plan_ref
        elif decided_now:
            why = str(json.loads(a.last_payload or "{}").get("reason") or "")
            if o.merged_into_id:
                why = merged + str(o.merged_into_id)
        return (
            o.id,
            display_name(o.name, names),
            o.village,
            shown(o.text, o.name),
            shown(a.feedback, o.name),
            decision,
            shown(why, o.name),
        )

    def rows(category: str) -> Iterator[Row]:
        for a in uow.figures.account_rows(c.id, category, round_no):
            row = row_of(a)
            yield row[:1] + row[2:] if names == "none" else row

    def items(category: str) -> Iterator[Mapping[str, object]]:
        for a in uow.figures.account_rows(c.id, category, round_no):
            outcome = a.opinion.outcome if decided(a) else None
            yield dict(zip(_ACCOUNT_KEYS, row_of(a), strict=True)) | {"outcome": outcome}

    in_progress = _w("in_progress", lang)
    merged = "并入意见 #" if lang == "zh" else "merged into #"
    headers = tuple(_w(k, lang) for k in ("id", "who", "village", "asked", "feedback", "decision", "why"))
    if names == "none":
        headers = headers[:1] + headers[2:]
    tables = tuple(
        Table(category, label.get(lang), headers, Reread(partial(rows, category)))
        for category, label in spec.categories.items()
    )
    scope = _w("round", lang, n=round_no) if round_no else _w("all_rounds", lang)
    return Document(
        title=f"{c.title} — {_w('account_title', lang)}",
        subtitle=f"{c.area} · {scope}",
        tables=tables,
        figures={
            "consultation_id": c.id,
            "round": round_no,
            "categories": {category: Reread(partial(items, category)) for category in spec.categories},
        },
    )


_SECTION = re.compile(r"^\s*v?(\d+)?\s*§?\s*([\d.]*)")


def _section_key(ref: str) -> tuple[int, tuple[int, ...], str]:
    m = _SECTION.match(ref)
    version = int(m.group(1)) if m and m.group(1) else 0
    numbers = tuple(int(x) for x in (m.group(2) if m else "").split(".") if x.isdigit())
    return version, numbers, ref


def plan_report(
    ctx: ServiceContext,
    consultation_id: int,
    *,
    lang: Lang = "zh",
    names: NameMode = "pseudonym",
    acting: str | None = None,
    purpose: str | None = None,
    at_most: int | None = None,
) -> Document:
    """The plan table, held: for a web page or a test (see `use_plan_report`); `at_most` as for the account."""
    return use_plan_report(
        ctx, consultation_id, partial(held, at_most=at_most), lang=lang, names=names, acting=acting, purpose=purpose
    )


_IN_PLAN = (Outcome.ADOPTED.value, Outcome.PARTLY_ADOPTED.value)


def use_plan_report(
    ctx: ServiceContext,
    consultation_id: int,
    use: Callable[[Document], T],
    *,
    lang: Lang = "zh",
    names: NameMode = "pseudonym",
    acting: str | None = None,
    purpose: str | None = None,
) -> T:
    """Per plan section, the opinions it answers: from a clause back to the people who asked.

    Given to `use` while it can be read; each section's rows stream from the database.
    """

    def read(uow: UnitOfWork) -> T:
        c = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(c.workflow_id))
        return use(_plan(uow, c, spec, lang, names))

    if names != "full":
        with ctx.reading() as uow:
            return read(uow)
    return read_on_record(
        ctx,
        acting=acting,
        what=f"plan report of consultation {consultation_id} with full names",
        purpose=purpose,
        shown=lambda uow: uow.figures.plan_participants(consultation_id, _IN_PLAN),
        read=read,
    )


def _plan(uow: UnitOfWork, c: ConsultationRow, spec: WorkflowSpec, lang: Lang, names: NameMode) -> Document:
    shown = _shown_text(names)

    def rows(ref: str) -> Iterator[Row]:
        for o in uow.figures.plan_rows(c.id, ref, _IN_PLAN):
            category = spec.categories[o.category].get(lang) if o.category in spec.categories else o.category
            state = spec.states[o.state].label.get(lang)
            yield (o.id, state, category, display_name(o.name, names), o.village, shown(o.text, o.name))

    def ids(ref: str) -> Iterator[int]:
        return (o.id for o in uow.figures.plan_rows(c.id, ref, _IN_PLAN))

    sections = sorted(uow.figures.plan_sections(c.id, _IN_PLAN), key=lambda s: _section_key(s[0]))
    headers = tuple(_w(k, lang) for k in ("id", "outcome", "category", "who", "village", "asked"))
    return Document(
        title=f"{c.title} — {_w('plan_title', lang)}",
        subtitle=f"{c.area} · {spec.key}",
        tables=tuple(
            Table(f"s{n}", ref, headers, Reread(partial(rows, ref))) for n, (ref, _, _) in enumerate(sections, 1)
        ),
        figures={
            "consultation_id": c.id,
            "sections": [
                {"section": ref, "opinions": Reread(partial(ids, ref)), "adopted": adopted}
                for ref, _n, adopted in sections
            ],
        },
    )
