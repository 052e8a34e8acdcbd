"""Importing many opinions at once: every row checked first, then all written in one transaction.

The file is read twice, so memory does not grow with it: once to check every row (all problems
are reported at once, each naming its row and column, and by default nothing is written when any
row is bad), then again to write the good rows in set-based batches. Rows already imported (the
same key) are skipped, so importing a file twice, or an overlapping later export, adds nothing
twice. Each opinion gets its `submitted` audit event, naming the file row it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from consultflow.domain.errors import PermissionDeniedError, ValidationError
from consultflow.domain.intake import Column, IntakeRow, RowProblem, check_row, map_columns
from consultflow.domain.roles import Action, Role
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.opinions import record_submitted
from consultflow.services.pipeline import Change, run

# Re-openable: each call yields (line number, cells) from the start of the file.
RowSource = Callable[[], Iterable[tuple[int, Sequence[str]]]]
BATCH = 1000
SHOWN_PROBLEMS = 200


@dataclass
class ImportReport:
    """What an import found and did."""

    rows: int = 0
    imported: int = 0
    already: int = 0
    invalid: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows_shown: int = 0


@dataclass(frozen=True)
class ImportRequest:
    """An import as asked for."""

    consultation_id: int
    headers: Sequence[str]
    rows: RowSource
    mapping: Mapping[Column, str] = field(default_factory=dict)
    default_channel: str | None = None
    skip_invalid: bool = False
    source: str = "import"


def _checked(
    request: ImportRequest, spec: WorkflowSpec, columns: Mapping[Column, int]
) -> Iterable[tuple[Sequence[str], IntakeRow | list[RowProblem]]]:
    channel = request.default_channel
    if channel is not None and channel not in spec.channels:
        msg = f"--channel {channel!r}: allowed: {', '.join(spec.channels)}"
        raise ValidationError(msg)
    if channel is None and Column.CHANNEL not in columns:  # the whole file's problem: said once, not per row
        msg = (
            "the file has no channel column, so give the channel with --channel "
            f"(allowed: {', '.join(spec.channels)}) or name its column with --map channel=HEADER"
        )
        raise ValidationError(msg)
    for line, cells in request.rows():
        yield cells, check_row(line, cells, columns, request.headers, spec.categories, spec.channels, channel)


def check_file(
    ctx: ServiceContext,
    request: ImportRequest,
    on_reject: Callable[[Sequence[str], list[RowProblem]], None] | None = None,
) -> ImportReport:
    """Check every row without writing; the report counts good and bad rows and lists the problems."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(request.consultation_id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
    columns = map_columns(request.headers, request.mapping)
    report = ImportReport(columns={c.value: request.headers[i] for c, i in columns.items()})
    for cells, checked in _checked(request, spec, columns):
        report.rows += 1
        if isinstance(checked, list):
            report.invalid += 1
            if len(report.problems) < SHOWN_PROBLEMS:
                report.problems.extend(str(p) for p in checked)
                report.rows_shown += 1
            if on_reject is not None:
                on_reject(cells, checked)
    return report


def refuse_invalid(checked: ImportReport) -> None:
    """Refuse an import with bad rows, listing every problem (by row and column) in one error.

    Raises:
        ValidationError: any row is invalid.
    """
    if not checked.invalid:
        return
    shown = "\n".join(checked.problems)
    more = checked.invalid - checked.rows_shown
    tail = f"\n(and {more} more rows)" if more > 0 else ""
    msg = (
        f"{checked.invalid} of {checked.rows} rows are invalid; nothing was written "
        f"(--skip-invalid imports the {checked.rows - checked.invalid} good rows):\n{shown}{tail}"
    )
    raise ValidationError(msg)


def import_opinions(
    ctx: ServiceContext,
    *,
    acting: str | None,
    request: ImportRequest,
    progress: Callable[[int], None] | None = None,
    checked: ImportReport | None = None,
) -> ImportReport:
    """Check the whole file (unless `checked` tells), then record its good rows in one transaction.

    Raises:
        ValidationError: a bad row (all of them listed) unless `skip_invalid`, or a bad mapping.
        PermissionDeniedError: the acting person may not submit, or is a participant.
    """
    checked = checked or check_file(ctx, request)
    if not request.skip_invalid:
        refuse_invalid(checked)

    def body(change: Change) -> ImportReport:
        if change.acting_role is Role.PARTICIPANT:
            msg = f"{change.actor.name} may submit only their own opinions; imports are for experts and coordinators"
            raise PermissionDeniedError(msg)
        report = ImportReport(rows=checked.rows, invalid=checked.invalid, columns=checked.columns)
        consultation = change.consultation(request.consultation_id)
        spec = change.spec(consultation.id)
        open_round = change.current_round(consultation.id)
        columns = map_columns(request.headers, request.mapping)
        seen: set[str] = set()
        batch: list[IntakeRow] = []

        def write(rows: list[IntakeRow]) -> None:
            fresh_keys = set(rows_keys := [r.key for r in rows]) - change.uow.intake.existing_keys(
                consultation.id, rows_keys
            )
            fresh = [r for r in rows if r.key in fresh_keys]
            report.already += len(rows) - len(fresh)
            if not fresh:
                return
            people = change.uow.intake.participants(fresh, created_by=change.actor.id, now=change.now)
            # Each text sealed once with its participant's key: the live row and its event hold the same.
            texts = change.uow.texts.seal_many([(people[r.participant_key], r.text) for r in fresh])
            ids = change.uow.intake.add_opinions(
                consultation,
                fresh,
                people,
                texts,
                recorded_by=change.actor.id,
                state=spec.initial,
                round_no=open_round.number,
                now=change.now,
            )
            record_submitted(
                change,
                consultation.id,
                spec.initial,
                open_round.number,
                (
                    (
                        oid,
                        {
                            "category": r.category,
                            "channel": r.channel,
                            "participant_id": people[r.participant_key],
                            "intake": {"source": request.source, "row": r.line},
                            "text": text,
                        },
                    )
                    for oid, r, text in zip(ids, fresh, texts, strict=True)
                ),
            )
            change.flush()  # events and reminders of this batch, so memory stays flat
            report.imported += len(ids)

        for _cells, row in _checked(request, spec, columns):
            if isinstance(row, list):
                continue
            if row.key in seen:  # the same row twice in this batch (earlier batches are in the table)
                report.already += 1
                continue
            seen.add(row.key)
            batch.append(row)
            if len(batch) == BATCH:
                write(batch)
                batch, seen = [], set()
                if progress is not None:
                    progress(BATCH)
        if batch:
            write(batch)
            if progress is not None:
                progress(len(batch))
        return report

    return run(
        ctx,
        acting=acting,
        action=Action.SUBMIT_OPINION,
        event="opinions_imported",
        body=body,
        describe=lambda r: {"consultation_id": request.consultation_id, "imported": r.imported, "already": r.already},
    )
