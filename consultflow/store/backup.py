"""Backups and restores: SQLite's online backup API, PostgreSQL's pg_dump and pg_restore.

The only place those tools run. A backup is written to a hidden file beside its destination,
created exclusively with mode 0600 (it holds personal data), and only given its name once it is
complete; the caller reads it back (SQLite: the file itself; PostgreSQL: exactly the snapshot
pg_dump read, through `SET TRANSACTION SNAPSHOT`) to verify it before it is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from consultflow.domain.backup import BackupFacts, Restored
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import display_url, make_engine, normalize_url, sqlite_file
from consultflow.store.migrate import SCHEMA_HEAD
from consultflow.store.roles import role_names

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<rest>.*)$")
_GRANT = re.compile(r"^GRANT (?P<what>.+) ON (?P<on>.+) TO (?P<to>\S+?)(?P<option> WITH GRANT OPTION)?;$")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _private_file(path: Path) -> None:
    """Create `path` empty, mode 0600, refusing one that exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(16)
    except FileNotFoundError:
        msg = f"backup file {path} does not exist"
        raise ValidationError(msg) from None
    except OSError as exc:
        msg = f"cannot read backup file {path}: {exc.strerror}"
        raise ValidationError(msg) from None


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@dataclass
class TakenBackup:
    """A backup written to its hidden file, with a database that reads exactly what it holds."""

    partial: Path
    target: Path
    force: bool
    database: SqlDatabase
    revision: str | None
    _after: list[Any] = field(default_factory=list)
    kept: Path | None = None

    def keep(self, *, verified: bool) -> Path:
        """Give the file its name (`FILE`, or `FILE.failed` when it did not verify) and return it.

        Raises:
            ValidationError: FILE appeared meanwhile (without --force): the backup stays as FILE.failed.
        """
        self.database.dispose()
        for finish in self._after:
            finish()
        self._after.clear()
        _fsync(self.partial)
        if not verified:
            failed = self.target.with_name(self.target.name + ".failed")
            self.partial.replace(failed)
            self.kept = failed
            return failed
        if self.force:
            self.partial.replace(self.target)
        else:
            try:
                os.link(self.partial, self.target)  # never over a file that appeared meanwhile
            except FileExistsError:
                msg = f"{self.target} appeared while the backup was taken; give --force to replace it"
                raise ValidationError(msg) from None
            self.partial.unlink()
        self.kept = self.target
        return self.target


class SqlBackups:
    """Backups of one database (its URL), and restores into it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite = sqlite_file(url)

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return "sqlite" if self._sqlite is not None else "postgresql"

    # Taking a backup

    @contextlib.contextmanager
    def take(self, path: Path, *, force: bool) -> Iterator[TakenBackup]:
        """Write a backup of the database to a hidden file beside `path`; yield it to be verified and kept.

        Raises:
            ValidationError: `path` exists (without `force`), or its folder cannot be written.
            ConfigurationError: pg_dump is missing or failed.
        """
        if path.is_dir():
            msg = f"{path} is a folder; give the backup file's name"
            raise ValidationError(msg)
        if path.exists() and not force:
            msg = f"{path} exists; give --force to replace it (a backup is never written over by accident)"
            raise ValidationError(msg)
        partial = path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}")
        try:
            _private_file(partial)
        except OSError as exc:
            msg = f"cannot write the backup beside {path}: {exc.strerror}"
            raise ValidationError(msg) from None
        taken: TakenBackup | None = None
        try:
            if self._sqlite is not None:
                taken = self._take_sqlite(self._sqlite, partial, path, force)
                yield taken
            else:
                with self._take_postgres(partial, path, force) as taken:
                    yield taken
        finally:
            if taken is not None:
                taken.database.dispose()
                for finish in taken._after:  # noqa: SLF001 - its own clean-up
                    finish()
            if taken is None or taken.kept is None:
                partial.unlink(missing_ok=True)

    def _take_sqlite(self, source: Path, partial: Path, target: Path, force: bool) -> TakenBackup:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # one step: one read snapshot, every committed transaction (WAL too)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
        except sqlite3.DatabaseError as exc:
            msg = f"cannot back up {source}: {exc}"
            raise ConfigurationError(msg) from None
        finally:
            src.close()
        revision = _sqlite_revision(partial)

        def single_file() -> None:  # verifying opened it in WAL mode: make it one file again
            conn = sqlite3.connect(partial)
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
            finally:
                conn.close()

        taken = TakenBackup(partial, target, force, SqlDatabase.from_url(f"sqlite:///{partial}"), revision)
        taken._after.append(single_file)  # noqa: SLF001
        return taken

    @contextlib.contextmanager
    def _take_postgres(self, partial: Path, target: Path, force: bool) -> Iterator[TakenBackup]:
        engine = make_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")  # noqa: PLW2901
                with conn.begin():
                    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
                    if schema is None:
                        msg = f"no schema on the search_path of {display_url(self.url)!r} exists"
                        raise ConfigurationError(msg)
                    with partial.open("wb") as out:
                        _run(
                            "pg_dump",
                            ["--format=custom", f"--snapshot={snapshot}", f"--schema={_quote(schema)}"],
                            self.url,
                            stdout=out,
                        )
                    reader = _snapshot_database(self.url, snapshot)
                    taken = TakenBackup(partial, target, force, reader, reader.schema_revision())
                    yield taken
                    reader.dispose()
        finally:
            engine.dispose()

    # Restoring

    def inspect(self, path: Path) -> BackupFacts:
        """Check a backup file whole (readable to its end, a consultflow backup, for this backend).

        Raises:
            ValidationError: missing, damaged or truncated, of the other backend, or not consultflow's.
            ConfigurationError: pg_restore is missing.
        """
        magic = _magic(path)
        if magic.startswith(SQLITE_MAGIC):
            if self._sqlite is None:
                msg = (
                    f"{path} is a SQLite backup; this database is PostgreSQL "
                    "(restore it into a SQLite file: --db FILE.sqlite)"
                )
                raise ValidationError(msg)
            return BackupFacts("sqlite", _checked_sqlite(path))
        if magic.startswith(PG_MAGIC):
            if self._sqlite is not None:
                msg = (
                    f"{path} is a PostgreSQL backup (pg_dump); this database is a SQLite file "
                    "(restore it into PostgreSQL: --db postgresql://…)"
                )
                raise ValidationError(msg)
            return _checked_dump(path, self.url)
        msg = f"{path} is not a consultflow backup (neither a SQLite database nor a pg_dump archive)"
        raise ValidationError(msg)

    def restore(self, path: Path, *, force: bool) -> Restored:
        """Restore `path` into this database, which must hold no tables unless `force`.

        Raises:
            ValidationError: the backup is unusable (see `inspect`), or the database is not empty.
            ConfigurationError: pg_restore is missing or failed (nothing was restored).
        """
        facts = self.inspect(path)
        if facts.revision is not None and facts.revision.isdigit() and int(facts.revision) > int(SCHEMA_HEAD):
            msg = (
                f"{path} is at schema revision {facts.revision}, newer than this consultflow's {SCHEMA_HEAD}; "
                "restore it with the consultflow that took it"
            )
            raise ValidationError(msg)
        if self._sqlite is not None:
            self._restore_sqlite(path, self._sqlite, force=force)
            return Restored("sqlite", facts.revision)
        return self._restore_postgres(path, facts, force=force)

    def _restore_sqlite(self, path: Path, target: Path, *, force: bool) -> None:
        if target.exists() and not force:
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
            try:
                tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                msg = f"cannot read {target}: {exc}"
                raise ValidationError(msg) from None
            finally:
                conn.close()
            if tables:
                msg = f"{target} is not empty ({tables} tables); restore into a new file, or give --force to replace it"
                raise ValidationError(msg)
        src = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            dst = sqlite3.connect(target, timeout=30)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
            finally:
                dst.close()
        finally:
            src.close()

    def _restore_postgres(self, path: Path, facts: BackupFacts, *, force: bool) -> Restored:
        assert facts.schema is not None
        source = facts.schema
        engine = make_engine(self.url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                database, schema = _target(conn)
                relations = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
                    ),
                    {"s": schema},
                ).scalar_one()
                if relations and not force:
                    msg = (
                        f"schema {schema} of database {database} is not empty ({relations} tables and sequences); "
                        "restore into an empty database or schema, or give --force to replace it"
                    )
                    raise ValidationError(msg)
                if source != schema and _schema_exists(conn, source):
                    msg = (
                        f"the backup holds schema {source}, which exists in database {database} beside {schema}; "
                        f"restore into another database, or into schema {source} itself"
                    )
                    raise ValidationError(msg)
                holding = None
                if _schema_exists(conn, schema):
                    holding = f"cf_restore_{secrets.token_hex(6)}"
                    conn.exec_driver_sql(f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(holding)}")
                conn.exec_driver_sql(f"CREATE SCHEMA {_quote(source)}")
            try:
                with tempfile.TemporaryDirectory() as work:
                    listing = Path(work) / "restore.list"
                    entries = _run("pg_restore", ["--list", str(path)], self.url, connect=False).splitlines()
                    listing.write_text("\n".join(e for e in entries if _restored(e)) + "\n", encoding="utf-8")
                    _run(
                        "pg_restore",
                        [
                            "--no-owner",
                            "--no-privileges",
                            "--single-transaction",
                            "--exit-on-error",
                            f"--use-list={listing}",
                            str(path),
                        ],
                        self.url,
                    )
                    acl = Path(work) / "acl.list"
                    acl.write_text("\n".join(e for e in entries if _is_acl(e)) + "\n", encoding="utf-8")
                    acl_sql = _run("pg_restore", [f"--use-list={acl}", "--file=-", str(path)], self.url, connect=False)
            except BaseException:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_quote(source)} CASCADE")
                    if holding is not None:
                        conn.exec_driver_sql(f"ALTER SCHEMA {_quote(holding)} RENAME TO {_quote(schema)}")
                raise
            with engine.begin() as conn:
                if holding is not None:
                    conn.exec_driver_sql(f"DROP SCHEMA {_quote(holding)} CASCADE")
                if source != schema:
                    conn.exec_driver_sql(f"ALTER SCHEMA {_quote(source)} RENAME TO {_quote(schema)}")
            with engine.begin() as conn:
                grants = _regrant(conn, acl_sql, facts, database, schema)
        finally:
            engine.dispose()
        return Restored("postgresql", facts.revision, grants)


def _target(conn: Connection) -> tuple[str, str]:
    """The target database, and the schema the URL's search_path names first (it may not exist yet)."""
    database, schema, path = conn.execute(
        text("SELECT current_database(), current_schema(), current_setting('search_path')")
    ).one()
    if schema is not None:
        return str(database), str(schema)
    for item in str(path).split(","):
        name = item.strip()
        if name and name != '"$user"':
            return str(database), name.strip('"') if name.startswith('"') else name.lower()
    msg = "the database URL's search_path names no schema"
    raise ConfigurationError(msg)


def _schema_exists(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": name}).first())


def _desc(entry: str) -> str | None:
    found = _TOC_ENTRY.match(entry)
    return found.group("rest") if found else None


def _restored(entry: str) -> bool:
    """TOC entries pg_restore restores: not the schema (made beforehand), not its comment, not privileges."""
    rest = _desc(entry)
    if rest is None:
        return False
    return not rest.startswith(("SCHEMA ", "ACL ", "DEFAULT ACL ", "COMMENT - SCHEMA "))


def _is_acl(entry: str) -> bool:
    rest = _desc(entry)
    return rest is not None and rest.startswith("ACL ")


def _regrant(conn: Connection, acl_sql: str, facts: BackupFacts, database: str, schema: str) -> str:
    """Give this database's three roles what the backup's roles had; say what was done."""
    assert facts.schema is not None
    assert facts.database is not None
    source_roles = role_names(facts.database, facts.schema)
    target_roles = role_names(database, schema)
    renamed = {source_roles[kind]: target_roles[kind] for kind in source_roles}
    statements = []
    for line in acl_sql.splitlines():
        found = _GRANT.match(line.strip())
        if found is None or found.group("to").strip('"') not in renamed:
            continue  # only the per-database roles' grants: owners and other logins are not carried over
        on = _reschema(found.group("on"), facts.schema, schema)
        to = _quote(renamed[found.group("to").strip('"')])
        statements.append(f"GRANT {found.group('what')} ON {on} TO {to}{found.group('option') or ''}")
    wanted = sorted(target_roles.values())
    present = set(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": wanted}).scalars())
    missing = [r for r in wanted if r not in present]
    if missing:
        return (
            f"no grants given: this database's roles {', '.join(missing)} do not exist; as a cluster superuser run "
            f"'consultflow --db URL db roles --sql | psql -d {database}', then "
            f"'consultflow --db URL db restore FILE --grants-only'"
        )
    for statement in statements:
        conn.exec_driver_sql(statement)
    if renamed == {r: r for r in renamed}:
        return f"{len(statements)} grants to {', '.join(wanted)} restored as they were"
    return (
        f"{len(statements)} grants of the backup's roles ({', '.join(sorted(renamed))}) given to this database's "
        f"roles ({', '.join(wanted)}); the backup's roles got nothing here"
    )


def _reschema(on: str, source: str, target: str) -> str:
    if source == target:
        return on
    for name in {source, _quote(source)}:
        on = re.sub(rf"(?<![\w\"$]){re.escape(name)}(?=\.|$)", _quote(target), on)
    return on


def grants_only(url: str, path: Path) -> str:
    """Give this database's roles the grants the backup's roles had (after the roles were created)."""
    backups = SqlBackups(url)
    facts = backups.inspect(path)
    if facts.backend != "postgresql":
        msg = "--grants-only is for PostgreSQL backups"
        raise ValidationError(msg)
    with tempfile.TemporaryDirectory() as work:
        entries = _run("pg_restore", ["--list", str(path)], url, connect=False).splitlines()
        acl = Path(work) / "acl.list"
        acl.write_text("\n".join(e for e in entries if _is_acl(e)) + "\n", encoding="utf-8")
        acl_sql = _run("pg_restore", [f"--use-list={acl}", "--file=-", str(path)], url, connect=False)
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            database, schema = _target(conn)
            return _regrant(conn, acl_sql, facts, database, schema)
    finally:
        engine.dispose()


def _snapshot_database(url: str, snapshot: str) -> SqlDatabase:
    """A database whose every transaction reads the exported `snapshot` (read only, repeatable read)."""
    engine = make_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")

    reading: Engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return SqlDatabase(reading)


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").fetchone():
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None
    finally:
        conn.close()


def _checked_sqlite(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
        if result != ["ok"]:
            msg = f"{path} is damaged: {result[0]}"
            raise ValidationError(msg)
        revision = _sqlite_revision(path)
    except sqlite3.DatabaseError as exc:
        msg = f"{path} is damaged or truncated ({exc}); restore another backup"
        raise ValidationError(msg) from None
    if revision is None:
        msg = f"{path} is a SQLite database but not a consultflow backup (no schema revision)"
        raise ValidationError(msg)
    return revision


def _checked_dump(path: Path, url: str) -> BackupFacts:
    """Read the whole archive (a truncated one fails here) and find its schema, source database and revision."""
    try:
        _run("pg_restore", ["--file=/dev/null", str(path)], url, connect=False)
        listing = _run("pg_restore", ["--list", str(path)], url, connect=False)
    except ConfigurationError as exc:
        if "is not installed" in str(exc):
            raise
        msg = f"{path} is damaged or truncated ({str(exc).removeprefix('pg_restore failed: ')}); restore another backup"
        raise ValidationError(msg) from None
    database = None
    schema = None
    for line in listing.splitlines():
        if line.startswith(";") and "dbname:" in line:
            database = line.split("dbname:", 1)[1].strip()
        rest = _desc(line)
        if rest is not None and rest.startswith("TABLE ") and rest.split()[2:3] == ["alembic_version"]:
            schema = rest.split()[1]
    if schema is None or database is None:
        msg = f"{path} is a pg_dump archive but not a consultflow backup (no alembic_version table)"
        raise ValidationError(msg)
    data = _run(
        "pg_restore",
        ["--data-only", f"--schema={schema}", "--table=alembic_version", "--file=-", str(path)],
        url,
        connect=False,
    )
    lines = data.splitlines()
    revision = None
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and i + 1 < len(lines) and lines[i + 1] != "\\.":
            revision = lines[i + 1].strip()
    return BackupFacts("postgresql", revision, schema=schema, database=database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as a libpq connection string (no password in it) and the environment carrying the password."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415 - PostgreSQL only

    parsed = make_url(normalize_url(url))
    params: dict[str, Any] = {"dbname": parsed.database, "host": parsed.host, "port": parsed.port}
    params["user"] = parsed.username
    for key, value in parsed.query.items():
        params[key] = value[-1] if isinstance(value, tuple) else value
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def _run(tool: str, args: list[str], url: str, *, connect: bool = True, stdout: Any = None) -> str:
    """Run pg_dump or pg_restore; its output (unless sent to `stdout`), or one clear refusal."""
    found = shutil.which(tool)
    if found is None:
        msg = f"{tool} is not installed (or not on PATH); install the PostgreSQL client tools (postgresql-client)"
        raise ConfigurationError(msg)
    dsn, env = _libpq(url)
    command = [found, *args]
    if connect:
        command.insert(1, f"--dbname={dsn}")
    done = subprocess.run(  # noqa: S603 - a fixed tool, arguments as a list
        command,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        msg = f"{tool} failed: {_last_line(stderr)}"
        raise ConfigurationError(msg)
    return "" if stdout is not None else done.stdout.decode("utf-8", "replace")
