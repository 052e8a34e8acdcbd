"""Registered commands for many opinions at once: importing a file's rows, finding and merging duplicates.

The file itself is read where the person is (the CLI opens CSV or XLSX, detects the encoding and
finds the header); its rows travel to the use case, which checks every row and then records the
good ones in one transaction, as a local import does. Rows refused are handed back, with their
reasons, for the person's rejects file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from consultflow.domain.errors import ValidationError
from consultflow.domain.intake import PROFILES, Column, Profile, RowProblem, map_columns, source_scope
from consultflow.domain.redaction import personal_data_kinds
from consultflow.domain.roles import ACTION_ROLES, Action, Role
from consultflow.domain.similarity import DEFAULT_THRESHOLD
from consultflow.domain.vocabulary import Field
from consultflow.services import duplicates, intake, opinions
from consultflow.services.commands.core import STAFF, command
from consultflow.services.context import ServiceContext
from consultflow.services.duplicates import DuplicateView
from consultflow.services.intake import ImportReport
from consultflow.services.opinions import TransitionResult

__all__ = ["DuplicateGroups", "FindDuplicates", "ImportOutcome", "ImportRows", "MergeOpinions", "Merged", "Rejected"]


@dataclass(frozen=True)
class ImportRows:
    """A table's rows (each with the line the file numbers it by) and how to read them."""

    consultation_id: int
    headers: list[str]
    rows: Sequence[tuple[int, list[str]]]
    mapping: dict[str, str] = field(default_factory=dict)
    channel: str | None = None
    skip_invalid: bool = False
    dry_run: bool = False
    source: str = "import"  # the file's name, for the audit events
    source_name: str | None = None  # --source: where its row keys belong (default: the layout)
    profile: str | None = None  # the layout found or named (wjx, tencent, jinshuju, clerk)
    sheet: str | None = None
    header_row: int = 1
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # --map-value, by field


@dataclass(frozen=True)
class Rejected:
    """A row not imported, and every reason."""

    cells: tuple[str, ...]
    problems: tuple[RowProblem, ...]


@dataclass(frozen=True)
class ImportOutcome:
    """What the import found and did; the refused rows when they are to be written out."""

    report: ImportReport
    rejected: tuple[Rejected, ...] = ()
    dry_run: bool = False
    personal_data: int = 0  # rows whose text holds personal information (masked wherever it is published)


def _columns(mapping: dict[str, str]) -> dict[Column, str]:
    found: dict[Column, str] = {}
    for name, header in mapping.items():
        try:
            found[Column(name)] = header
        except ValueError:
            allowed = ", ".join(c.value for c in Column)
            msg = f"--map takes FIELD=HEADER with FIELD one of: {allowed} (not {name!r})"
            raise ValidationError(msg) from None
    return found


def _submitters() -> frozenset[Role]:
    return ACTION_ROLES[Action.SUBMIT_OPINION] - {Role.SYSTEM}


@command("opinion.import", "Import a table's rows as opinions: every row checked first, nothing twice.",
         input=ImportRows, output=ImportOutcome, roles=_submitters(), writes=True)  # fmt: skip
def _import(
    ctx: ServiceContext, acting: str | None, given: ImportRows, progress: Callable[[int], None] | None = None
) -> ImportOutcome:
    profile = None
    if given.profile is not None:
        profile = PROFILES.get(given.profile)
        if profile is None:
            msg = f"--profile {given.profile!r}: one of {', '.join(PROFILES)}"
            raise ValidationError(msg)
    request = intake.ImportRequest(
        consultation_id=given.consultation_id,
        headers=given.headers,
        rows=lambda: iter(given.rows),
        mapping=_columns(given.mapping),
        default_channel=given.channel,
        skip_invalid=given.skip_invalid,
        source=given.source,
        scope=source_scope(given.source_name, profile, given.sheet),
        profile=profile.name if profile else None,
        values=given.values,
        sheet=given.sheet,
        header_row=given.header_row,
    )
    rejected: list[Rejected] = []
    keep = given.skip_invalid and not given.dry_run  # a refused import lists its problems in the error instead

    def reject(cells: Sequence[str], why: list[RowProblem]) -> None:
        if keep:
            rejected.append(Rejected(tuple(str(c) for c in cells), tuple(why)))

    flagged = _PersonalData(request.headers, request.mapping, profile)

    def rows() -> Iterator[tuple[int, list[str]]]:  # each pass (a retried transaction is another) counts afresh
        rejected.clear()
        flagged.rows = 0
        return flagged.counted(given.rows)

    counted = replace(request, rows=rows)
    if given.dry_run:
        checked = intake.check_file(ctx, counted, on_reject=reject)
        return ImportOutcome(checked, (), dry_run=True, personal_data=flagged.rows)
    report = intake.import_opinions(ctx, acting=acting, request=counted, on_reject=reject, progress=progress)
    return ImportOutcome(report, tuple(rejected), personal_data=flagged.rows)


class _PersonalData:
    """Counts, during the check's pass over the rows, those whose text holds personal information."""

    def __init__(self, headers: Sequence[str], mapping: Mapping[Column, str], profile: Profile | None) -> None:
        self.rows = 0
        self.columns: dict[Column, int] = {}
        with contextlib.suppress(ValidationError):  # a file without a text column: the check says so
            self.columns = map_columns(headers, mapping, profile)

    def counted(self, rows: Sequence[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        text_at, name_at = self.columns.get(Column.TEXT), self.columns.get(Column.NAME)
        for line, cells in rows:
            if text_at is not None and text_at < len(cells):
                name = cells[name_at] if name_at is not None and name_at < len(cells) else None
                self.rows += bool(personal_data_kinds(str(cells[text_at]), name and str(name)))
            yield line, cells


@dataclass(frozen=True)
class FindDuplicates:
    """Near-duplicate groups among a consultation's undecided opinions."""

    consultation_id: int
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class DuplicateGroups:
    """Groups of opinions that say the same thing, per category."""

    groups: tuple[DuplicateView, ...]


@command("opinion.duplicates", "Groups of undecided opinions in one category that say the same thing.",
         input=FindDuplicates, output=DuplicateGroups, roles=STAFF, writes=False)  # fmt: skip
def _duplicates(ctx: ServiceContext, _acting: str | None, given: FindDuplicates) -> DuplicateGroups:
    return DuplicateGroups(tuple(duplicates.find_duplicates(ctx, given.consultation_id, given.threshold)))


@dataclass(frozen=True)
class MergeOpinions:
    """Merge opinions into another of the same consultation (all of them, or none)."""

    opinion_ids: list[int]
    target: int
    text: str = "与同类意见合并办理"


@dataclass(frozen=True)
class Merged:
    """What each merge did."""

    results: tuple[TransitionResult, ...]


@command("opinion.merge", "Merge opinions into another one of the same consultation.", input=MergeOpinions,
         output=Merged, roles=STAFF, writes=True)  # fmt: skip
def _merge(ctx: ServiceContext, acting: str | None, given: MergeOpinions) -> Merged:
    requests = [
        opinions.FireRequest(oid, "merge", {Field.MERGE_TARGET: given.target, Field.TEXT: given.text})
        for oid in given.opinion_ids
    ]
    return Merged(tuple(opinions.fire_many(ctx, acting=acting, requests=requests)))
