"""Workflow files: finding, validating, and pinning the version a consultation runs on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from consultflow.domain.errors import (
    ConfigurationError,
    NotFoundError,
    ValidationError,
    WorkflowInvalidError,
)
from consultflow.domain.workflow import WorkflowSpec
from consultflow.domain.workflow_loader import load_workflow_text
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.ports import UnitOfWork, WorkflowRow


@dataclass(frozen=True)
class WorkflowListing:
    """One workflow version, where it comes from and whether consultations use it."""

    name: str
    version: int
    file: str | None
    stored: bool
    valid: bool
    problems: tuple[str, ...] = ()


def read_file(path: Path) -> WorkflowSpec:
    """Load and validate one workflow file.

    Raises:
        WorkflowInvalidError: with every problem and its path.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise WorkflowInvalidError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise WorkflowInvalidError(str(path), ["not UTF-8 text"]) from None
    return load_workflow_text(text, str(path))


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        msg = f"workflow directory {directory} does not exist; set --workflows or CONSULTFLOW_WORKFLOWS"
        raise ConfigurationError(msg)
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def file_specs(directory: Path) -> list[WorkflowSpec]:
    """Every valid workflow in `directory` (invalid ones are reported by `list_workflows`)."""
    specs = []
    for path in _files(directory):
        try:
            specs.append(read_file(path))
        except WorkflowInvalidError:
            continue
    return specs


def list_workflows(ctx: ServiceContext) -> list[WorkflowListing]:
    """Workflow files in the directory and versions stored in the database."""
    out: dict[tuple[str, int], WorkflowListing] = {}
    broken: list[WorkflowListing] = []
    for path in _files(ctx.workflows_dir):
        try:
            spec = read_file(path)
        except WorkflowInvalidError as exc:
            broken.append(WorkflowListing(path.stem, 0, str(path), False, False, tuple(exc.problems)))
            continue
        out[(spec.name, spec.version)] = WorkflowListing(spec.name, spec.version, str(path), False, True)
    with ctx.uow() as uow:
        for row in uow.consultations.stored_workflows():
            found = out.get((row.name, row.version))
            file = found.file if found else None
            out[(row.name, row.version)] = WorkflowListing(row.name, row.version, file, True, True)
    return sorted(out.values(), key=lambda w: (w.name, w.version)) + broken


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`name` or `name@version`."""
    name, _, version = ref.partition("@")
    if not version:
        return name, None
    if not version.isdigit():
        msg = f"workflow reference {ref!r}: the version after '@' must be a number"
        raise ValidationError(msg)
    return name, int(version)


def find_spec(ctx: ServiceContext, ref: str) -> WorkflowSpec:
    """A workflow by `name[@version]`: the stored copy if there is one, else the file.

    Without a version, the newest version among files and stored copies is taken.
    """
    name, _ = parse_ref(ref)
    with ctx.uow() as uow:
        stored = [spec_for(row) for row in uow.consultations.stored_workflows(name)]
    return _choose(ref, file_specs(ctx.workflows_dir), stored, ctx.workflows_dir)


def _choose(ref: str, from_files: list[WorkflowSpec], stored: list[WorkflowSpec], directory: Path) -> WorkflowSpec:
    name, version = parse_ref(ref)
    candidates = {s.version: s for s in from_files if s.name == name}
    candidates.update({s.version: s for s in stored if s.name == name})
    if not candidates:
        known = sorted({s.name for s in from_files})
        msg = f"unknown workflow {name!r}; known: {', '.join(known) or 'none'} (in {directory})"
        raise NotFoundError(msg)
    if version is None:
        return candidates[max(candidates)]
    if version not in candidates:
        have = ", ".join(str(v) for v in sorted(candidates))
        msg = f"workflow {name!r} has no version {version}; versions: {have}"
        raise NotFoundError(msg)
    return candidates[version]


def pin_workflow(
    uow: UnitOfWork, available: list[WorkflowSpec], directory: Path, *, ref: str, now: datetime
) -> WorkflowRow:
    """The stored row for the workflow a new consultation will run on, storing it if new.

    `available` are the valid workflow files in `directory`. A file whose text differs from the stored copy of the
    same name and version is refused: the opinions in flight keep running on the stored copy, and a
    changed workflow needs a new version.
    """
    name, version = parse_ref(ref)
    from_files = [s for s in available if s.name == name and version in (None, s.version)]
    if not from_files:
        stored = [spec_for(row) for row in uow.consultations.stored_workflows(name)]
        spec = _choose(ref, available, stored, directory)  # raises with the list of what exists
        row = uow.consultations.stored_workflow(spec.name, spec.version)
        assert row is not None  # no file has it, so it was found stored
        return row
    spec = max(from_files, key=lambda s: s.version)
    row = uow.consultations.stored_workflow(spec.name, spec.version)
    if row is None:
        return uow.consultations.add_workflow(spec, now)
    if row.digest != spec.digest:
        msg = (
            f"workflow {spec.key} was edited after consultations started using it; "
            f"they keep the stored copy: give the changed file a new version number"
        )
        raise ValidationError(msg)
    return row
