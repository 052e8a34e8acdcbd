"""Registered commands: themes opinions are coded with, their suggestions and progress, and the county's brief."""

from __future__ import annotations

from dataclasses import dataclass

from consultflow.domain.roles import Action
from consultflow.services import brief, themes
from consultflow.services.brief import BriefFigures
from consultflow.services.commands.core import STAFF, OfOpinion, _roles, command
from consultflow.services.context import ServiceContext
from consultflow.services.themes import Coded, RoundCoding, Suggestions, ThemeCount

__all__ = [
    "BriefFigures",
    "BriefOf",
    "CodeTheme",
    "Coded",
    "CodingProgress",
    "OpinionThemes",
    "SuggestThemes",
    "ThemeCounts",
    "ThemesOf",
]


@dataclass(frozen=True)
class CodeTheme:
    """Add a theme to opinions (named, or whose text contains a keyword), or remove it."""

    theme: str
    add: bool = True
    opinion_ids: tuple[int, ...] = ()
    matching: str | None = None
    consultation_id: int | None = None
    category: str | None = None


@command("theme.code", "Add a theme to opinions (or every opinion containing a keyword), or remove it; audited.",
         input=CodeTheme, output=Coded, roles=_roles(Action.CODE_THEMES), writes=True)  # fmt: skip
def _code(ctx: ServiceContext, acting: str | None, given: CodeTheme) -> Coded:
    return themes.code(
        ctx,
        acting=acting,
        theme=given.theme,
        add=given.add,
        opinion_ids=given.opinion_ids,
        matching=given.matching,
        consultation_id=given.consultation_id,
        category=given.category,
    )


@dataclass(frozen=True)
class ThemesOf:
    """A consultation's themes (of one category)."""

    consultation_id: int
    category: str | None = None


@dataclass(frozen=True)
class ThemeCounts:
    """Every theme, by category, with its opinions and adopted opinions."""

    themes: tuple[ThemeCount, ...]


@command("theme.list", "A consultation's themes by category, with how many opinions (and adopted) each codes.",
         input=ThemesOf, output=ThemeCounts, roles=STAFF, writes=False)  # fmt: skip
def _list(ctx: ServiceContext, _acting: str | None, given: ThemesOf) -> ThemeCounts:
    return ThemeCounts(tuple(themes.theme_counts(ctx, given.consultation_id, given.category)))


@dataclass(frozen=True)
class SuggestThemes:
    """Keywords of a consultation's opinions (of one category), the top few."""

    consultation_id: int
    category: str | None = None
    top: int = 20


@command("theme.suggest", "Keywords of the opinions' texts (jieba, TF-IDF) with how many opinions contain each.",
         input=SuggestThemes, output=Suggestions, roles=STAFF, writes=False)  # fmt: skip
def _suggest(ctx: ServiceContext, _acting: str | None, given: SuggestThemes) -> Suggestions:
    return themes.suggest(ctx, given.consultation_id, category=given.category, top=given.top)


@dataclass(frozen=True)
class CodingProgress:
    """Per round: its opinions, how many carry a theme, the share."""

    consultation_id: int
    rounds: tuple[RoundCoding, ...]


@command("theme.progress", "Per round, the share of its opinions coded with at least one theme.",
         input=ThemesOf, output=CodingProgress, roles=STAFF, writes=False)  # fmt: skip
def _progress(ctx: ServiceContext, _acting: str | None, given: ThemesOf) -> CodingProgress:
    return CodingProgress(given.consultation_id, tuple(themes.progress(ctx, given.consultation_id)))


@dataclass(frozen=True)
class OpinionThemes:
    """The themes one opinion is coded with."""

    opinion_id: int
    themes: tuple[str, ...]


@command("theme.of", "The themes one opinion is coded with (for opinion show).", input=OfOpinion,
         output=OpinionThemes, roles=STAFF, writes=False)  # fmt: skip
def _of(ctx: ServiceContext, _acting: str | None, given: OfOpinion) -> OpinionThemes:
    return OpinionThemes(given.opinion_id, themes.opinion_themes(ctx, given.opinion_id))


@dataclass(frozen=True)
class BriefOf:
    """The consultation whose brief is written."""

    consultation_id: int


@command("report.brief", "The figures of the county's brief (汇报): totals, categories, outcomes, rounds, themes.",
         input=BriefOf, output=BriefFigures, roles=STAFF, writes=False)  # fmt: skip
def _brief(ctx: ServiceContext, _acting: str | None, given: BriefOf) -> BriefFigures:
    return brief.brief_figures(ctx, given.consultation_id)
