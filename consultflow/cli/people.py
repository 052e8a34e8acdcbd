"""`consultflow actor` and `consultflow participant`: registering people."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, held_back, local_time, show_held, table
from consultflow.domain.document import Reread
from consultflow.domain.roles import ASSIGNABLE_ROLES, Role
from consultflow.export.text import table_lines
from consultflow.services.commands.accounts import RoleChange
from consultflow.services.commands.core import Nothing
from consultflow.services.commands.people import (
    AddActor,
    AddParticipant,
    BindLogin,
    Erased,
    EraseParticipant,
    ListParticipants,
    LoginBound,
)
from consultflow.services.commands.programmes import SetParticipantGroup
from consultflow.services.people import ParticipantView

ROLE_CHOICE = click.Choice([r.value for r in ASSIGNABLE_ROLES])


@click.group("actor")
def actor_group() -> None:
    """People who act: coordinators, planners, local experts, participants, auditors."""


@actor_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=ROLE_CHOICE,
    help="A role (repeat for several).",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default="zh",
    show_default=True,
    help="Language of their messages.",
)
@click.option("--contact", help="Email or phone for reminders (never logged or shown).")
@click.option(
    "--participant",
    "participant_id",
    type=ID,
    help="For --role participant: the participant record this person is (they act on its opinions only).",
)
@click.option("--login", help="PostgreSQL login that proves this person (granted the group role that fits).")
@as_option
@pass_state
def actor_add(
    state: CliState,
    name: str,
    roles: tuple[str, ...],
    lang: str,
    contact: str | None,
    participant_id: int | None,
    login: str | None,
) -> None:
    """Register NAME. The first person on a new database must be a coordinator."""
    view = state.call("actor.add", AddActor(name, roles, lang, contact, participant_id, login))
    state.emit(view, lambda: f"actor {view.id} {view.name}: {', '.join(view.roles)}")


@actor_group.command("bind")
@click.argument("name")
@click.option("--login", required=True, help="The PostgreSQL login that proves NAME from now on.")
@as_option
@json_flag
@pass_state
def actor_bind(state: CliState, name: str, login: str) -> None:
    """Bind NAME to a PostgreSQL login: that login acts as NAME, and only as NAME (coordinators)."""
    bound: LoginBound = state.call("actor.bind", BindLogin(name, login))
    state.emit(
        {"actor": bound.actor, "login": bound.login, "group": bound.group},
        lambda: f"{bound.actor} is now proven by login {bound.login} (member of {bound.group})",
    )


@actor_group.command("grant")
@click.argument("name")
@click.option("--role", required=True, type=ROLE_CHOICE, help="The role to give.")
@as_option
@pass_state
def actor_grant(state: CliState, name: str, role: str) -> None:
    """Give NAME a role (coordinators); on the account log."""
    done = state.call("role.grant", RoleChange(name, role))
    state.emit(done, lambda: done.done)


@actor_group.command("revoke")
@click.argument("name")
@click.option("--role", required=True, type=ROLE_CHOICE, help="The role to take away.")
@as_option
@pass_state
def actor_revoke(state: CliState, name: str, role: str) -> None:
    """Take a role from NAME (coordinators; the last coordinator keeps theirs); on the account log."""
    done = state.call("role.revoke", RoleChange(name, role))
    state.emit(done, lambda: done.done)


@actor_group.command("list")
@json_flag
@pass_state
def actor_list(state: CliState) -> None:
    """Everyone registered, with their roles."""
    views = list(state.call("actor.list", Nothing()).actors)

    def text() -> str:
        rows = [
            (
                v.id,
                v.name,
                ", ".join(state.label(Role(r).label) for r in v.roles),
                v.lang,
                "yes" if v.has_contact else "no",
            )
            for v in views
        ]
        return table(["id", "name", "roles", "lang", "contact"], rows)

    state.emit(views, text)


@click.group("participant")
def participant_group() -> None:
    """Villagers and groups whose opinions are recorded."""


@participant_group.command("add")
@click.argument("name")
@click.option("--village", required=True, help="Village or area (村/片区).")
@click.option("--contact", help="Phone or email, kept private.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--group", help="Kind of person: 乡镇干部, 企业代表, 致富带头人, 乡村乡贤, 普通群众 (or the ids).")
@click.option("--consultation", "consultation_id", type=int, help="Name --group from this consultation's groups.")
@as_option
@pass_state
def participant_add(
    state: CliState, name: str, village: str, contact: str | None, lang: str, group: str | None,
    consultation_id: int | None,
) -> None:  # fmt: skip
    """Register a participant called NAME."""
    view = state.call("participant.add", AddParticipant(name, village, contact, lang, group, consultation_id))
    shown = f", {view.group}" if view.group else ""
    state.emit(view, lambda: f"participant {view.id} {view.name} ({view.village}{shown})")


@participant_group.command("set-group")
@click.argument("participant_id", type=int)
@click.argument("group")
@click.option("--consultation", "consultation_id", type=int, help="Name GROUP from this consultation's groups.")
@as_option
@json_flag
@pass_state
def participant_set_group(state: CliState, participant_id: int, group: str, consultation_id: int | None) -> None:
    """Change participant PARTICIPANT_ID's group to GROUP ('' clears it); recorded in the audit trail."""
    done = state.call("participant.group", SetParticipantGroup(participant_id, group, consultation_id))

    def said() -> str:
        if not done.changed:
            return f"participant {participant_id} is in group {done.group or '-'} already; nothing changed"
        where = ", ".join(map(str, done.consultations)) or "none yet"
        return (
            f"participant {participant_id}: group {done.previous or '-'} -> {done.group or '-'} "
            f"(recorded in the audit trail of consultation(s) {where})"
        )

    state.emit(done, said)


@participant_group.command("list")
@click.option("--village", help="Only this village.")
@click.option(
    "--names",
    type=click.Choice(["pseudonym", "full"]),
    default="pseudonym",
    show_default=True,
    help="Full names are for coordinators, with --purpose; the read is kept on record.",
)
@click.option(
    "--with-contact",
    is_flag=True,
    help="Include full names and contact details (coordinators, with --purpose; kept on record).",
)
@click.option("--purpose", help="Why personal information is read (required with --names full / --with-contact).")
@as_option
@json_flag
@pass_state
def participant_list(state: CliState, village: str | None, names: str, with_contact: bool, purpose: str | None) -> None:
    """Registered participants, under pseudonyms (张某某) unless a coordinator asks for more."""
    headers = ["id", "name", "village", "registered"] + (["contact"] if with_contact else [])
    personal = with_contact or names == "full"

    def show(views: Iterable[ParticipantView]) -> IO[str] | None:
        rows = Reread(
            lambda: (
                (
                    v.id,
                    v.name + (" (erased)" if v.erased else ""),
                    v.village,
                    local_time(v.created_at, state.settings.tz),
                )
                + ((v.contact,) if with_contact else ())
                for v in views
            )
        )

        def write() -> None:
            state.emit_lines(iter(views), lambda: table_lines(headers, rows))

        if personal:  # shown once the read is on record, after its transaction commits
            return held_back(write)
        write()
        return None

    given = ListParticipants(village, full_names=names == "full", with_contact=with_contact, purpose=purpose)
    show_held(state.stream("participant.list", given, show))


@participant_group.command("erase")
@click.argument("participant_id", type=ID)
@click.option("--reason", required=True, help="Why (e.g. the request's reference); kept in the audit trail.")
@click.option(
    "--same-name-village",
    is_flag=True,
    help="Also erase records with the same name and village (records with the same contact always are).",
)
@click.option("--dry-run", is_flag=True, help="List the records that would be erased; write nothing.")
@click.option(
    "--names",
    type=click.Choice(["pseudonym", "full"]),
    default="pseudonym",
    show_default=True,
    help="With --dry-run: full names, for coordinators with --purpose (kept on record).",
)
@click.option("--purpose", help="Why full names are read (required with --names full).")
@as_option
@json_flag
@pass_state
def participant_erase(
    state: CliState,
    participant_id: int,
    reason: str,
    same_name_village: bool,
    dry_run: bool,
    names: str,
    purpose: str | None,
) -> None:
    """Erase a person on request: every record of them; their opinions stay under a pseudonym.

    Records with the same contact are the same person (with --same-name-village also those with
    the same name and village). Names, contacts and villages go, and their texts are forgotten
    (they read （已删除）).
    """
    given = EraseParticipant(
        participant_id, reason, same_name_village, dry_run, full_names=names == "full", purpose=purpose
    )
    erased: Erased = state.call("participant.erase", given)
    state.emit(erased, lambda: erasure_text(erased))


def erasure_text(erased: Erased) -> str:
    """What `participant erase` prints: each record (erased, or that would be), and what stays."""
    full = any(r.name is not None for r in erased.records)
    shown = ["village"] if erased.dry_run else []  # once erased, there is no village to show
    headers = ["id", "name" if full else "pseudonym", *shown, "opinions", "found by"]
    rows = [
        (
            r.participant_id,
            r.name if r.name is not None else r.pseudonym,
            *([r.village] if erased.dry_run else []),
            r.opinions,
            r.found_by,
        )
        for r in erased.records
    ]
    ids = ", ".join(str(r.participant_id) for r in erased.records)
    count = len(erased.records)
    if erased.dry_run:
        head = f"dry run: would erase {count} participant record(s): {ids} (nothing written)"
        tail = f"{erased.unsealed_texts} text(s) of theirs were recorded before sealing and would stay as written"
    else:
        head = f"erased {count} participant record(s): {ids}; their opinions remain under a pseudonym"
        tail = (
            f"{erased.keys_destroyed} key(s) destroyed: their texts now read （已删除）; "
            f"{erased.unsealed_texts} text(s) recorded before sealing stay as written (the audit trail holds them)"
        )
    return "\n".join([head, table(headers, rows), tail])


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(actor_group)
    main.add_command(participant_group)
