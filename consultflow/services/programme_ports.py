"""The protocols the participation and programme use cases speak to (the store implements them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from consultflow.domain.model import ConsultationRow


class ProgrammeRow(Protocol):
    """A county programme of areas."""

    id: int
    name: str
    title: str
    created_at: datetime


class Participation(Protocol):
    """Who took part and how often, counted by the database; participants' groups."""

    def by_group_village(
        self, consultation_ids: Sequence[int]
    ) -> list[tuple[int, str | None, str, int, int, int, int]]:
        """Per group and village: (consultation id, group id, village, people, repeat, submissions, replies)."""

    def distribution(self, consultation_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(consultation id, times taken part (4: 4 or more), people)."""

    def people(self, consultation_id: int) -> Iterator[tuple[int, str, str, str | None, int, int]]:
        """(participant id, name, village, group id, submissions, re-participations), most often first, streamed."""

    def participant_ids(self, consultation_id: int) -> Iterator[int]:
        """Everyone who took part, by id, streamed."""

    def consultations_of(self, participant_id: int) -> list[int]:
        """The consultations a participant has opinions in."""

    def groups_of(self, participant_ids: Sequence[int]) -> dict[int, tuple[str | None, bool]]:
        """Each participant's group and whether they were erased."""

    def consultations_of_many(self, participant_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(participant id, consultation id) pairs: where each took part."""

    def set_group(self, participant_ids: Sequence[int], group: str | None, *, only_unset: bool = False) -> list[int]:
        """Give participants a group (only those without one, with `only_unset`); the ids changed."""


class Programmes(Protocol):
    """County programmes and their areas (consultations)."""

    def add(self, *, name: str, title: str, created_by: int, now: datetime) -> ProgrammeRow:
        """A new programme (a taken name refused)."""

    def get(self, ref: str) -> ProgrammeRow:
        """A programme by id or name."""

    def listing(self) -> Sequence[tuple[ProgrammeRow, int]]:
        """Every programme with its number of areas."""

    def areas(self, programme_id: int) -> Sequence[ConsultationRow]:
        """Its consultations, by id."""

    def outcome_counts(self, consultation_ids: Sequence[int]) -> list[tuple[int, str, str | None, int]]:
        """(consultation id, category, outcome, opinions)."""

    def rounds_run(self, consultation_ids: Sequence[int]) -> dict[int, int]:
        """Rounds opened per consultation."""
