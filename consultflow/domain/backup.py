"""What a backup file is and what a restore did (the store reads and writes the files)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackupFacts:
    """A backup file, checked whole before anything is restored from it."""

    backend: str  # "sqlite" or "postgresql"
    revision: str | None  # the schema revision it was taken at
    schema: str | None = None  # PostgreSQL: the schema it holds
    database: str | None = None  # PostgreSQL: the database it was taken from


@dataclass(frozen=True)
class Restored:
    """What a restore did besides copying the rows: the per-database roles' grants."""

    backend: str
    revision: str | None
    grants: str | None = None  # what happened with the grants to the server, worker and reader roles
