"""Database roles per database and schema: the server's, the reminder worker's and analysts'.

Migration 0013 creates three NOLOGIN group roles whose names carry the database and the schema,
so two counties on one cluster (or two schemas in one database) share no grants, and grants each
exactly what its process needs. The owner (the login that runs `db upgrade`) gives logins these
roles with `consultflow db login`; this module holds the names and all the SQL that does it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata

from sqlalchemy import Connection, Engine, text

from consultflow.domain.errors import ConfigurationError, PermissionDeniedError, ValidationError
from consultflow.domain.identity import ROLE_KINDS as KINDS
from consultflow.domain.identity import LoginChange, RoleMembers, checked_login

MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_UNSAFE = re.compile(r"[^a-z0-9_]")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


def scoped_role(database: str, schema: str, kind: str) -> str:
    """The name of this database's and schema's `kind` role: `cf_<database>[_<schema>]_<kind>`.

    The schema is left out when it is `public`. Anything but a-z, 0-9 and _ becomes _; when that
    changed the name, or it is longer than 63 bytes, a short hash of the full database and schema
    names goes before the kind, so two names that sanitise alike never share a role.
    """
    if kind not in KINDS:
        msg = f"unknown role kind {kind!r}; use one of {', '.join(KINDS)}"
        raise ValidationError(msg)
    scope = database if schema == "public" else f"{database}_{schema}"
    plain = f"cf_{scope}"
    clean = _UNSAFE.sub("_", plain.lower())
    if clean == plain and len(clean) + len(kind) + 1 <= MAX_NAME_BYTES:
        return f"{clean}_{kind}"
    digest = hashlib.sha256(f"{database}\x00{schema}".encode()).hexdigest()[:8]
    tail = f"_{digest}_{kind}"
    return clean[: MAX_NAME_BYTES - len(tail)] + tail


def role_names(database: str, schema: str) -> dict[str, str]:
    """Each kind's role name for this database and schema."""
    return {kind: scoped_role(database, schema, kind) for kind in KINDS}


def current_roles(conn: Connection) -> dict[str, str]:
    """The role names for the database and schema `conn` works in."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    if schema is None:
        msg = "no schema is on this login's search_path; consultflow's roles are named after it"
        raise ConfigurationError(msg)
    return role_names(str(database), str(schema))


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """A SCRAM-SHA-256 verifier for `password`, as PostgreSQL stores it (RFC 5802, RFC 7677).

    `CREATE ROLE … PASSWORD` given a verifier stores it as it is, so the password itself never
    reaches the server (nor its statement log). Non-ASCII passwords are NFKC-normalised, as
    SASLprep does.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", unicodedata.normalize("NFKC", password).encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _quoted(literal: str) -> str:
    """A string literal for a utility statement (CREATE ROLE takes no parameters)."""
    return "'" + literal.replace("'", "''") + "'"


class DatabaseRoles:
    """The owner's administration of this database's roles (PostgreSQL only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _postgres(self) -> None:
        if self.engine.dialect.name != "postgresql":
            msg = "database roles exist only on PostgreSQL; a SQLite file is protected by who may open it"
            raise ConfigurationError(msg)

    def members(self) -> list[RoleMembers]:
        """The three roles of this database and schema, with their direct members."""
        self._postgres()
        with self.engine.connect() as conn:
            names = current_roles(conn)
            rows = conn.execute(
                text(
                    "SELECT r.rolname, m.rolname FROM pg_roles r "
                    "LEFT JOIN pg_auth_members a ON a.roleid = r.oid LEFT JOIN pg_roles m ON m.oid = a.member "
                    "WHERE r.rolname = ANY(:names) ORDER BY m.rolname"
                ),
                {"names": list(names.values())},
            ).all()
        found: dict[str, list[str]] = {}
        for role, member in rows:
            found.setdefault(role, [])
            if member is not None:
                found[role].append(member)
        return [RoleMembers(kind, role, role in found, tuple(found.get(role, ()))) for kind, role in names.items()]

    def creating_sql(self) -> list[str]:
        """What a cluster administrator runs to create this database's roles (the owner then needs no CREATEROLE)."""
        self._postgres()
        with self.engine.connect() as conn:
            names = current_roles(conn)
        return [
            f'DO $$ BEGIN CREATE ROLE "{role}" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;'
            for role in names.values()
        ]

    def createrole_risk(self) -> str | None:
        """A warning when the connected login holds CREATEROLE where that reaches other databases' roles.

        Before PostgreSQL 16, CREATEROLE may grant itself any role that is not a superuser: another
        county's server role on the same cluster, or pg_execute_server_program (a shell as the
        database server's user).
        """
        if self.engine.dialect.name != "postgresql":
            return None
        with self.engine.connect() as conn:
            me, createrole, superuser, version = conn.execute(
                text(
                    "SELECT current_user, rolcreaterole, rolsuper, current_setting('server_version_num')::int "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            ).one()
        if not createrole or superuser or version >= 160000:
            return None
        return (
            f"login {me!r} holds CREATEROLE, which before PostgreSQL 16 lets it take any other database's roles "
            "on this cluster (and run programs as the database server): now that this database's roles exist, "
            f"have a superuser run 'ALTER ROLE \"{me}\" NOCREATEROLE' (see docs/operators/postgresql.md)"
        )

    def may_close_rounds(self) -> bool:
        """Whether this login may run the round-closing use case (it appends audit events); True on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return True
        with self.engine.connect() as conn:
            return bool(conn.execute(text("SELECT has_table_privilege('audit_event', 'INSERT')")).scalar())

    def add_login(self, name: str, kind: str, *, existing: bool, password: str | None) -> LoginChange:
        """Create login `name` holding `kind`'s role (`password`, or a generated one), or grant it to an existing login.

        Raises:
            ValidationError: a malformed name, a login that exists (without `existing`) or does not
                (with it), or a name that is one of consultflow's group roles.
            PermissionDeniedError: the connected login may not create roles or grant this one.
            ConfigurationError: SQLite, or the schema has no roles yet (not upgraded).
        """
        checked_login(name)
        self._postgres()
        with self.engine.begin() as conn:
            role = self._role(conn, kind)
            self._may_administer(conn, name)
            found = conn.execute(
                text("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = :n"), {"n": name}
            ).first()
            generated = None
            if existing:
                if found is None:
                    msg = f"there is no role {name!r} to grant {role} to; leave out --existing to create the login"
                    raise ValidationError(msg)
                if found.rolsuper:
                    msg = f"{name!r} is a superuser, which no role can limit; give the role to a login of its own"
                    raise ValidationError(msg)
            else:
                if found is not None:
                    msg = f"a role named {name!r} exists already; add --existing to give it {role}"
                    raise ValidationError(msg)
                if password is None:
                    password = generated = secrets.token_urlsafe(24)
                if not password:
                    msg = "the password is empty"
                    raise ValidationError(msg)
                # The driver's own execute: the verifier's colons are not bind parameters, and it holds no %.
                conn.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN PASSWORD {_quoted(scram_verifier(password))}')
            conn.execute(text(f'GRANT "{role}" TO "{name}"'))
        return LoginChange(name, (role,), created=not existing, password=generated)

    def revoke_login(self, name: str) -> LoginChange:
        """Take every one of this database's roles from `name` (the login itself stays).

        Raises:
            ValidationError: a malformed name, or a login that holds none of these roles.
        """
        checked_login(name)
        self._postgres()
        with self.engine.begin() as conn:
            names = current_roles(conn)
            self._may_administer(conn, name)
            held = [
                str(r)
                for r in conn.execute(
                    text(
                        "SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
                        "JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = :n AND r.rolname = ANY(:roles) "
                        "ORDER BY r.rolname"
                    ),
                    {"n": name, "roles": list(names.values())},
                ).scalars()
            ]
            if not held:
                msg = f"{name!r} holds none of this database's roles ({', '.join(names.values())}); nothing to revoke"
                raise ValidationError(msg)
            for role in held:
                conn.execute(text(f'REVOKE "{role}" FROM "{name}"'))
        return LoginChange(name, tuple(held), created=False, password=None)

    def _role(self, conn: Connection, kind: str) -> str:
        if kind not in KINDS:
            msg = f"unknown role {kind!r}; use one of {', '.join(KINDS)}"
            raise ValidationError(msg)
        role = current_roles(conn)[kind]
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
            msg = f"this database has no role {role!r} yet; run 'consultflow db upgrade' (migration 0013 creates it)"
            raise ConfigurationError(msg)
        return role

    @staticmethod
    def _may_administer(conn: Connection, name: str) -> None:
        """Refuse consultflow's own roles, the connected login itself, and a login without CREATEROLE."""
        own = current_roles(conn)
        if name in own.values():
            msg = f"{name!r} is one of this database's group roles, not a login"
            raise ValidationError(msg)
        me, may = conn.execute(
            text("SELECT current_user, rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
        if name == me:
            msg = f"{name!r} is the login running this command (the owner); give the roles to other logins"
            raise ValidationError(msg)
        if not may:
            msg = (
                f"login {me!r} may not create or grant roles: run this as the database's owner, "
                "which needs CREATEROLE (ALTER ROLE … CREATEROLE, as a superuser)"
            )
            raise PermissionDeniedError(msg)


LEGACY_GROUPS = ("consultflow_coordinator", "consultflow_staff", "consultflow_auditor", "consultflow_worker")


def legacy_groups_present(conn: Connection) -> bool:
    """Whether the cluster-wide groups of migration 0005 exist.

    A new install by an owner without CREATEROLE never makes them: 0013 replaces them with roles per database.
    """
    found = conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = ANY(:r)"), {"r": list(LEGACY_GROUPS)})
    return int(found.scalar_one()) == len(LEGACY_GROUPS)
