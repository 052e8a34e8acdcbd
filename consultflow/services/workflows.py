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


def _scan(directory: Path) -> tuple[list[tuple[Path, WorkflowSpec]], list[tuple[Path, str, int, tuple[str, ...]]]]:
    """The folder's usable workflows (each name and version once, with its file) and the files that cannot be used.

    A file that does not validate cannot be used, and neither can two files that give one name
    and version different texts: which of them a new consultation would run on is not for the
    order of file names to decide. The same text twice is one workflow.
    """
    usable: dict[tuple[str, int], tuple[Path, WorkflowSpec]] = {}
    clashed: dict[tuple[str, int], list[Path]] = {}
    broken: list[tuple[Path, str, int, tuple[str, ...]]] = []
    for path in _files(directory):
        try:
            spec = read_file(path)
        except WorkflowInvalidError as exc:
            broken.append((path, path.stem, 0, tuple(exc.problems)))
            continue
        key = (spec.name, spec.version)
        first = usable.get(key)
        if key in clashed or (first is not None and first[1].digest != spec.digest):
            clashed.setdefault(key, [first[0]] if first is not None else []).append(path)
            usable.pop(key, None)
        elif first is None:
            usable[key] = (path, spec)
    for (name, version), paths in clashed.items():
        for path in paths:
            others = ", ".join(p.name for p in paths if p != path)
            problem = f"{name}@{version} is also in {others}, with other content: give one of them a new version"
            broken.append((path, name, version, (problem,)))
    return list(usable.values()), broken


def file_specs(directory: Path) -> list[WorkflowSpec]:
    """Every usable workflow in `directory` (the others are reported by `list_workflows`)."""
    return [spec for _path, spec in _scan(directory)[0]]


def list_workflows(ctx: ServiceContext) -> list[WorkflowListing]:
    """Workflow files in the directory and versions stored in the database."""
    usable, unusable = _scan(ctx.workflows_dir)
    out = {
        (spec.name, spec.version): WorkflowListing(spec.name, spec.version, str(path), False, True)
        for path, spec in usable
    }
    broken = [
        WorkflowListing(name, version, str(path), False, False, problems) for path, name, version, problems in unusable
    ]
    with ctx.uow() as uow:
        for row in uow.workflows.versions():
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
        stored = [spec_for(row) for row in uow.workflows.versions(name)]
    return _choose(ref, file_specs(ctx.workflows_dir), stored, ctx.workflows_dir)


def _choose(ref: str, from_files: list[WorkflowSpec], stored: list[WorkflowSpec], directory: Path) -> WorkflowSpec:
    name, version = parse_ref(ref)
    candidates = {s.version: s for s in from_files if s.name == name}
    candidates.update({s.version: s for s in stored if s.name == name})
    if not candidates:
        known = sorted({s.name for s in from_files})
        msg = f"unknown workflow {name!r}; known: {', '.join(known) or 'none'} (in {directory}){_unusable(directory)}"
        raise NotFoundError(msg)
    if version is None:
        return candidates[max(candidates)]
    if version not in candidates:
        have = ", ".join(str(v) for v in sorted(candidates))
        msg = f"workflow {name!r} has no version {version}; versions: {have}{_unusable(directory)}"
        raise NotFoundError(msg)
    return candidates[version]


def _unusable(directory: Path) -> str:
    """Said with a workflow not found: the files of the folder that could not be used, if any (perhaps it is one)."""
    names = [path.name for path, *_rest in _scan(directory)[1]]
    if not names:
        return ""
    return f"; {', '.join(names)} could not be used: 'consultflow workflow list' says why"


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
        stored = [spec_for(row) for row in uow.workflows.versions(name)]
        spec = _choose(ref, available, stored, directory)  # raises with the list of what exists
        row = uow.workflows.version(spec.name, spec.version)
        assert row is not None  # no file has it, so it was found stored
        return row
    spec = max(from_files, key=lambda s: s.version)
    row = uow.workflows.version(spec.name, spec.version)
    if row is None:
        return uow.workflows.add(spec, now)
    if row.digest != spec.digest:
        msg = (
            f"workflow {spec.key} was edited after consultations started using it; "
            f"they keep the stored copy: give the changed file a new version number"
        )
        raise ValidationError(msg)
    return row
