"""`consultflow theme` (list, suggest, progress) and `consultflow opinion theme` (add, remove)."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, table
from consultflow.services.commands.core import OfOpinion
from consultflow.services.commands.themes import Coded, CodeTheme, SuggestThemes, ThemesOf


def _say(state: CliState, zh: str, en: str) -> str:
    return en if state.settings.lang == "en" else zh


@click.group("theme")
def theme_group() -> None:
    """Themes (主题) opinions are coded with: counts, keyword suggestions, % coded per round."""


@theme_group.command("list")
@click.argument("consultation_id", type=ID)
@click.option("--category", help="Only this category (its key or label).")
@json_flag
@pass_state
def theme_list(state: CliState, consultation_id: int, category: str | None) -> None:
    """Every theme of CONSULTATION_ID by category, with its opinions and how many were adopted."""
    found = state.call("theme.list", ThemesOf(consultation_id, category)).themes
    lang = state.settings.lang

    def text() -> str:
        if not found:
            return _say(
                state,
                "尚无主题；用 consultflow opinion theme add 编码",
                "no themes yet; code opinions with 'consultflow opinion theme add'",
            )
        headers = [
            _say(state, h_zh, h_en)
            for h_zh, h_en in (("类别", "category"), ("主题", "theme"), ("意见数", "opinions"), ("采纳", "adopted"))
        ]
        return table(headers, [[t.category_label.get(lang), t.theme, t.opinions, t.adopted] for t in found])

    state.emit(found, text)


@theme_group.command("suggest")
@click.argument("consultation_id", type=ID)
@click.option("--category", help="Only this category's opinions (its key or label).")
@click.option("--top", type=click.IntRange(1, 200), default=20, show_default=True, help="How many keywords.")
@json_flag
@pass_state
def theme_suggest(state: CliState, consultation_id: int, category: str | None, top: int) -> None:
    """Keywords of the opinions' texts, with how many opinions contain each (nothing is coded)."""
    found = state.call("theme.suggest", SuggestThemes(consultation_id, category, top))

    def text() -> str:
        head = _say(
            state,
            f"已读取{found.read}条意见；关键词（TF-IDF）与包含它的意见数：",
            f"{found.read} opinion(s) read; keywords (TF-IDF) and the opinions containing each:",
        )
        headers = [_say(state, "关键词", "keyword"), _say(state, "意见数", "opinions"), _say(state, "权重", "weight")]
        rows = table(headers, [[k.keyword, k.opinions, k.weight] for k in found.keywords])
        hint = _say(
            state,
            f"编码：consultflow opinion theme add --consultation {consultation_id} --matching 关键词 主题",
            f"to code: consultflow opinion theme add --consultation {consultation_id} --matching KEYWORD THEME",
        )
        return f"{head}\n{rows}\n{hint}"

    state.emit(found, text)


@theme_group.command("progress")
@click.argument("consultation_id", type=ID)
@json_flag
@pass_state
def theme_progress(state: CliState, consultation_id: int) -> None:
    """Per round: its opinions, how many carry at least one theme, and the share (% coded)."""
    found = state.call("theme.progress", ThemesOf(consultation_id))

    def text() -> str:
        headers = [
            _say(state, zh, en)
            for zh, en in (("轮次", "round"), ("意见数", "opinions"), ("已编码", "coded"), ("编码率(%)", "% coded"))
        ]
        return table(headers, [[r.round_no, r.opinions, r.coded, r.percent] for r in found.rounds])

    state.emit(found, text)


@click.group("theme")
def opinion_theme_group() -> None:
    """Code opinions with themes (主题编码): add or remove one, on the record."""


def _ids_and_theme(items: tuple[str, ...]) -> tuple[list[int], str]:
    from consultflow.cli.opinion import parse_ids  # noqa: PLC0415 - the opinion group loads this module

    *id_args, theme = items
    ids: list[int] = []
    for arg in id_args:
        parsed = parse_ids(arg)
        if parsed is None:
            msg = f"{arg!r} is not an opinion id or a list such as 12, 3,5,8 or 10-40; the theme comes last"
            raise click.BadParameter(msg, param_hint="OPINION…")
        ids.extend(parsed)
    return list(dict.fromkeys(ids)), theme


def _done(state: CliState, done: Coded) -> str:
    if done.added:
        line = _say(
            state,
            f"主题“{done.theme}”：新增{len(done.changed)}条意见"
            + (f"，{len(done.unchanged)}条已有" if done.unchanged else ""),
            f"theme {done.theme!r}: added to {len(done.changed)} opinion(s)"
            + (f", {len(done.unchanged)} had it already" if done.unchanged else ""),
        )
        if done.matching is not None:
            line += _say(state, f"（文本包含“{done.matching}”）", f" (texts containing {done.matching!r})")
        return line
    return _say(
        state,
        f"主题“{done.theme}”：已从{len(done.changed)}条意见移除",
        f"theme {done.theme!r}: removed from {len(done.changed)} opinion(s)",
    )


@opinion_theme_group.command("add")
@click.argument("items", nargs=-1, required=True, metavar="[OPINION]... THEME")
@click.option("--matching", metavar="KEYWORD", help="Every opinion whose text contains KEYWORD (with --consultation).")
@click.option("--consultation", "consultation_id", type=ID, help="The consultation searched with --matching.")
@click.option("--category", help="With --matching: only this category's opinions.")
@as_option
@json_flag
@pass_state
def opinion_theme_add(
    state: CliState, items: tuple[str, ...], matching: str | None, consultation_id: int | None, category: str | None
) -> None:
    """Code OPINION… (12 13, 3,5,8 or 10-40) with THEME, or every opinion matching a keyword.

    Each opinion coded is an audit event in its history. Nothing is coded automatically: suggestions
    ('theme suggest') only propose keywords.
    """
    ids, theme = _ids_and_theme(items)
    given = CodeTheme(theme, True, tuple(ids), matching, consultation_id, category)
    done = state.call("theme.code", given)
    state.emit(done, lambda: _done(state, done))


@opinion_theme_group.command("remove")
@click.argument("items", nargs=-1, required=True, metavar="OPINION... THEME")
@as_option
@json_flag
@pass_state
def opinion_theme_remove(state: CliState, items: tuple[str, ...]) -> None:
    """Remove THEME from OPINION…; each removal is an audit event in the opinion's history."""
    ids, theme = _ids_and_theme(items)
    done = state.call("theme.code", CodeTheme(theme, False, tuple(ids)))
    state.emit(done, lambda: _done(state, done))


def theme_lines(state: CliState, opinion_id: int) -> tuple[tuple[str, ...], list[str]]:
    """`opinion show`'s themes of an opinion, and its line about them (none coded: no line)."""
    coded: tuple[str, ...] = state.call("theme.of", OfOpinion(opinion_id)).themes
    if not coded:
        return coded, []
    return coded, [_say(state, f"主题：{'、'.join(coded)}", f"themes: {', '.join(coded)}")]
