"""`consultflow opinion`: submit, list, show, assign, and fire workflow triggers."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, shorten, table
from consultflow.cli.plans import clause_lines, linked_clauses
from consultflow.cli.themes import theme_lines
from consultflow.domain.document import Reread
from consultflow.domain.labels import Label
from consultflow.domain.model import MAX_ID
from consultflow.domain.redaction import flag_line
from consultflow.export.text import table_lines
from consultflow.services.commands.core import OfOpinion
from consultflow.services.commands.opinions import (
    AssignOpinions,
    CorrectOpinion,
    FireTrigger,
    ListOpinions,
    OpinionDetail,
    SubmitOpinion,
)
from consultflow.services.opinion_views import OpinionView
from consultflow.services.opinions import TransitionResult


@click.group("opinion")
def opinion_group() -> None:
    """Opinions (意见建议): the unit that moves through the workflow."""


# Long texts (a villagers' assembly's minutes) come from a file or standard input instead of --text.
MAX_TEXT_FILE_BYTES = 1_000_000
TEXT_FILE = click.option(
    "--text-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the text from this UTF-8 file (- for standard input) instead of --text.",
)


def _text(text: str | None, text_file: Path | None) -> str | None:
    """The text from --text or --text-file; both at once is a usage mistake."""
    if text_file is None:
        return text
    if text is not None:
        raise click.UsageError("give --text or --text-file, not both")
    raw: bytes
    try:
        if str(text_file) == "-":
            raw = sys.stdin.buffer.read(MAX_TEXT_FILE_BYTES + 1)
        else:
            with text_file.open("rb") as source:
                raw = source.read(MAX_TEXT_FILE_BYTES + 1)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {text_file}: {exc.strerror}", param_hint="--text-file") from None
    if len(raw) > MAX_TEXT_FILE_BYTES:
        raise click.BadParameter(f"{text_file} is over {MAX_TEXT_FILE_BYTES} bytes", param_hint="--text-file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{text_file} is not UTF-8 text", param_hint="--text-file") from None


@opinion_group.command("submit")
@click.option(
    "--consultation",
    "consultation_id",
    type=ID,
    required=True,
    help="Consultation id.",
)
@click.option(
    "--participant",
    "participant_id",
    type=ID,
    required=True,
    help="Participant id (see 'participant list').",
)
@click.option(
    "--category", required=True, help="Category: its name or label in the workflow (industry, 产业发展, 产业)."
)
@click.option(
    "--channel",
    required=True,
    help="Channel: its name or label in the workflow (open_air_meeting, 坝坝会, 问卷).",
)
@click.option("--text", help="The opinion, as the participant gave it.")
@TEXT_FILE
@as_option
@pass_state
def opinion_submit(
    state: CliState,
    consultation_id: int,
    participant_id: int,
    category: str,
    channel: str,
    text: str | None,
    text_file: Path | None,
) -> None:
    """Record an opinion in the consultation's open round (its text from --text, or a file, or stdin)."""
    text = _text(text, text_file)
    if text is None:
        raise click.UsageError("give the opinion with --text or --text-file (a file, or - for standard input)")
    view = state.call(
        "opinion.submit",
        SubmitOpinion(consultation_id, participant_id, category, channel, text),
    )
    flag = flag_line(view.personal_data)
    state.emit(
        view,
        lambda: (
            f"opinion {view.id} submitted in round {view.current_round} ({view.state})" + (f"\n{flag}" if flag else "")
        ),
    )


@opinion_group.command("list")
@click.option("--consultation", "consultation_id", type=ID, help="Only this consultation.")
@click.option("--state", "state_name", help="Only opinions in this state (its name or label: adopted, 采纳).")
@click.option("--assigned-to", help="Only opinions assigned to this planner (a work queue).")
@click.option("--category", help="Only this category (its name or label: industry, 产业发展).")
@click.option("--channel", help="Only this channel (its name or label: open_air_meeting, 坝坝会).")
@click.option("--round", "round_no", type=ID, help="Only opinions now in this round.")
@click.option(
    "--outcome",
    help="Only this outcome (adopted, partly_adopted, rejected, withdrawn, merged, or a label: 采纳).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@json_flag
@pass_state
def opinion_list(
    state: CliState,
    consultation_id: int | None,
    state_name: str | None,
    assigned_to: str | None,
    category: str | None,
    channel: str | None,
    round_no: int | None,
    outcome: str | None,
    limit: int | None,
) -> None:
    """Opinions matching every filter given (all of them, as they are read, unless --limit)."""
    criteria = ListOpinions(
        consultation_id=consultation_id,
        state=state_name,
        assigned_to=assigned_to,
        category=category,
        channel=channel,
        round_no=round_no,
        outcome=outcome,
        limit=limit,
    )
    headers = ["id", "state", "round", "rounds", "category", "participant", "assigned", "text"]

    def show(views: Iterable[OpinionView]) -> None:
        rows = Reread(
            lambda: (
                (
                    v.id,
                    _shown(state, v.state_label, v.state),
                    v.current_round,
                    v.rounds_count,
                    _shown(state, v.category_label, v.category),
                    f"{v.participant} ({v.village})",
                    v.assigned_to,
                    shorten(v.text),
                )
                for v in views
            )
        )
        state.emit_lines(iter(views), lambda: table_lines(headers, rows))

    state.stream("opinion.list", criteria, show)


def _shown(state: CliState, label: Label | None, key: str) -> str:
    """A workflow name in the chosen language (the key itself if the workflow has no label for it)."""
    return state.label(label) if label is not None else key


@opinion_group.command("show")
@click.argument("opinion_id", type=ID)
@json_flag
@pass_state
def opinion_show(state: CliState, opinion_id: int) -> None:
    """One opinion and the feedback and replies exchanged about it."""
    detail: OpinionDetail = state.call("opinion.show", OfOpinion(opinion_id))
    view, entries = detail.opinion, list(detail.entries)
    tz = state.settings.tz
    linked = linked_clauses(state, opinion_id)  # the plan clauses it is linked to
    coded, coded_lines = theme_lines(state, opinion_id)  # the themes it is coded with

    def text() -> str:
        out = [
            f"opinion {view.id}  consultation {view.consultation_id}  ({view.workflow})",
            f"participant: {view.participant} ({view.village})   recorded by: {view.recorded_by}",
            (
                f"category: {_shown(state, view.category_label, view.category)}   "
                f"channel: {_shown(state, view.channel_label, view.channel)}   submitted: {local_time(view.submitted_at, tz)}"
            ),
            (
                f"state: {_shown(state, view.state_label, view.state)} since {local_time(view.state_entered_at, tz)}   "
                f"round: {view.current_round}   rounds so far: {view.rounds_count}"
            ),
        ]
        if view.assigned_to:
            out.append(f"assigned to: {view.assigned_to}")
        if view.merged_from:
            out.append(f"merged from: {', '.join(map(str, view.merged_from))} (answered together with this one)")
        if view.outcome:
            out.append(
                f"outcome: {_shown(state, view.state_label, view.outcome)}"
                + (f"   plan: {view.plan_ref}" if view.plan_ref else "")
                + (f"   merged into: {view.merged_into}" if view.merged_into else "")
            )
        flag = flag_line(view.personal_data)
        if flag:
            out.append(flag)
        if view.source_fields:
            out.append("from the file: " + "; ".join(f"{k}: {v}" if k else v for k, v in view.source_fields.items()))
        out += clause_lines(state, linked)
        out += coded_lines
        out += ["", view.text]
        if entries:
            out += [
                "",
                table(
                    ["round", "kind", "stance", "by", "at", "text"],
                    [
                        (
                            e.round_no,
                            e.kind,
                            e.stance,
                            e.actor,
                            local_time(e.at, tz),
                            e.text,
                        )
                        for e in entries
                    ],
                ),
            ]
        return "\n".join(out)

    state.emit({"opinion": view, "entries": entries, "clauses": linked.clauses, "themes": coded}, text)


# The most ids one argument may name (a province's whole consultation); ids are held in memory.
MAX_IDS = 2_000_000


def parse_ids(text: str) -> list[int] | None:
    """`12`, `3,5,8`, `10-40` or `1-5,9` as ids in order without repeats; None if malformed or too many."""
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        lo, hi = int(first), int(last or first)
        if not 1 <= lo <= hi <= MAX_ID or len(ids) + hi - lo + 1 > MAX_IDS:
            return None
        ids.extend(range(lo, hi + 1))
    return list(dict.fromkeys(ids))


class OpinionIds(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """One opinion id, or several: `12`, `3,5,8`, `10-40`, `1-5,9`."""

    name = "IDS"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        """Parse the list; a malformed one is a usage error naming the accepted forms."""
        if isinstance(value, list):
            return value
        ids = parse_ids(str(value))
        if ids is None:
            msg = (
                f"{value!r} is not an opinion id or a list such as 12, 3,5,8 or 10-40 "
                f"(ids run from 1 to {MAX_ID}; at most {MAX_IDS:,} ids in one argument)"
            )
            self.fail(msg, param, ctx)
        return ids


@opinion_group.command("assign")
@click.argument("opinion_ids", nargs=-1, required=True, type=OpinionIds())
@click.option("--to", "planner", required=True, help="The planner who owes feedback.")
@as_option
@pass_state
def opinion_assign(state: CliState, opinion_ids: tuple[list[int], ...], planner: str) -> None:
    """Assign OPINION_IDS (12 13, 3,5,8 or 10-40) to a planner, in one transaction."""
    ids = list(dict.fromkeys(i for group in opinion_ids for i in group))
    done = state.stream("opinion.assign", AssignOpinions(ids, planner), list)
    state.emit(done, lambda: f"{len(done)} opinion(s) assigned to {planner}")


@opinion_group.command("fire")
@click.argument("opinion_ids", type=OpinionIds())
@click.argument("trigger")
@click.option("--text", help="Feedback or reply text.")
@TEXT_FILE
@click.option("--reason", help="Reason (rejection, withdrawal).")
@click.option("--plan-ref", help="Where the plan reflects it, e.g. 'v2 §4.3 rural roads'.")
@click.option("--into", "merge_target", help="Opinion id to merge into.")
@click.option("--stance", help="Re-participation stance: agree, object or revise.")
@as_option
@pass_state
def opinion_fire(
    state: CliState,
    opinion_ids: list[int],
    trigger: str,
    text: str | None,
    text_file: Path | None,
    reason: str | None,
    plan_ref: str | None,
    merge_target: str | None,
    stance: str | None,
) -> None:
    """Fire TRIGGER on OPINION_IDS (see 'workflow show' for triggers and their fields).

    Several ids (`3,5,8` or `10-40`) fire in one transaction: all of them move, or none does.
    """
    given = FireTrigger(opinion_ids, trigger, _text(text, text_file), reason, plan_ref, merge_target, stance)

    def show(results: Iterable[TransitionResult]) -> None:
        def lines() -> Iterator[str]:
            return (
                f"opinion {r.opinion_id}: {r.from_state} -> {r.to_state} "
                f"({r.trigger}, round {r.round_no}, rounds so far {r.rounds_count})"
                for r in results
            )

        state.emit_lines(next(iter(results)) if len(opinion_ids) == 1 else results, lines)

    state.stream("opinion.fire", given, show)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(opinion_group)


@opinion_group.command("correct")
@click.argument("opinion_id", type=ID)
@click.option("--text", help="The corrected text.")
@TEXT_FILE
@click.option("--reason", required=True, help="Why (e.g. a typing error at the assembly); kept in the audit trail.")
@as_option
@json_flag
@pass_state
def opinion_correct(state: CliState, opinion_id: int, text: str | None, text_file: Path | None, reason: str) -> None:
    """Correct a recorded opinion's text; the original stays readable in 'audit history'."""
    corrected = _text(text, text_file)
    if corrected is None:
        raise click.UsageError("give the corrected text with --text or --text-file (a file, or - for standard input)")
    view = state.call("opinion.correct", CorrectOpinion(opinion_id, corrected, reason))
    state.emit(view, lambda: f"opinion {view.id} corrected; the original is kept in its history")


@opinion_group.command("receipt")
@click.argument("opinion_id", type=ID)
@as_option
@json_flag
@pass_state
def opinion_receipt(state: CliState, opinion_id: int) -> None:
    """Issue a receipt code for an opinion, to hand to the villager (回执码).

    With the code, the villager follows the opinion on the web portal, reads the feedback and
    replies. Only a hash is kept: issuing a new code makes the previous one worthless.
    """
    code = state.call("opinion.receipt", OfOpinion(opinion_id)).receipt_code
    state.emit(
        {"opinion_id": opinion_id, "receipt_code": code},
        lambda: f"opinion {opinion_id}: receipt code {code}\n(hand it to the villager now; it cannot be shown again)",
    )


def _register_import() -> None:
    from consultflow.cli.intake import (  # noqa: PLC0415 - keeps `opinion` light to load
        opinion_duplicates,
        opinion_import,
        opinion_merge,
    )

    for command in (opinion_import, opinion_duplicates, opinion_merge):
        opinion_group.add_command(command)
    from consultflow.cli.themes import opinion_theme_group  # noqa: PLC0415 - `opinion theme add|remove`

    opinion_group.add_command(opinion_theme_group)


_register_import()
