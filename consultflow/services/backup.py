"""Backups that restore: take one and verify what it holds; restore one, upgrade it, verify it.

A backup is only as good as a restore from it, so each ends with `audit verify` of exactly what
was written: every consultation's chain and live rows, the account log, and (given) the signed
heads published earlier. The store does the copying (SQLite's backup API, pg_dump, pg_restore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from consultflow.domain.backup import BackupFacts, Restored
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.heads import SignedHead
from consultflow.services import accounts, heads, verify
from consultflow.services.context import ServiceContext
from consultflow.services.ports import Database


class TakenBackup(Protocol):
    """A backup written (under a hidden name) and a database that reads exactly what it holds."""

    @property
    def database(self) -> Database:
        """Reads the backup's content (SQLite: the file; PostgreSQL: the snapshot pg_dump read)."""

    @property
    def revision(self) -> str | None:
        """The schema revision the backup is at."""

    def keep(self, *, verified: bool) -> Path:
        """Name the file (FILE, or FILE.failed when it did not verify) and return where it is."""


class Backups(Protocol):
    """Backups of the database, and restores into it (SQLite's backup API; pg_dump and pg_restore)."""

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""

    def take(self, path: Path, *, force: bool) -> AbstractContextManager[TakenBackup]:
        """Write a backup beside `path` (mode 0600, exclusively unless `force`) and hold it to be verified.

        Raises:
            ValidationError: `path` exists (without `force`) or cannot be written.
            ConfigurationError: pg_dump is missing or failed.
        """

    def inspect(self, path: Path) -> BackupFacts:
        """Check a backup file whole before anything is written.

        Raises:
            ValidationError: missing, damaged or truncated, of the other backend, or not a consultflow backup.
        """

    def restore(self, path: Path, *, force: bool) -> Restored:
        """Restore into the database, which must be empty unless `force`; nothing is left half-restored.

        Raises:
            ValidationError: an unusable backup, or a database that is not empty.
            ConfigurationError: pg_restore is missing or failed.
        """


@dataclass(frozen=True)
class Verified:
    """`audit verify` of a backup or a restored database."""

    reports: tuple[verify.ChainReport, ...] = ()
    account_log: accounts.AccountChainReport | None = None
    problem: str | None = None  # why it could not be verified at all
    skipped: str | None = None  # not verified: an older schema, which this consultflow does not read

    @property
    def intact(self) -> bool:
        """Whether every chain, the account log and every published head hold (or the check was skipped)."""
        return (
            self.problem is None
            and all(r.intact for r in self.reports)
            and (self.account_log is None or self.account_log.intact)
        )


@dataclass(frozen=True)
class BackupReport:
    """A backup kept (at `path`: FILE, or FILE.failed), and its verification."""

    path: Path
    backend: str
    revision: str | None
    verified: Verified


@dataclass(frozen=True)
class RestoreReport:
    """A restore: the backup's revision, the revision now, the grants, and the verification."""

    backend: str
    revision: str | None
    upgraded_to: str | None
    grants: str | None
    verified: Verified


def check_everything(ctx: ServiceContext, published: Sequence[SignedHead] = ()) -> Verified:
    """Every consultation's chain and live rows, the account log, and the published heads (as audit verify)."""
    head = ctx.database.head_revision()
    revision = ctx.database.schema_revision()
    if revision != head:
        why = (
            f"the backup is at schema revision {revision}, and this consultflow reads {head}: "
            "it is verified when restored (a restore upgrades it first)"
        )
        return Verified(skipped=why)
    try:
        reports = []
        for report in verify.verify_all(ctx):
            problem = heads.against_published(ctx, report.consultation_id, published) if report.intact else None
            if problem is not None:
                broken = verify.BrokenEvent(problem[0], None, None, None, None, None, None, problem[1])
                report = replace(report, intact=False, broken=broken)  # noqa: PLW2901
            reports.append(report)
        log = accounts.verify_account_chain(ctx)
        problem = accounts_problem(ctx, log, published)
        if problem is not None:
            log = replace(log, intact=False, broken_seq=problem[0], problem=problem[1])
    except ConfigurationError as exc:  # a keyed chain, and no key or another one here
        return Verified(problem=str(exc))
    known = {r.consultation_id for r in reports}
    strangers = sorted({h.consultation_id for h in published if h.consultation_id is not None} - known)
    if strangers:
        said = f"published heads name consultation {strangers[0]}, which this backup does not have"
        return Verified(tuple(reports), log, said)
    return Verified(tuple(reports), log)


def accounts_problem(
    ctx: ServiceContext, log: accounts.AccountChainReport, published: Iterable[SignedHead]
) -> tuple[int, str] | None:
    """The account log against its published heads, when its chain holds."""
    return heads.accounts_against_published(ctx, published) if log.intact else None


def backup(
    ctx: ServiceContext, backups: Backups, path: Path, *, force: bool, published: Sequence[SignedHead] = ()
) -> BackupReport:
    """Back the database up to `path`, verify exactly what was written, and keep it (as FILE.failed if it failed)."""
    with backups.take(path, force=force) as taken:
        verified = check_everything(replace(ctx, database=taken.database, read_only=True), published)
        kept = taken.keep(verified=verified.intact)
        return BackupReport(kept, backups.backend, taken.revision, verified)


def restore(
    ctx: ServiceContext, backups: Backups, path: Path, *, force: bool, published: Sequence[SignedHead] = ()
) -> RestoreReport:
    """Restore `path` into the (empty) database, upgrade an older schema, and verify everything restored."""
    ctx.database.dispose()  # no pooled connection outlives the file or schema it had open
    done = backups.restore(path, force=force)
    ctx.database.dispose()
    upgraded = None
    if ctx.database.schema_revision() != ctx.database.head_revision():
        ctx.database.upgrade()
        upgraded = ctx.database.schema_revision()
    return RestoreReport(done.backend, done.revision, upgraded, done.grants, check_everything(ctx, published))
