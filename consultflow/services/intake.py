"""Importing many opinions at once: every row checked, the good ones written, in one pass and one transaction.

Rows are checked and recorded in set-based batches as they are read, so memory does not grow
with the file; every problem is reported at once, each naming its row and column, and by default
a bad row refuses the whole import: the transaction is rolled back and nothing is written. A dry
run checks without writing. A row's key is scoped to its
source (the layout or a named source, and the sheet): a key already recorded with the same content
is counted as already there, with other content it is refused naming the opinion, in the check
(and so in a dry run) too. Totals and signature rows are skipped and said so. Every row of the file
is counted once: imported, already there, refused (by reason) or skipped. Each opinion gets its
`submitted` audit event, naming the file row it came from, with the file's other columns sealed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from consultflow.domain.errors import PermissionDeniedError, ValidationError
from consultflow.domain.intake import (
    PROFILES,
    Column,
    IntakeRow,
    RowProblem,
    Rules,
    Skipped,
    check_row,
    map_columns,
    skip_reason,
)
from consultflow.domain.model import ConsultationRow
from consultflow.domain.roles import Action, Role
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.opinions import record_submitted
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork as Ports

# Re-openable: each call yields (line number, cells) from the start of the file.
RowSource = Callable[[], Iterable[tuple[int, Sequence[str]]]]
BATCH = 1000
SHOWN_PROBLEMS = 200
SHOWN_SKIPPED = 20
ONLINE_PROFILES = frozenset({"wjx", "tencent", "jinshuju"})
ONLINE_CHANNEL = "online_survey"


@dataclass
class ImportReport:
    """What an import found and did: every data row counted once (imported, already, invalid, skipped)."""

    rows: int = 0
    imported: int = 0
    already: int = 0
    invalid: int = 0
    skipped: int = 0  # totals and signature rows: no opinion
    new: int = 0  # rows the check found to import (what a dry run would import)
    contacts_dropped: int = 0  # optional contacts that are none (a typo, no area code): left out, the row kept
    refused: dict[str, int] = field(default_factory=dict)  # invalid rows by reason
    columns: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped_rows: list[str] = field(default_factory=list)
    rows_shown: int = 0
    profile: str | None = None
    header_row: int = 1


@dataclass(frozen=True)
class ImportRequest:
    """An import as asked for."""

    consultation_id: int
    headers: Sequence[str]
    rows: RowSource
    mapping: Mapping[Column, str] = field(default_factory=dict)
    default_channel: str | None = None
    skip_invalid: bool = False
    source: str = "import"  # the file's name, for the audit events
    scope: str = "file\x1f"  # where its row keys belong (consultflow.domain.intake.source_scope)
    profile: str | None = None
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # --map-value
    sheet: str | None = None
    header_row: int = 1


Checked = IntakeRow | list[RowProblem] | Skipped


def _rules(ctx: ServiceContext, request: ImportRequest, spec: WorkflowSpec, columns: Mapping[Column, int]) -> Rules:
    channel = request.default_channel
    if channel is None and request.profile in ONLINE_PROFILES and ONLINE_CHANNEL in spec.channels:
        channel = ONLINE_CHANNEL  # a survey platform's export is the online questionnaire
    if channel is not None and channel not in spec.channels:
        msg = f"--channel {channel!r}: allowed: {', '.join(spec.channels)}"
        raise ValidationError(msg)
    if channel is None and Column.CHANNEL not in columns:  # the whole file's problem: said once, not per row
        msg = (
            "the file has no channel column, so give the channel with --channel "
            f"(allowed: {', '.join(spec.channels)}) or name its column with --map channel=HEADER"
        )
        raise ValidationError(msg)
    return Rules.of(
        spec.categories, spec.channels, channel, values=request.values, scope=request.scope, now=ctx.clock.now(),
        groups=spec.groups,
    )  # fmt: skip


def _columns(request: ImportRequest) -> dict[Column, int]:
    profile = PROFILES.get(request.profile) if request.profile else None
    return map_columns(request.headers, request.mapping, profile)


def _checked(
    request: ImportRequest, rules: Rules, columns: Mapping[Column, int]
) -> Iterable[tuple[Sequence[str], Checked]]:
    for line, cells in request.rows():
        why = skip_reason(cells, columns)
        if why is not None:
            yield cells, Skipped(line, why)
        else:
            yield cells, check_row(line, cells, columns, request.headers, rules)


def _conflict(row: IntakeRow, other: str, request: ImportRequest) -> RowProblem:
    scope = request.scope.replace("\x1f", " / ").rstrip(" /")
    reason = (
        f"its key in source {scope!r} is already {other} with different content; nothing was dropped: "
        "if this file is another source, import it with --source NAME"
    )
    return RowProblem(row.line, "key", reason, "key conflict")


class _Pass:
    """One pass over a file's rows: each counted once, keys looked up batch by batch, new rows handed on.

    `sink` gets each batch of rows to record (none in a check); `on_reject` each refused row. The
    file's own keys are kept as 8-byte digests of the key and of the content with the row's line,
    ~130 bytes a row (100,000 rows: 13 MB), to tell a repeat from the same key saying something else.
    """

    def __init__(
        self,
        request: ImportRequest,
        report: ImportReport,
        on_reject: Callable[[Sequence[str], list[RowProblem]], None] | None,
        refused: set[int] | None,
    ) -> None:
        self.request = request
        self.report = report
        self.on_reject = on_reject
        self.refused = refused
        self.seen: dict[int, int] = {}

    def refuse(self, cells: Sequence[str], problems: list[RowProblem]) -> None:
        report = self.report
        report.invalid += 1
        kind = problems[0].kind or problems[0].column
        report.refused[kind] = report.refused.get(kind, 0) + 1
        if self.refused is not None:
            self.refused.add(problems[0].line)
        if len(report.problems) < SHOWN_PROBLEMS:
            report.problems.extend(str(p) for p in problems)
            report.rows_shown += 1
        if self.on_reject is not None:
            self.on_reject(cells, problems)

    def run(
        self,
        uow: Ports,
        consultation_id: int,
        rules: Rules,
        columns: Mapping[Column, int],
        sink: Callable[[list[IntakeRow]], None] | None = None,
    ) -> None:
        report, request = self.report, self.request
        pending: list[tuple[Sequence[str], IntakeRow]] = []

        def settle() -> None:
            found = uow.intake.recorded(consultation_id, [r for _, r in pending])
            fresh: list[IntakeRow] = []
            for cells, row in pending:
                hit = found.get(row.key)
                if hit is None:
                    report.new += 1
                    fresh.append(row)
                elif hit[1]:
                    report.already += 1
                else:
                    self.refuse(cells, [_conflict(row, f"recorded as opinion {hit[0]}", request)])
            pending.clear()
            if sink is not None and fresh:
                sink(fresh)

        for cells, checked in _checked(request, rules, columns):
            report.rows += 1
            if isinstance(checked, Skipped):
                report.skipped += 1
                if len(report.skipped_rows) < SHOWN_SKIPPED:
                    report.skipped_rows.append(f"row {checked.line} skipped: {checked.reason}")
            elif isinstance(checked, list):
                self.refuse(cells, checked)
            else:
                report.contacts_dropped += checked.contact_dropped
                key, content = _digest(checked.key), _digest(checked.content)
                prior = self.seen.get(key)
                if prior is None:
                    self.seen[key] = content << 32 | checked.line
                    pending.append((cells, checked))
                    if len(pending) == BATCH:
                        settle()
                elif prior >> 32 == content:
                    report.already += 1  # the same row twice in the file
                else:
                    self.refuse(cells, [_conflict(checked, f"row {prior & 0xFFFFFFFF} of this file", request)])
        if pending:
            settle()


def _report(request: ImportRequest, columns: Mapping[Column, int]) -> ImportReport:
    return ImportReport(
        columns={c.value: request.headers[i] for c, i in columns.items()},
        profile=request.profile,
        header_row=request.header_row,
    )


def check_file(
    ctx: ServiceContext,
    request: ImportRequest,
    on_reject: Callable[[Sequence[str], list[RowProblem]], None] | None = None,
    refused: set[int] | None = None,
) -> ImportReport:
    """Check every row without writing (a dry run): the report counts each row once and lists the problems.

    Keys already recorded are looked up batch by batch, so a conflict shows in a dry run too.
    `refused` gets the lines of the rows refused.
    """
    columns = _columns(request)
    report = _report(request, columns)
    with ctx.uow() as uow:
        consultation = uow.consultations.get(request.consultation_id)
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        rules = _rules(ctx, request, spec, columns)
        _Pass(request, report, on_reject, refused).run(uow, consultation.id, rules, columns)
    return report


def _digest(value: str) -> int:
    """A 64-bit digest of a row's key or content (two different rows share one about once in 10^19 pairs)."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


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
        f"(--skip-invalid imports the {checked.new} good rows):\n{shown}{tail}"
    )
    raise ValidationError(msg)


def import_opinions(
    ctx: ServiceContext,
    *,
    acting: str | None,
    request: ImportRequest,
    progress: Callable[[int], None] | None = None,
    on_reject: Callable[[Sequence[str], list[RowProblem]], None] | None = None,
) -> ImportReport:
    """Check and record the file's rows in one pass and one transaction.

    Good rows are recorded batch by batch as they are checked; a bad row (unless `skip_invalid`)
    refuses the whole import at the end, listing every problem, and the transaction is rolled back:
    nothing is written.

    Raises:
        ValidationError: a bad row (all of them listed) unless `skip_invalid`, or a bad mapping.
        PermissionDeniedError: the acting person may not submit, or is a participant.
    """

    def body(change: Change) -> ImportReport:
        if change.acting_role is Role.PARTICIPANT:
            msg = f"{change.actor.name} may submit only their own opinions; imports are for experts and coordinators"
            raise PermissionDeniedError(msg)
        consultation = change.consultation(request.consultation_id)
        spec = change.spec(consultation.id)
        open_round = change.current_round(consultation.id)
        columns = _columns(request)
        rules = _rules(ctx, request, spec, columns)
        report = _report(request, columns)
        intake = {"source": request.source, "sheet": request.sheet, "profile": request.profile}
        intake = {k: v for k, v in intake.items() if v}

        def write(rows: list[IntakeRow]) -> None:
            if report.invalid and not request.skip_invalid:
                return  # refused at the end: the rest is only checked
            _record(change, consultation, spec, open_round.number, rows, intake, report)
            if progress is not None:
                progress(len(rows))

        _Pass(request, report, on_reject, None).run(change.uow, consultation.id, rules, columns, write)
        if not request.skip_invalid:
            refuse_invalid(report)  # rolls back what was recorded
        return report

    return run(
        ctx,
        acting=acting,
        action=Action.SUBMIT_OPINION,
        event="opinions_imported",
        body=body,
        describe=lambda r: {
            "consultation_id": request.consultation_id,
            "imported": r.imported,
            "already": r.already,
            "invalid": r.invalid,
            "skipped": r.skipped,
        },
    )


def _record(
    change: Change,
    consultation: ConsultationRow,
    spec: WorkflowSpec,
    round_no: int,
    fresh: list[IntakeRow],
    intake: Mapping[str, object],
    report: ImportReport,
) -> None:
    uow: Ports = change.uow
    people = uow.intake.participants(fresh, created_by=change.actor.id, now=change.now)
    grouped: dict[str, list[int]] = {}
    for r in fresh:
        if r.group is not None:
            grouped.setdefault(r.group, []).append(people[r.participant_key])
    for group, pids in grouped.items():  # a 群体 column: new people, and those without a group yet, get it
        uow.participation.set_group(pids, group, only_unset=True)
    # Each text sealed once with its participant's key: the live row and its event hold the same.
    texts = uow.texts.seal_many([(people[r.participant_key], r.text) for r in fresh])
    with_fields = [(i, r) for i, r in enumerate(fresh) if r.fields]
    sealed = uow.texts.seal_many([(people[r.participant_key], r.fields_text() or "") for _, r in with_fields])
    fields: list[str | None] = [None] * len(fresh)
    for (i, _r), value in zip(with_fields, sealed, strict=True):
        fields[i] = value
    ids = uow.intake.add_opinions(
        consultation,
        fresh,
        people,
        texts,
        fields,
        recorded_by=change.actor.id,
        state=spec.initial,
        round_no=round_no,
        now=change.now,
    )

    def payload(r: IntakeRow, text: str, sealed_fields: str | None) -> dict[str, object]:
        found: dict[str, object] = {
            "category": r.category,
            "channel": r.channel,
            "participant_id": people[r.participant_key],
            "intake": {
                **intake,
                "row": r.line,
                **({"submitted_at": r.submitted_at.isoformat()} if r.submitted_at else {}),
            },
            "text": text,
        }
        if sealed_fields is not None:
            found["source_fields"] = sealed_fields  # sealed like the text: erasure forgets both
        if r.group is not None:
            found["group"] = r.group  # as the file gave it (the person keeps a group given earlier)
        return found

    record_submitted(
        change,
        consultation.id,
        spec.initial,
        round_no,
        ((oid, payload(r, t, f)) for oid, r, t, f in zip(ids, fresh, texts, fields, strict=True)),
    )
    change.flush()  # events and reminders of this batch, so memory stays flat
    report.imported += len(ids)
