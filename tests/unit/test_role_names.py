"""The names of a database's roles: scoped to database and schema, safe to quote, at most 63 bytes."""

from __future__ import annotations

import pytest

from consultflow.domain.errors import ValidationError
from consultflow.domain.identity import checked_login
from consultflow.store.roles import role_names, scoped_role, scram_verifier


def test_names_carry_the_database_and_the_schema_unless_public() -> None:
    """Each database, and each schema but public, has its own server, worker and reader roles: no login is shared."""
    assert role_names("county", "public") == {
        "server": "cf_county_server",
        "worker": "cf_county_worker",
        "reader": "cf_county_reader",
    }
    assert scoped_role("test", "cf_0123456789ab", "reader") == "cf_test_cf_0123456789ab_reader"
    assert scoped_role("county_a", "public", "server") != scoped_role("county_b", "public", "server")
    assert scoped_role("county", "a", "server") != scoped_role("county", "b", "server")


@pytest.mark.parametrize(
    ("database", "schema"),
    [("县-A", "public"), ("County", "Plans 2026"), ("x" * 63, "y" * 63), ('a"; DROP ROLE x; --', "public")],
)
def test_odd_or_long_names_are_sanitised_hashed_and_short(database: str, schema: str) -> None:
    """Role names from odd or long database and schema names are safe to quote, at most 63 bytes, end in their kind."""
    for kind in ("server", "worker", "reader"):
        name = scoped_role(database, schema, kind)
        assert checked_login(name) == name  # only a-z, 0-9, _ : safe inside double quotes
        assert len(name.encode()) <= 63
        assert name.endswith(f"_{kind}")


def test_names_that_sanitise_alike_stay_apart() -> None:
    """Two databases whose names sanitise or shorten alike still get roles of their own."""
    assert scoped_role("county-a", "public", "server") != scoped_role("county_a", "public", "server")
    assert scoped_role("x" * 70 + "1", "public", "server") != scoped_role("x" * 70 + "2", "public", "server")


def test_an_unknown_kind_is_refused() -> None:
    """Asking for a role of a kind that does not exist is refused."""
    with pytest.raises(ValidationError, match="unknown role kind"):
        scoped_role("county", "public", "owner")


def test_the_scram_verifier_has_postgresqls_shape() -> None:
    """A role's password is stored as a SCRAM-SHA-256 verifier in the form PostgreSQL accepts."""
    verifier = scram_verifier("secret", salt=b"0123456789abcdef")
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    assert rest.startswith("4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert scram_verifier("secret", salt=b"0123456789abcdef") == verifier
    assert scram_verifier("other", salt=b"0123456789abcdef") != verifier
