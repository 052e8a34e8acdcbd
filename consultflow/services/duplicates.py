"""Near-duplicate opinions of one consultation, for the planning team to merge instead of answering each copy."""

from __future__ import annotations

from dataclasses import dataclass

from consultflow.domain.errors import ValidationError
from consultflow.domain.similarity import DEFAULT_THRESHOLD, DuplicateGroup, duplicate_groups
from consultflow.services.context import ServiceContext


@dataclass(frozen=True)
class DuplicateView:
    """One group: its opinions (the lowest id first, the natural merge target) and their texts."""

    category: str
    similarity: float
    opinion_ids: tuple[int, ...]
    texts: tuple[str, ...]


def find_duplicates(
    ctx: ServiceContext, consultation_id: int, threshold: float = DEFAULT_THRESHOLD
) -> list[DuplicateView]:
    """Groups of undecided opinions in the same category whose texts are at least `threshold` alike."""
    if not 0.3 <= threshold <= 1:
        msg = f"--threshold {threshold}: give a similarity from 0.3 to 1 (0.6 finds reworded copies)"
        raise ValidationError(msg)
    with ctx.reading() as uow:
        uow.consultations.get(consultation_id)
        groups: list[DuplicateGroup] = []
        for category in uow.opinions.open_categories(consultation_id):  # one category's texts held at a time
            groups += duplicate_groups(uow.opinions.open_texts(consultation_id, category), threshold)
        groups.sort(key=lambda g: (-len(g.opinion_ids), g.opinion_ids[0]))
        grouped = {i for g in groups for i in g.opinion_ids}
        texts = {oid: text for oid, _category, text in uow.opinions.open_texts(consultation_id) if oid in grouped}
    return [
        DuplicateView(g.category, g.similarity, g.opinion_ids, tuple(texts[i] for i in g.opinion_ids)) for g in groups
    ]
