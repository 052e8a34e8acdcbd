"""The draft plan in versions, its review by the public (成果评审 / 大众点评), and the results per clause.

- A plan draft is imported as a new version each time; a clause keeps its id across versions while
  its number stays the same. `diff` lists added, removed and changed clauses and, for each, the
  opinions linked to it that were adopted or partly adopted between the two versions.
- A review round is a round (opened like any other) made a review of one plan version. In it,
  participants rate clauses 满意 / 基本满意 / 不满意; a rating with a comment is also an opinion
  (recorded through the same use case path as any opinion, so it gets feedback and an outcome),
  linked to its clause. Comments are sealed with the participant's key, in the rating row and in
  its audit event alike. Every rating is an audit event of the consultation's chain.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from consultflow.domain.audit import EventKind
from consultflow.domain.document import Document, Row, Table
from consultflow.domain.errors import NotFoundError, RoundStateError, ValidationError
from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.labels import Label, Lang, resolve_choice
from consultflow.domain.ownership import check_submitter
from consultflow.domain.plan import (
    MAX_COMMENT_CHARS,
    RATINGS,
    Clause,
    ClauseChange,
    NewRating,
    PlanVersionInfo,
    ReviewInfo,
    StoredClause,
    checked,
    diff,
    resolve_rating,
)
from consultflow.domain.privacy import checked_contact
from consultflow.domain.receipts import new_receipt_code, receipt_hash
from consultflow.domain.roles import Action
from consultflow.domain.vocabulary import CHOICE_ALIASES, Outcome
from consultflow.services.consultations import RoundView
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.inputs import required_text
from consultflow.services.opinions import NewOpinion, note_on, record_opinions
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork
from consultflow.services.receipts import ONLINE_CHANNEL, portal_participant
from consultflow.services.rounds import open_in

_LABEL_MAX = 200
_IN_PLAN = (Outcome.ADOPTED.value, Outcome.PARTLY_ADOPTED.value)


# --- versions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanShown:
    """One version of the draft with its clauses, and the versions there are."""

    version: PlanVersionInfo
    clauses: tuple[StoredClause, ...]
    versions: tuple[PlanVersionInfo, ...]
    reviews: tuple[ReviewInfo, ...]


def _digest(clauses: Sequence[Clause | StoredClause]) -> str:
    text = json.dumps([[c.number, c.section_no, c.section_title, c.text] for c in clauses], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def import_plan(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    clauses: Sequence[Clause],
    label: str | None = None,
    source: str | None = None,
) -> PlanVersionInfo:
    """Import a draft as the consultation's next version; the same clause number keeps its clause."""
    good = checked(clauses)
    label = required_text(label, "version label", _LABEL_MAX) if label and label.strip() else None
    source = source.replace("\\", "/").rsplit("/", 1)[-1][:_LABEL_MAX] if source else None

    def body(change: Change) -> PlanVersionInfo:
        consultation = change.consultation(consultation_id)
        made = change.uow.plans.add_version(
            consultation.id, good, label=label, source=source, actor_id=change.actor.id, now=change.now
        )
        payload = {
            "version": made.number,
            "label": label,
            "source": source,
            "clauses": len(good),
            "digest": _digest(good),
        }
        change.record(consultation.id, change.event(EventKind.PLAN_IMPORTED, payload=payload))
        return made

    return run(
        ctx,
        acting=acting,
        action=Action.IMPORT_PLAN,
        event="plan_imported",
        body=body,
        describe=lambda v: {"consultation_id": consultation_id, "version": v.number, "clauses": v.clauses},
    )


def show_plan(ctx: ServiceContext, consultation_id: int, version: int | None = None) -> PlanShown:
    """A version of the draft (the latest unless told), with its clauses in order."""
    with ctx.uow() as uow:
        uow.consultations.get(consultation_id)
        shown = uow.plans.version(consultation_id, version)
        return PlanShown(
            shown,
            tuple(uow.plans.clauses(shown.id)),
            tuple(uow.plans.versions(consultation_id)),
            tuple(uow.plans.reviews(consultation_id)),
        )


@dataclass(frozen=True)
class TracedOpinion:
    """An opinion linked to a clause, with the state and outcome it reached."""

    opinion_id: int
    state: str
    outcome: str | None
    decided_at: datetime | None
    outcome_label: Label | None = None


@dataclass(frozen=True)
class DiffLine:
    """One clause that differs, and the adopted or partly adopted opinions that asked for it in between."""

    number: str
    change: str  # added, removed, changed
    before: str | None
    after: str | None
    opinions: tuple[TracedOpinion, ...] = ()


@dataclass(frozen=True)
class PlanDiff:
    """What changed from one version to another."""

    consultation_id: int
    from_version: int
    to_version: int
    lines: tuple[DiffLine, ...]

    def count(self, change: str) -> int:
        """How many clauses were added, removed or changed."""
        return sum(1 for line in self.lines if line.change == change)


def _as_clauses(stored: Sequence[StoredClause]) -> list[Clause]:
    return [Clause(c.number, c.section_no, c.section_title, c.text) for c in stored]


def diff_plan(ctx: ServiceContext, consultation_id: int, from_version: int, to_version: int) -> PlanDiff:
    """Added, removed and changed clauses, each with the opinions linked to it adopted in between."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        old = uow.plans.version(consultation_id, from_version)
        new = uow.plans.version(consultation_id, to_version)
        changes: list[ClauseChange] = diff(
            _as_clauses(uow.plans.clauses(old.id)), _as_clauses(uow.plans.clauses(new.id))
        )
        ids = uow.plans.clause_ids(consultation_id, [c.number for c in changes])
        start, end = sorted((old.imported_at, new.imported_at))
        traced: dict[int, list[TracedOpinion]] = defaultdict(list)
        for o in uow.plans.linked_opinions(consultation_id, list(ids.values())):
            if o.outcome in _IN_PLAN and start <= o.state_entered_at <= end:
                label = spec.states[o.state].label if o.state in spec.states else None
                traced[o.clause_id].append(TracedOpinion(o.opinion_id, o.state, o.outcome, o.state_entered_at, label))
    lines = tuple(
        DiffLine(c.number, c.change, c.before, c.after, tuple(traced.get(ids.get(c.number, 0), ()))) for c in changes
    )
    return PlanDiff(consultation_id, old.number, new.number, lines)


# --- links between opinions and clauses -------------------------------------------------------


@dataclass(frozen=True)
class ClauseRef:
    """A clause an opinion is linked to, with what the latest version that has it says."""

    number: str
    text: str | None


@dataclass(frozen=True)
class OpinionClauses:
    """The clauses one opinion is linked to."""

    opinion_id: int
    clauses: tuple[ClauseRef, ...]


def _latest_texts(uow: UnitOfWork, consultation_id: int, numbers: Sequence[str]) -> dict[str, str]:
    wanted, found = set(numbers), dict[str, str]()
    for v in reversed(uow.plans.versions(consultation_id)):
        if not wanted - found.keys():
            break
        for c in uow.plans.clauses(v.id):
            if c.number in wanted and c.number not in found:
                found[c.number] = c.text
    return found


def link_clauses(ctx: ServiceContext, *, acting: str | None, opinion_id: int, clauses: Sequence[str]) -> OpinionClauses:
    """Link an opinion to plan clauses by their numbers (a planner: the clauses it asked to change)."""
    numbers = [c.strip() for c in clauses if c.strip()]
    if not numbers:
        msg = "give at least one clause number (such as 2.3); see 'consultflow plan show CONSULTATION'"
        raise ValidationError(msg)

    def body(change: Change) -> OpinionClauses:
        (op,) = change.opinions([opinion_id])
        ids = change.uow.plans.clause_ids(op.consultation_id, numbers)
        unknown = [n for n in numbers if n not in ids]
        if unknown:
            msg = (
                f"consultation {op.consultation_id}'s plan has no clause {', '.join(unknown)}; "
                f"see 'consultflow plan show {op.consultation_id}'"
            )
            raise NotFoundError(msg)
        new = change.uow.plans.link(op.id, [ids[n] for n in numbers], change.actor.id, change.now)
        if new:
            by_id = {i: n for n, i in ids.items()}
            note_on(change, op, EventKind.CLAUSES_LINKED, "link_clauses", {"clauses": [by_id[i] for i in new]})
        return _opinion_clauses(change.uow, op.consultation_id, op.id)

    return run(
        ctx,
        acting=acting,
        action=Action.IMPORT_PLAN,
        event="clauses_linked",
        body=body,
        describe=lambda r: {"opinion_id": opinion_id, "clauses": len(r.clauses)},
    )


def _opinion_clauses(uow: UnitOfWork, consultation_id: int, opinion_id: int) -> OpinionClauses:
    linked = uow.plans.clauses_of_opinion(opinion_id)
    texts = _latest_texts(uow, consultation_id, [n for _i, n in linked])
    return OpinionClauses(opinion_id, tuple(ClauseRef(n, texts.get(n)) for _i, n in linked))


def clauses_of(ctx: ServiceContext, opinion_id: int) -> OpinionClauses:
    """The clauses an opinion is linked to (traceability from the opinion's side)."""
    with ctx.uow() as uow:
        op = uow.opinions.get(opinion_id)
        return _opinion_clauses(uow, op.consultation_id, op.id)


# --- review rounds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewOpened:
    """The round opened as a review, and what it rates."""

    round: RoundView
    version: int
    clauses: int
    category: str
    category_zh: str = ""  # the category's labels, as the workflow names it
    category_en: str = ""


def open_review(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    version: int | None = None,
    category: str | None = None,
    closes_at: datetime | None = None,
) -> ReviewOpened:
    """Open the next round as a review of a plan version (the latest unless told)."""
    if closes_at is not None and closes_at <= ctx.clock.now():
        msg = "--closes-at must be in the future"
        raise ValidationError(msg)

    def body(change: Change) -> ReviewOpened:
        consultation = change.consultation(consultation_id)
        plan = change.uow.plans.version(consultation.id, version)  # refused before the round opens
        spec = change.spec(consultation.id)
        chosen = (
            resolve_choice(category, spec.categories, "category", CHOICE_ALIASES)
            if category
            else next(iter(spec.categories))
        )
        opened = open_in(change, consultation.id, closes_at)
        change.uow.plans.add_review(consultation.id, opened.number, plan.id, chosen, change.now)
        payload = {"version": plan.number, "category": chosen}
        change.record(consultation.id, change.event(EventKind.REVIEW_OPENED, round_no=opened.number, payload=payload))
        label = spec.categories[chosen]
        return ReviewOpened(opened, plan.number, plan.clauses, chosen, label.zh, label.en)

    return run(
        ctx,
        acting=acting,
        action=Action.OPEN_ROUND,
        event="review_opened",
        body=body,
        describe=lambda r: {"consultation_id": consultation_id, "round": r.round.number, "version": r.version},
    )


@dataclass(frozen=True)
class RatingIn:
    """One clause rated: its number, 满意 / 基本满意 / 不满意 (or satisfied / mostly / not_satisfied), a comment."""

    clause: str
    rating: str
    comment: str | None = None
    category: str | None = None  # the comment's opinion's category (default: the review's)


@dataclass(frozen=True)
class RatingDone:
    """A rating recorded; `opinion_id` is the opinion its comment became."""

    clause: str
    rating: str
    opinion_id: int | None = None


@dataclass(frozen=True)
class RatingsRecorded:
    """What a participant's ratings in a review came to."""

    consultation_id: int
    round_no: int
    version: int
    participant_id: int
    ratings: tuple[RatingDone, ...]
    repeated: bool = False  # a portal form posted again: nothing new was recorded


def open_review_of(uow: UnitOfWork, consultation_id: int) -> ReviewInfo:
    """The review round open now, or a refusal saying why ratings cannot be taken."""
    open_now = uow.consultations.open_round(consultation_id)
    review = next((r for r in uow.plans.reviews(consultation_id) if r.open), None)
    if review is None:
        what = f"round {open_now.number} is open but is no review" if open_now else "no round is open"
        msg = (
            f"consultation {consultation_id} takes no ratings now: {what}; "
            f"open a review round with 'consultflow review open {consultation_id}'"
        )
        raise RoundStateError(msg)
    return review


def rate_in(
    change: Change,
    consultation_id: int,
    participant_id: int,
    items: Sequence[RatingIn],
    channel: str,
    *,
    form_key: str | None = None,
    receipt_hashes: Sequence[str | None] = (),
) -> RatingsRecorded:
    """Record a participant's ratings within a change: all of them, or none.

    `receipt_hashes` (the portal's): for each comment in order, the hash of its opinion's receipt code.
    """
    consultation = change.consultation(consultation_id)
    review = open_review_of(change.uow, consultation.id)
    if not items:
        msg = "rate at least one clause: 满意/satisfied, 基本满意/mostly or 不满意/not_satisfied"
        raise ValidationError(msg)
    check_submitter(change.acting_as(change.acting_role), participant_id)
    if change.uow.participants.missing([participant_id]):
        msg = f"unknown participant {participant_id}; list them with 'consultflow participant list'"
        raise NotFoundError(msg)
    clauses = {c.number: c for c in change.uow.plans.clauses(review.version_id)}
    ids = change.uow.plans.clause_ids(consultation.id, list(clauses))
    rated = change.uow.plans.rated(consultation.id, review.round_no, participant_id)
    seen: set[str] = set()
    wanted: list[tuple[str, str, str | None]] = []
    categories: dict[str, str] = {}
    for item in items:
        number = item.clause.strip()
        if number not in clauses:
            shown = ", ".join(list(clauses)[:12]) + (", …" if len(clauses) > 12 else "")
            msg = f"plan version {review.version_number} has no clause {number!r}; its clauses: {shown}"
            raise NotFoundError(msg)
        if number in seen or ids[number] in rated:
            msg = (
                f"participant {participant_id} has rated clause {number} in this review already; one rating per clause"
            )
            raise ValidationError(msg)
        seen.add(number)
        rating = resolve_rating(item.rating)
        comment = (
            required_text(item.comment, "comment", MAX_COMMENT_CHARS) if item.comment and item.comment.strip() else None
        )
        wanted.append((number, rating, comment))
        categories[number] = item.category or review.category
    commented = [(n, c) for n, _r, c in wanted if c is not None]
    hashes = list(receipt_hashes) + [None] * (len(commented) - len(receipt_hashes))
    views = (
        record_opinions(
            change,
            consultation.id,
            [
                NewOpinion(participant_id, categories[n], channel, c, None, h)
                for (n, c), h in zip(commented, hashes, strict=True)
            ],
        )
        if commented
        else []
    )
    opinion_of = {n: v.id for (n, _c), v in zip(commented, views, strict=True)}
    stored: list[NewRating] = []
    for number, rating, comment in wanted:
        sealed = change.uow.texts.seal(participant_id, comment) if comment is not None else None
        opinion_id = opinion_of.get(number)
        if opinion_id is not None:
            change.uow.plans.link(opinion_id, [ids[number]], change.actor.id, change.now)
        stored.append(NewRating(ids[number], participant_id, rating, sealed, opinion_id, form_key))
        payload: dict[str, object] = {
            "version": review.version_number,
            "clause": number,
            "rating": rating,
            "participant_id": participant_id,
        }
        if sealed is not None:  # the same sealed token as the rating row: erasure forgets both
            payload["comment"] = sealed
            payload["opinion_id"] = opinion_id
        change.record(consultation.id, change.event(EventKind.CLAUSE_RATED, round_no=review.round_no, payload=payload))
    change.uow.plans.add_ratings(consultation.id, review.round_no, stored, change.actor.id, change.now)
    done = tuple(RatingDone(n, r, opinion_of.get(n)) for n, r, _c in wanted)
    return RatingsRecorded(consultation.id, review.round_no, review.version_number, participant_id, done)


def record_ratings(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    participant_id: int,
    ratings: Sequence[RatingIn],
    channel: str = "villagers_assembly",
) -> RatingsRecorded:
    """Record a named participant's ratings (at an assembly, by a local expert; or the participant's own)."""
    return run(
        ctx,
        acting=acting,
        action=Action.SUBMIT_OPINION,
        event="clauses_rated",
        body=lambda change: rate_in(change, consultation_id, participant_id, ratings, channel),
        describe=lambda r: {"consultation_id": consultation_id, "round": r.round_no, "count": len(r.ratings)},
    )


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClauseResult:
    """One clause's ratings in the reviews of a version, and where its comments' opinions stand."""

    number: str
    section: str
    text: str
    satisfied: int
    mostly: int
    not_satisfied: int
    comments: int
    states: tuple[tuple[str, int], ...]  # (state, opinions) of its comments' opinions

    @property
    def ratings(self) -> int:
        """All ratings of the clause."""
        return self.satisfied + self.mostly + self.not_satisfied

    @property
    def share_satisfied(self) -> float | None:
        """满意 + 基本满意 as a share of all ratings (None without ratings)."""
        return (self.satisfied + self.mostly) / self.ratings if self.ratings else None


@dataclass(frozen=True)
class ReviewResults:
    """Per clause of a version: counts of each rating, the share satisfied, comments and their opinions' states."""

    consultation_id: int
    version: int
    rounds: tuple[int, ...]
    clauses: tuple[ClauseResult, ...]
    state_labels: dict[str, Label]


def review_results(ctx: ServiceContext, consultation_id: int, version: int | None = None) -> ReviewResults:
    """Results per clause over the reviews of a version (the latest reviewed version unless told)."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        reviews = uow.plans.reviews(consultation_id)
        if version is None and reviews:
            version = reviews[-1].version_number
        shown = uow.plans.version(consultation_id, version)
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        comments: Counter[int] = Counter()
        for r in uow.plans.rating_counts(consultation_id, shown.id):
            counts[r.clause_id][r.rating] += r.ratings
            comments[r.clause_id] += r.comments
        states: dict[int, Counter[str]] = defaultdict(Counter)
        for clause_id, state, n in uow.plans.comment_states(consultation_id, shown.id):
            states[clause_id][state] += n
        order = list(spec.states)
        results = tuple(
            ClauseResult(
                c.number,
                c.section_title,
                c.text,
                counts[c.clause_id]["satisfied"],
                counts[c.clause_id]["mostly"],
                counts[c.clause_id]["not_satisfied"],
                comments[c.clause_id],
                tuple(sorted(states[c.clause_id].items(), key=lambda s: order.index(s[0]) if s[0] in order else 99)),
            )
            for c in uow.plans.clauses(shown.id)
        )
    rounds = tuple(r.round_no for r in reviews if r.version_id == shown.id)
    labels = {name: s.label for name, s in spec.states.items()}
    return ReviewResults(consultation_id, shown.number, rounds, results, labels)


_WORDS: dict[str, tuple[str, str]] = {
    "title": ("规划成果评审结果（大众点评）", "Review of the draft plan: results per clause"),
    "subtitle": ("咨询 {c}，规划第 {v} 版，评审轮次：{r}", "Consultation {c}, plan version {v}, review rounds: {r}"),
    "none": ("无", "none"),
    "table": ("各条款评价", "Ratings per clause"),
    "clause": ("条款", "Clause"),
    "section": ("章节", "Section"),
    "text": ("条款内容", "Text"),
    "total": ("评价数", "Ratings"),
    "share": ("满意率（满意+基本满意）", "Share satisfied (satisfied + mostly)"),
    "comments": ("意见数", "Comments"),
    "states": ("意见办理情况", "Comments' opinions by state"),
    "note": (
        "满意率 = (满意 + 基本满意) / 评价数；有意见的评价已作为意见进入“参与—反馈”流程。",
        "Share satisfied = (satisfied + mostly) / ratings; every rating with a comment is an opinion in the loop.",
    ),
}
_SHORT = 60


def _w(key: str, lang: Lang, **kw: object) -> str:
    zh, en = _WORDS[key]
    return (zh if lang == "zh" else en).format(**kw)


def percent(share: float | None) -> str:
    """A share as the reports show it: one decimal and a percent sign, or a dash."""
    return "—" if share is None else f"{100 * share:.1f}%"


def results_document(results: ReviewResults, lang: Lang) -> Document:
    """The results as a report in any format (no names: figures only)."""
    rounds = ", ".join(str(n) for n in results.rounds) or _w("none", lang)
    headers = (
        _w("clause", lang),
        _w("section", lang),
        _w("text", lang),
        *(RATINGS[k].get(lang) for k in RATINGS),
        _w("total", lang),
        _w("share", lang),
        _w("comments", lang),
        _w("states", lang),
    )
    sep = "；" if lang == "zh" else "; "
    rows: list[Row] = []
    figures: list[dict[str, object]] = []
    for c in results.clauses:
        states = sep.join(
            f"{results.state_labels[s].get(lang) if s in results.state_labels else s} {n}" for s, n in c.states
        )
        short = c.text if len(c.text) <= _SHORT else c.text[: _SHORT - 1] + "…"
        rows.append(
            (
                c.number,
                c.section,
                short,
                c.satisfied,
                c.mostly,
                c.not_satisfied,
                c.ratings,
                percent(c.share_satisfied),
                c.comments,
                states,
            )
        )
        figures.append(
            {
                "clause": c.number,
                "satisfied": c.satisfied,
                "mostly": c.mostly,
                "not_satisfied": c.not_satisfied,
                "ratings": c.ratings,
                "share_satisfied": None if c.share_satisfied is None else round(c.share_satisfied, 4),
                "comments": c.comments,
                "comment_states": dict(c.states),
            }
        )
    return Document(
        _w("title", lang),
        _w("subtitle", lang, c=results.consultation_id, v=results.version, r=rounds),
        (Table("by_clause", _w("table", lang), headers, tuple(rows)),),
        {"version": results.version, "rounds": list(results.rounds), "by_clause": figures},
        (_w("note", lang),),
    )


def results_report(ctx: ServiceContext, consultation_id: int, lang: Lang, version: int | None = None) -> Document:
    """`report review`: the results per clause as a document."""
    return results_document(review_results(ctx, consultation_id, version), lang)


# --- the portal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewForm:
    """What the portal's review page shows: the open review's clauses, one rating control each."""

    consultation_id: int
    title: str
    round_no: int
    version: int
    closes_at: datetime | None
    clauses: tuple[StoredClause, ...]


def review_form(ctx: ServiceContext, consultation_id: int) -> ReviewForm:
    """The open review's clauses (RoundStateError when no review round is open)."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        review = open_review_of(uow, consultation_id)
        current = uow.consultations.open_round(consultation_id)
        closes_at = current.closes_at if current is not None else None
        clauses = tuple(uow.plans.clauses(review.version_id))
        return ReviewForm(
            consultation.id, consultation.title, review.round_no, review.version_number, closes_at, clauses
        )


@dataclass(frozen=True)
class OnlineReview:
    """A review form posted on the portal: ratings (and comments) by clause, and who the villager is."""

    consultation_id: int
    ratings: tuple[RatingIn, ...]
    village: str
    name: str = ""
    contact: str = ""
    contact_consent: bool = False
    form_key: str = ""
    lang: str = "zh"
    client: str = ""


@dataclass(frozen=True)
class ReviewReceipt:
    """The ratings recorded online, and a receipt code for each comment's opinion (to follow it on /my)."""

    recorded: RatingsRecorded
    codes: tuple[tuple[str, str], ...]  # (clause, receipt code)


def submit_review_online(ctx: ServiceContext, form: OnlineReview) -> ReviewReceipt:
    """Record a villager's ratings from the portal, registering her as `submit_online` does.

    The same form posted twice records nothing the second time (`repeated`); codes are shown once.
    """
    village = required_text(form.village, "village", 120)
    name = required_text(form.name, "name", 120) if form.name.strip() else ""
    contact = checked_contact(form.contact) if form.contact.strip() else None
    if contact is not None and not form.contact_consent:
        msg = "a contact is kept only with consent: tick the consent box, or leave the contact empty"
        raise ValidationError(msg)
    scoped = f"{form.client}\x00{form.form_key}".encode("utf-8", "surrogatepass")
    form_key = "web:" + hashlib.sha256(scoped).hexdigest()[:48] if form.form_key else None

    def body(change: Change) -> ReviewReceipt:
        change.via = ONLINE_CHANNEL
        change.consultation(form.consultation_id)
        review = open_review_of(change.uow, form.consultation_id)
        if form_key is not None and change.uow.plans.form_used(form.consultation_id, review.round_no, form_key):
            return ReviewReceipt(
                RatingsRecorded(form.consultation_id, review.round_no, review.version_number, 0, (), repeated=True), ()
            )
        if not form.ratings:  # refused before anyone is registered
            msg = "rate at least one clause: 满意/satisfied, 基本满意/mostly or 不满意/not_satisfied"
            raise ValidationError(msg)
        change.current_round(form.consultation_id)
        returning = portal_participant(change, name, village, contact, form.lang)
        change.vouched_participant = returning
        commented = [r.clause.strip() for r in form.ratings if r.comment and r.comment.strip()]
        codes = [new_receipt_code() for _ in commented]
        done = rate_in(
            change,
            form.consultation_id,
            returning,
            form.ratings,
            ONLINE_CHANNEL,
            form_key=form_key,
            receipt_hashes=[receipt_hash(c) for c in codes],
        )
        return ReviewReceipt(done, tuple(zip(commented, codes, strict=True)))

    return run(
        ctx,
        acting=PORTAL_ACTOR,
        action=Action.SUBMIT_OPINION,
        event="clauses_rated_online",
        body=body,
        describe=lambda r: {
            "consultation_id": form.consultation_id,
            "count": len(r.recorded.ratings),
            "repeated": r.recorded.repeated,
        },
    )


# --- audit verify: the plan's, the reviews' and the ratings' events against their live rows --------


def review_problem(uow: UnitOfWork, consultation_id: int) -> str | None:
    """The first live draft version, clause text, review, rating or clause link no event accounts for (verify).

    Replayed from the consultation's chain (checked as a chain already): plan_imported against
    plan_version and its clause texts (their digest), review_opened against plan_review,
    clause_rated against plan_rating, clauses_linked and commented clause_rated against
    opinion_clause. The ratings and links stream, sorted by participant or opinion, so memory
    holds one participant's or opinion's rows at a time. Names clause numbers, rounds, ids and
    ratings; never a name, a contact or a comment.
    """
    return (
        _plan_problem(uow, consultation_id)
        or _ratings_problem(uow, consultation_id)
        or _links_problem(uow, consultation_id)
    )


def _plan_problem(uow: UnitOfWork, consultation_id: int) -> str | None:
    """Versions (with their clause texts) and reviews against plan_imported and review_opened."""
    imported: dict[int, tuple[int, dict[str, Any]]] = {}
    opened: dict[int, tuple[int, dict[str, Any]]] = {}
    for kind, round_no, seq, payload in uow.plans.plan_events(consultation_id):
        said = json.loads(payload)
        if kind == EventKind.PLAN_IMPORTED:
            imported[int(said.get("version", 0))] = (int(seq), said)
        elif round_no is not None:
            opened[int(round_no)] = (int(seq), said)
    versions, numbers, reviews = uow.plans.live_plan(consultation_id)
    return _versions_problem(uow, versions, numbers, imported) or _reviews_problem(consultation_id, reviews, opened)


def _versions_problem(
    uow: UnitOfWork,
    versions: Sequence[tuple[Any, ...]],
    numbers: Sequence[str],
    imported: dict[int, tuple[int, dict[str, Any]]],
) -> str | None:
    texts: set[str] = set()
    for version_id, number, label, source, count in versions:
        found = imported.pop(int(number), None)
        subject = f"plan version {number}"
        if found is None:
            return f"{subject}: the live tables have it but no plan_imported event records it (a row was added)"
        seq, said = found
        checks = (("label", label, "label"), ("source", source, "source"), ("number of clauses", count, "clauses"))
        for what, now, key in checks:
            if now != said.get(key):
                return f"{subject}: its live {what} is {now!r} but plan_imported event #{seq} records {said.get(key)!r}"
        clauses = uow.plans.clauses(int(version_id))
        texts.update(c.number for c in clauses)
        if len(clauses) != count or _digest(clauses) != said.get("digest"):
            return (
                f"{subject}: its live clauses ({len(clauses)}) are not the ones plan_imported event #{seq} "
                "records (a clause's number, section or text was changed, added or removed)"
            )
    if imported:
        number = min(imported)
        return (
            f"plan_imported event #{imported[number][0]} records plan version {number}, "
            "which the live tables no longer have (a row was deleted)"
        )
    stray = sorted(set(numbers) - texts)
    if stray:
        return f"the live plan has clause {stray[0]}, which no imported version has (a row was added without an event)"
    return None


def _reviews_problem(
    consultation_id: int, reviews: Sequence[tuple[Any, ...]], opened: dict[int, tuple[int, dict[str, Any]]]
) -> str | None:
    for round_no, version, version_consultation, category, round_consultation in reviews:
        subject = f"review round {round_no}"
        found = opened.pop(int(round_no), None)
        if found is None or round_consultation != consultation_id:
            return f"{subject}: the live tables have it but no review_opened event records it (a row was added)"
        seq, said = found
        checks = (
            ("plan version", version if version_consultation == consultation_id else None, said.get("version")),
            ("category", category, said.get("category")),
        )
        for what, now, recorded in checks:
            if now != recorded:
                return f"{subject}: its live {what} is {now!r} but review_opened event #{seq} records {recorded!r}"
    if opened:
        round_no = min(opened)
        return (
            f"review_opened event #{opened[round_no][0]} opens round {round_no} as a review, "
            "which the live tables no longer have (a row was deleted)"
        )
    return None


_Rated = tuple[str, object, object, int | None]  # rating, comment as stored, comment's opinion, event sequence


def _ratings_problem(uow: UnitOfWork, consultation_id: int) -> str | None:
    """plan_rating against clause_rated, merged by (participant, round): one participant's ballot in memory."""
    live_count: Counter[tuple[int, str]] = Counter()
    said_count: Counter[tuple[int, str]] = Counter()
    first: tuple[int, str, str] | None = None  # round, clause, what happened

    def note(round_no: int, clause: str, what: str) -> None:
        nonlocal first
        if first is None:
            first = (round_no, clause, what)

    events = _grouped(uow.plans.rating_events(consultation_id), 2)
    live = _grouped(uow.plans.live_ratings(consultation_id), 2)
    with closing(events), closing(live):
        for key, said_rows, live_rows in _merge(events, live):
            participant, round_no = key
            said: dict[str, _Rated] = {}
            for _p, _r, seq, payload in said_rows:
                p = json.loads(payload)
                said[str(p.get("clause"))] = (str(p.get("rating")), p.get("comment"), p.get("opinion_id"), int(seq))
                said_count[(round_no, str(p.get("clause")))] += 1
            for _p, _r, clause, clause_consultation, rating, comment, opinion_id in live_rows:
                live_count[(round_no, clause)] += 1
                recorded = said.pop(clause, None)
                who = f"participant {participant}'s rating"
                if clause_consultation != consultation_id:
                    note(round_no, clause, f"{who} names a clause of another consultation (a live row was edited)")
                elif recorded is None:
                    note(round_no, clause, f"{who} was added without an event")
                elif rating != recorded[0]:
                    note(
                        round_no,
                        clause,
                        f"{who} is {rating!r} live but clause_rated event #{recorded[3]} records {recorded[0]!r} "
                        "(a live row was edited)",
                    )
                elif comment != recorded[1] or opinion_id != recorded[2]:
                    note(
                        round_no,
                        clause,
                        f"the comment of {who} is not the one clause_rated event #{recorded[3]} records "
                        "(a live row was edited)",
                    )
            for clause, (_rating, _c, _o, seq) in sorted(said.items()):
                note(round_no, clause, f"participant {participant}'s rating (clause_rated event #{seq}) was deleted")
    if first is None:
        return None
    round_no, clause, what = first
    live_n, said_n = live_count[(round_no, clause)], said_count[(round_no, clause)]
    counts = f"the live ratings count {live_n} but the clause_rated events record {said_n}: "
    return f"review round {round_no}, clause {clause}: {counts if live_n != said_n else ''}{what}"


def _links_problem(uow: UnitOfWork, consultation_id: int) -> str | None:
    """opinion_clause against clauses_linked and commented clause_rated, merged by opinion."""
    events = _grouped(uow.plans.link_events(consultation_id), 1)
    live = _grouped(uow.plans.live_links(consultation_id), 1)
    with closing(events), closing(live):
        for (opinion_id,), said_rows, live_rows in _merge(events, live):
            said: dict[str, int] = {}
            for _o, seq, kind, payload in said_rows:
                p = json.loads(payload)
                numbers = p.get("clauses", []) if kind == EventKind.CLAUSES_LINKED else [p.get("clause")]
                for number in numbers if isinstance(numbers, list) else []:
                    said.setdefault(str(number), int(seq))
            for _o, clause, clause_consultation in sorted(live_rows, key=lambda r: str(r[1])):
                if clause_consultation != consultation_id:
                    return (
                        f"opinion {opinion_id}: a live link names another consultation's clause (a live row was edited)"
                    )
                if said.pop(clause, None) is None:
                    return (
                        f"opinion {opinion_id}: the live links name clause {clause}, which no clauses_linked or "
                        "clause_rated event records (a link was added without an event)"
                    )
            if said:
                clause = min(said)
                return (
                    f"opinion {opinion_id}: event #{said[clause]} links it to clause {clause}, "
                    "which the live links no longer have (a link was deleted)"
                )
    return None


_Row = tuple[Any, ...]


def _grouped(rows: Iterator[_Row], width: int) -> Generator[tuple[tuple[int, ...], list[_Row]], None, None]:
    """Rows sorted by their first `width` integer columns, a run of equal keys at a time (the cursor closed after)."""
    try:
        readable = (r for r in rows if None not in r[:width])  # a payload the database could not read names none
        for key, run_ in groupby(readable, key=lambda r: tuple(int(v) for v in r[:width])):
            yield key, list(run_)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _merge(
    said: Iterator[tuple[tuple[int, ...], list[_Row]]], live: Iterator[tuple[tuple[int, ...], list[_Row]]]
) -> Iterator[tuple[tuple[int, ...], list[_Row], list[_Row]]]:
    """Two streams of keyed runs (sorted by key) merged: each key once, with the events' rows and the live rows."""
    a, b = next(said, None), next(live, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[0], a[1], []
            a = next(said, None)
        elif a is None or b[0] < a[0]:
            yield b[0], [], b[1]
            b = next(live, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(said, None), next(live, None)
