"""Who took part, from which group and village, and how many times (参与情况).

A person takes part once for each opinion they gave (a submission) and once for each answer they
gave to feedback (a re-participation, 再参与). `participation_summary` is the figures other
reports call (the county's brief, the programme dashboard); `use_participation_report` renders
them as a report, with people pseudonymised unless a coordinator states why (on record).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, TypeVar

from consultflow.domain.audit import EventKind
from consultflow.domain.document import Cell, Document, Reread, Row, Table
from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.groups import RosterLine, classify_roster, compare, group_label, resolve_group
from consultflow.domain.labels import Label, Lang
from consultflow.domain.privacy import NameMode, display_name
from consultflow.domain.roles import Action
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.personal_data import read_on_record
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork, VerifyReads

T = TypeVar("T")

BUCKETS = (1, 2, 3, 4)  # the last: 4 times or more

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("参与情况统计", "Who took part, and how often"),
    "summary": ("总体情况", "Summary"),
    "item": ("项目", "Item"),
    "value": ("数值", "Value"),
    "participants": ("参与人数", "People who took part"),
    "times": ("参与人次", "Times taken part"),
    "submissions": ("提交意见", "Opinions given"),
    "reparticipations": ("再参与", "Answers to feedback"),
    "repeat": ("两次及以上参与人数", "Took part twice or more"),
    "repeat_share": ("多次参与占比(%)", "Took part twice or more (%)"),
    "distribution": ("参与次数分布", "How many times each person took part"),
    "n_times": ("参与次数", "Times"),
    "people": ("人数", "People"),
    "share": ("占比(%)", "Share (%)"),
    "by_group": ("按参与群体", "By group"),
    "group": ("群体", "Group"),
    "by_village": ("按村", "By village"),
    "by_group_village": ("各村参与群体", "Groups in each village"),
    "village": ("村/片区", "Village"),
    "representation": ("代表性（对照人口）", "Representation against the population"),
    "kind": ("类型", "Kind"),
    "name": ("名称", "Name"),
    "population": ("人口", "Population"),
    "population_share": ("人口占比(%)", "Share of population (%)"),
    "participant_share": ("参与占比(%)", "Share of participants (%)"),
    "gap": ("差距(百分点)", "Gap (points)"),
    "under": ("代表不足", "Under-represented"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "kind_group": ("群体", "group"),
    "kind_village": ("村", "village"),
    "person_table": ("每人参与次数", "Times each person took part"),
    "id": ("编号", "No."),
    "who": ("参与人", "Person"),
    "four_plus": ("4次及以上", "4 or more"),
    "under_note": (
        "{name}（{kind}）参与占比{p}%，低于人口占比{q}%，相差{gap}个百分点",
        "{name} ({kind}): {p}% of participants but {q}% of the population, {gap} points short",
    ),
}


def _w(key: str, lang: Lang, **kw: object) -> str:
    zh, en = _WORDS[key]
    return (zh if lang == "zh" else en).format(**kw)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


@dataclass(frozen=True)
class ParticipationSummary:
    """A consultation's participation figures (counted by the database)."""

    consultation_id: int
    participants: int  # people who took part (gave an opinion)
    submissions: int  # their opinions
    reparticipations: int  # their answers to feedback
    repeat: int  # people who took part twice or more
    repeat_share: float  # repeat / participants, in percent (one decimal)
    distribution: tuple[tuple[int, int], ...]  # (times 1, 2, 3, 4 meaning 4 or more; people)
    by_group: tuple[tuple[str | None, int, int], ...]  # (group id, None: not given; people; repeat)
    by_village: tuple[tuple[str, int, int], ...]  # (village; people; repeat), most people first
    groups: Mapping[str, Label] = field(default_factory=dict)  # the workflow's groups, for labels
    by_group_village: tuple[tuple[str | None, str, int], ...] = ()  # (group id, village, people)

    @property
    def times(self) -> int:
        """Times taken part in all: submissions plus re-participations."""
        return self.submissions + self.reparticipations


def summaries_in(uow: UnitOfWork, consultation_ids: Sequence[int]) -> dict[int, ParticipationSummary]:
    """Each consultation's participation figures, inside the caller's unit of work (two queries for all)."""
    ids = sorted(set(consultation_ids))
    rows = uow.participation.by_group_village(ids) if ids else []
    buckets = uow.participation.distribution(ids) if ids else []
    out: dict[int, ParticipationSummary] = {}
    for cid in ids:
        c = uow.consultations.get(cid)
        groups = spec_for(uow.workflows.get(c.workflow_id)).groups
        mine = [r for r in rows if r[0] == cid]
        people = sum(r[3] for r in mine)
        repeat = sum(r[4] for r in mine)
        by_group: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
        by_village: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _c, group, village, n, again, _s, _r in mine:
            by_group[group][0] += n
            by_group[group][1] += again
            by_village[village][0] += n
            by_village[village][1] += again
        order = [*groups, *sorted(k for k in by_group if k is not None and k not in groups)]
        group_rows: list[tuple[str | None, int, int]] = [(g, by_group[g][0], by_group[g][1]) for g in order]
        if None in by_group:
            group_rows.append((None, by_group[None][0], by_group[None][1]))
        dist = dict.fromkeys(BUCKETS, 0)
        for _c, bucket, n in (b for b in buckets if b[0] == cid):
            dist[bucket] = dist.get(bucket, 0) + n
        out[cid] = ParticipationSummary(
            cid,
            people,
            sum(r[5] for r in mine),
            sum(r[6] for r in mine),
            repeat,
            _pct(repeat, people),
            tuple(sorted(dist.items())),
            tuple(group_rows),
            tuple(sorted(((v, n, a) for v, (n, a) in by_village.items()), key=lambda r: (-r[1], r[0]))),
            groups,
            tuple((group, village, n) for _c, group, village, n, _a, _s, _r in mine),
        )
    return out


def participation_summary(ctx: ServiceContext, consultation_id: int) -> ParticipationSummary:
    """Who took part in a consultation and how often (for other reports, such as the county's brief, to call).

    People by group and village, the distribution of times taken part, and the share who took
    part twice or more, counted by the database.
    """
    with ctx.reading() as uow:
        return summaries_in(uow, [consultation_id])[consultation_id]


def use_participation_report(
    ctx: ServiceContext,
    consultation_id: int,
    use: Callable[[Document], T],
    *,
    lang: Lang = "zh",
    names: NameMode = "pseudonym",
    roster: Sequence[tuple[str, int]] = (),
    acting: str | None = None,
    purpose: str | None = None,
) -> T:
    """The participation report, given to `use` while it can be read (its table of people streams).

    `roster` is (group or village, population) per line: the groups and villages taking part less
    than their share of the population are named, with the gap. Full names need a coordinator and
    a purpose, and the read is on record.
    """

    def read(uow: UnitOfWork) -> T:
        summary = summaries_in(uow, [consultation_id])[consultation_id]
        lines = _roster(roster, summary.groups)
        return use(_document(uow, summary, lang, names, lines))

    if names != "full":
        with ctx.reading() as uow:
            return read(uow)
    return read_on_record(
        ctx,
        acting=acting,
        what=f"participation of consultation {consultation_id} with full names",
        purpose=purpose,
        shown=lambda uow: uow.participation.participant_ids(consultation_id),
        read=read,
    )


def _roster(roster: Sequence[tuple[str, int]], groups: Mapping[str, Label]) -> tuple[RosterLine, ...]:
    return classify_roster(roster, groups) if roster else ()


def _document(
    uow: UnitOfWork, s: ParticipationSummary, lang: Lang, names: NameMode, roster: tuple[RosterLine, ...]
) -> Document:
    c = uow.consultations.get(s.consultation_id)
    summary = Table(
        "summary",
        _w("summary", lang),
        (_w("item", lang), _w("value", lang)),
        (
            (_w("participants", lang), s.participants),
            (_w("times", lang), s.times),
            (_w("submissions", lang), s.submissions),
            (_w("reparticipations", lang), s.reparticipations),
            (_w("repeat", lang), s.repeat),
            (_w("repeat_share", lang), s.repeat_share),
        ),
    )
    distribution = Table(
        "distribution",
        _w("distribution", lang),
        (_w("n_times", lang), _w("people", lang), _w("share", lang)),
        tuple(
            (_w("four_plus", lang) if times == BUCKETS[-1] else times, n, _pct(n, s.participants))
            for times, n in s.distribution
        ),
    )
    headers = (_w("people", lang), _w("share", lang), _w("repeat", lang), _w("repeat_share", lang))
    by_group = Table(
        "by_group",
        _w("by_group", lang),
        (_w("group", lang), *headers),
        tuple(
            (group_label(g, s.groups, lang), n, _pct(n, s.participants), again, _pct(again, n))
            for g, n, again in s.by_group
        ),
    )
    by_village = Table(
        "by_village",
        _w("by_village", lang),
        (_w("village", lang), *headers),
        tuple((v, n, _pct(n, s.participants), again, _pct(again, n)) for v, n, again in s.by_village),
    )
    tables = [summary, distribution, by_group, by_village, _cross(s, lang)]
    notes: list[str] = []
    figures: dict[str, object] = {
        "consultation_id": s.consultation_id,
        "participants": s.participants,
        "times": s.times,
        "submissions": s.submissions,
        "reparticipations": s.reparticipations,
        "repeat": s.repeat,
        "repeat_share": s.repeat_share,
        "distribution": {("4+" if t == BUCKETS[-1] else str(t)): n for t, n in s.distribution},
        "by_group": [
            {"group": g, "label": group_label(g, s.groups, lang), "people": n, "repeat": a} for g, n, a in s.by_group
        ],
        "by_village": [{"village": v, "people": n, "repeat": a} for v, n, a in s.by_village],
    }
    if roster:
        counts: dict[tuple[str, str], int] = {("group", g): n for g, n, _a in s.by_group if g is not None}
        counts.update({("village", v): n for v, n, _a in s.by_village})
        compared = compare(roster, counts)
        rows: list[Row] = []
        found: list[dict[str, object]] = []
        for r in compared:
            shown = group_label(r.name, s.groups, lang) if r.kind == "group" else r.name
            kind = _w(f"kind_{r.kind}", lang)
            flag = _w("yes" if r.under_represented else "no", lang)
            rows.append(
                (kind, shown, r.population, r.population_share, r.participants, r.participant_share, r.gap, flag)
            )
            found.append(
                {
                    "kind": r.kind,
                    "name": r.name,
                    "label": shown,
                    "population": r.population,
                    "population_share": r.population_share,
                    "participants": r.participants,
                    "participant_share": r.participant_share,
                    "gap": r.gap,
                    "under_represented": r.under_represented,
                }
            )
            if r.under_represented:
                notes.append(
                    _w(
                        "under_note",
                        lang,
                        name=shown,
                        kind=kind,
                        p=r.participant_share,
                        q=r.population_share,
                        gap=abs(r.gap),
                    )
                )
        tables.append(
            Table(
                "representation",
                _w("representation", lang),
                (
                    _w("kind", lang),
                    _w("name", lang),
                    _w("population", lang),
                    _w("population_share", lang),
                    _w("participants", lang),
                    _w("participant_share", lang),
                    _w("gap", lang),
                    _w("under", lang),
                ),
                tuple(rows),
            )
        )
        figures["representation"] = found
    tables.append(_people_table(uow, s, lang, names))  # names: pseudonyms, full (on record) or left empty
    return Document(_w("title", lang), f"{c.title} · {c.area}", tuple(tables), figures, tuple(notes))


def _cross(s: ParticipationSummary, lang: Lang) -> Table:
    """People by village (rows) and group (columns): who took part where."""
    shown = [g for g, _n, _a in s.by_group]
    cells: dict[tuple[str, str | None], int] = {(v, g): n for g, v, n in s.by_group_village}
    rows: tuple[Row, ...] = tuple(
        (village, *[cells.get((village, g), 0) for g in shown], n) for village, n, _a in s.by_village
    )
    headers = (_w("village", lang), *[group_label(g, s.groups, lang) for g in shown], _w("people", lang))
    return Table("by_group_village", _w("by_group_village", lang), headers, rows)


def _people_table(uow: UnitOfWork, s: ParticipationSummary, lang: Lang, names: NameMode) -> Table:
    def rows() -> Iterable[Row]:
        for pid, name, village, group, sub, rep in uow.participation.people(s.consultation_id):
            cells: tuple[Cell, ...] = (
                pid,
                display_name(name, names),
                village,
                group_label(group, s.groups, lang),
                sub,
                rep,
                sub + rep,
            )
            yield cells

    return Table(
        "people",
        _w("person_table", lang),
        (
            _w("id", lang),
            _w("who", lang),
            _w("village", lang),
            _w("group", lang),
            _w("submissions", lang),
            _w("reparticipations", lang),
            _w("times", lang),
        ),
        Reread(lambda: iter(rows())),
    )


def groups_for(uow: UnitOfWork, consultation_id: int) -> Mapping[str, Label]:
    """The groups of a consultation's workflow."""
    c = uow.consultations.get(consultation_id)
    return spec_for(uow.workflows.get(c.workflow_id)).groups


@dataclass(frozen=True)
class GroupChanged:
    """A participant's group, before and after, and the consultations whose audit chains record it."""

    participant_id: int
    group: str | None
    previous: str | None
    consultations: tuple[int, ...]
    changed: bool


def set_participant_group(
    ctx: ServiceContext,
    *,
    acting: str | None,
    participant_id: int,
    group: str | None,
    groups: Mapping[str, Label],
) -> GroupChanged:
    """Change a participant's group (None or empty: clear it); an audited change (see `set_groups`).

    Raises:
        ValidationError: an unknown group (naming the allowed ones), an erased participant.
        NotFoundError: no such participant.
    """
    return set_groups(ctx, acting=acting, assignments={participant_id: group}, groups=groups)[0]


def set_groups(
    ctx: ServiceContext,
    *,
    acting: str | None,
    assignments: Mapping[int, str | None],
    groups: Mapping[str, Label],
) -> tuple[GroupChanged, ...]:
    """Change participants' groups in one transaction, set-based; each change is an audited one.

    A change is an event in the audit chain of every consultation the participant took part in
    (as erasure is); someone who has not taken part yet has no chain to record it in, and their
    later opinions are counted under the group. `groups` are those a group is named from (by id
    or label): a consultation's workflow's, or the default workflow's.

    Raises:
        ValidationError: an unknown group (naming the allowed ones), an erased participant.
        NotFoundError: an unknown participant.
    """
    resolved = {pid: resolve_group(g, groups) for pid, g in assignments.items()}

    def body(change: Change) -> tuple[GroupChanged, ...]:
        current = change.uow.participation.groups_of(list(resolved))
        missing = sorted(set(resolved) - set(current))
        if missing:
            msg = f"unknown participant {missing[0]}; list them with 'consultflow participant list'"
            raise NotFoundError(msg)
        erased = sorted(pid for pid, (_g, gone) in current.items() if gone)
        if erased:
            msg = f"participant {erased[0]} was erased; nothing of theirs changes any more"
            raise ValidationError(msg)
        changing = {pid: g for pid, g in resolved.items() if current[pid][0] != g}
        pairs = change.uow.participation.consultations_of_many(list(changing))
        change.consultations({c for _p, c in pairs})  # their chains first, then the rows
        by_group: dict[str | None, list[int]] = defaultdict(list)
        for pid, g in changing.items():
            by_group[g].append(pid)
        for g, pids in by_group.items():
            change.uow.participation.set_group(pids, g)
        where: dict[int, list[int]] = defaultdict(list)
        for pid, consultation_id in pairs:
            where[pid].append(consultation_id)
            payload = {"participant_id": pid, "group": changing[pid], "previous": current[pid][0]}
            change.record(consultation_id, change.event(EventKind.PARTICIPANT_GROUP_CHANGED, payload=payload))
        return tuple(
            GroupChanged(pid, g, current[pid][0], tuple(where.get(pid, ())), changed=pid in changing)
            for pid, g in resolved.items()
        )

    return run(
        ctx,
        acting=acting,
        action=Action.ADD_PARTICIPANT,
        event="participant_group_changed",
        body=body,
        describe=lambda done: {"participants": len(done), "changed": sum(1 for g in done if g.changed)},
    )


def groups_of(ctx: ServiceContext, consultation_id: int | None = None) -> Mapping[str, Label]:
    """The groups a participant's group is named from.

    Those of a consultation's workflow, or, without one, of the default workflow (its newest
    version, as `consultation create` would pin it).
    """
    if consultation_id is not None:
        with ctx.reading() as uow:
            return groups_for(uow, consultation_id)
    from consultflow.services.consultations import DEFAULT_WORKFLOW  # noqa: PLC0415 - no cycle at import
    from consultflow.services.workflows import find_spec  # noqa: PLC0415

    return find_spec(ctx, DEFAULT_WORKFLOW).groups


# --- audit verify: a participant's group against the events that set it ---------------------------

_UNKNOWN = object()  # no event has said what the group is (one given at registration, or before any opinion)


def groups_problem(reads: VerifyReads, consultation_id: int) -> str | None:
    """The first participant of the consultation whose live group is not what the group events leave (verify).

    A participant's events from every chain are replayed in the order they happened: a
    participant_group_changed sets the group (and names the group it found, which must be what the
    events before it left); a submitted event with a group (a file's 群体 column) gives it only to
    someone without one. A participant none of these events names (a group given at registration,
    or changed before their first opinion: no chain holds it) is not checked. Other consultations'
    events are read as stored: `audit verify` of every consultation proves their chains. Names
    participant ids, consultations, event numbers and group ids only.
    """
    events = reads.group_events(consultation_id)
    live = reads.live_groups(consultation_id)
    with closing(events), closing(live):
        said = groupby(events, key=lambda r: int(r[0]))
        current = next(said, None)
        for participant, group in live:
            pid = int(participant)
            while current is not None and current[0] < pid:
                current = next(said, None)
            if current is None or current[0] != pid:
                continue
            problem = _group_replayed(pid, group, list(current[1]))
            if problem is not None:
                return problem
    return None


def _group_replayed(participant: int, live: str | None, events: list[tuple[Any, ...]]) -> str | None:
    state: object = _UNKNOWN
    last: tuple[int, int] | None = None  # the consultation and sequence of the event that set it
    for _p, consultation, seq, kind, payload in events:
        found = json.loads(payload)
        group = found.get("group")
        if kind == EventKind.PARTICIPANT_GROUP_CHANGED:
            previous = found.get("previous")
            if state is not _UNKNOWN and state not in (previous, group):  # the same change in another chain
                return (
                    f"participant {participant}: group event #{seq} of consultation {consultation} found "
                    f"{previous!r}, but the events before it leave {state!r} (the group was changed without an event)"
                )
            state, last = group, (int(consultation), int(seq))
        elif state is None:  # submitted with a group: given to someone without one
            state, last = group, (int(consultation), int(seq))
    if state is _UNKNOWN or state == live or last is None:
        return None
    return (
        f"participant {participant}: the live group is {live!r} but the last group event "
        f"(#{last[1]} of consultation {last[0]}) records {state!r} (a live row was edited)"
    )
