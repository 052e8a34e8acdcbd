"""Participant groups (参与群体): who took part, by kind, and a population roster to compare against.

A workflow names its groups (`groups:` in the YAML, `{id, label: {zh, en}}`); a workflow file
without `groups:` gets the five kinds of people the county's pilot heard (DEFAULT_GROUPS), so the
bundled workflow and every workflow already stored have them without a new version. A group is
not personal data on its own: it says what kind of person spoke, never who.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Label, resolve_choice

GROUP_ID = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_GROUP_ID = 40

DEFAULT_GROUPS: Mapping[str, Label] = {
    "officials": Label("乡镇干部", "Town and township officials"),
    "companies": Label("企业代表", "Company representatives"),
    "business_leaders": Label("致富带头人", "Local business leaders"),
    "respected_villagers": Label("乡村乡贤", "Respected villagers"),
    "residents": Label("普通群众", "Residents"),
}


def resolve_group(value: str | None, groups: Mapping[str, Label]) -> str | None:
    """The group id `value` names (its id, or its zh or en label), None for a blank one.

    Raises:
        ValidationError: an unknown group, in one line naming the allowed ones.
    """
    if value is None or not value.strip():
        return None
    if not groups:
        msg = "this workflow defines no participant groups; leave --group out"
        raise ValidationError(msg)
    return resolve_choice(value.strip(), groups, "group")


def group_label(group: str | None, groups: Mapping[str, Label], lang: str) -> str:
    """A group's label in `lang`; an id the workflow no longer has shows as itself, none as '未填写/not given'."""
    if group is None:
        return "未填写" if lang == "zh" else "not given"
    found = groups.get(group)
    if found is None:
        return group
    return found.zh if lang == "zh" else found.en


@dataclass(frozen=True)
class RosterLine:
    """One line of a population roster: a group (its id) or a village, and how many people it has."""

    kind: str  # "group" or "village"
    name: str  # the group's id, or the village as written
    population: int


ROSTER_HEADERS = frozenset({"群体", "group", "村", "village", "村庄", "所在村", "名称", "name", "人口", "population"})
MAX_ROSTER_LINES = 10_000


def read_roster(text: str) -> tuple[tuple[str, int], ...]:
    """A roster's lines from CSV text: `NAME,POPULATION` per line, an optional header line.

    Raises:
        ValidationError: a line without two cells, a population that is not a whole number from 1
            up, or no line at all (each naming the line).
    """
    out: list[tuple[str, int]] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, raw in enumerate(reader, start=1):
        cells = [unicodedata.normalize("NFKC", c).strip() for c in raw]
        if not any(cells):
            continue
        if number > MAX_ROSTER_LINES:
            msg = f"the roster has more than {MAX_ROSTER_LINES} lines"
            raise ValidationError(msg)
        if len(cells) < 2 or not cells[0]:
            msg = f"roster line {number}: write NAME,POPULATION (a group or a village, then a whole number)"
            raise ValidationError(msg)
        if number == 1 and cells[0].casefold() in ROSTER_HEADERS and not cells[1].isdigit():
            continue  # the header
        if not cells[1].isdigit() or int(cells[1]) < 1:
            msg = f"roster line {number}: population {cells[1]!r} is not a whole number from 1 up"
            raise ValidationError(msg)
        out.append((cells[0][:120], int(cells[1])))
    if not out:
        msg = "the roster has no lines: write NAME,POPULATION per line (a group or a village)"
        raise ValidationError(msg)
    return tuple(out)


def classify_roster(lines: Sequence[tuple[str, int]], groups: Mapping[str, Label]) -> tuple[RosterLine, ...]:
    """Roster lines as groups or villages.

    A name that is one of the groups (id or label) is that group; any other name is a village.

    Raises:
        ValidationError: a name given twice, a population below 1.
    """
    out: list[RosterLine] = []
    seen: set[tuple[str, str]] = set()
    for written, population in lines:
        if population < 1:
            msg = f"roster: population of {written!r} must be a whole number from 1 up"
            raise ValidationError(msg)
        kind, name = "village", written.strip()
        if groups:
            with contextlib.suppress(ValidationError):
                kind, name = "group", resolve_choice(written, groups, "group")
        if (kind, name) in seen:
            msg = f"roster: {written!r} is given twice"
            raise ValidationError(msg)
        seen.add((kind, name))
        out.append(RosterLine(kind, name, population))
    return tuple(out)


@dataclass(frozen=True)
class Representation:
    """A roster line against who took part: shares in percent, and the gap in percentage points."""

    kind: str
    name: str
    population: int
    population_share: float
    participants: int
    participant_share: float

    @property
    def gap(self) -> float:
        """Participants' share minus the population's, in percentage points (negative: fewer took part)."""
        return round(self.participant_share - self.population_share, 1)

    @property
    def under_represented(self) -> bool:
        """Fewer of them took part than their share of the population."""
        return self.participant_share < self.population_share


def compare(roster: tuple[RosterLine, ...], people: Mapping[tuple[str, str], int]) -> tuple[Representation, ...]:
    """Each roster line's share of the population against its share of the participants.

    The population's share is among the lines of its kind; the participants' among those whose
    group (or village) the roster lists. `people` counts participants by (kind, name).
    """
    out = []
    for kind in ("group", "village"):
        lines = [r for r in roster if r.kind == kind]
        population = sum(r.population for r in lines)
        took_part = sum(people.get((kind, r.name), 0) for r in lines)
        for r in lines:
            n = people.get((kind, r.name), 0)
            out.append(
                Representation(
                    kind,
                    r.name,
                    r.population,
                    _pct(r.population, population),
                    n,
                    _pct(n, took_part),
                )
            )
    return tuple(out)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0
