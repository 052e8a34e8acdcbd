"""PNG charts for people who would rather look than read: rounds, category shares, the funnel.

Chinese labels need a CJK font. consultflow uses the first one matplotlib can find (Noto CJK,
WenQuanYi, Source Han, SimHei...); without one it draws English labels and says so, rather than
boxes where the characters should be.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consultflow import extras
from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Lang
from consultflow.domain.redaction import redacted
from consultflow.domain.vocabulary import Outcome
from consultflow.export.files import write_new_file
from consultflow.logconfig import get_logger
from consultflow.services.statistics import FunnelRow, OutcomeRounds

log = get_logger(__name__)

CJK_FONT_HINTS = (
    "CJK",
    "WenQuanYi",
    "Source Han",
    "SimHei",
    "Hei",
    "YaHei",
    "PingFang",
    "AR PL",
    "Droid Sans Fallback",
)
CHARTS = ("rounds", "categories", "funnel")

_CJK_FILE_HINTS = ("wqy", "noto", "cjk", "droidsansfallback", "source-han", "sourcehan", "simhei", "simsun", "msyh")


def available() -> bool:
    """Whether charts can be drawn here (matplotlib, the charts extra, is installed)."""
    return extras.installed(extras.CHARTS)


def require() -> None:
    """Refuse in one line naming the charts extra when matplotlib is not installed.

    Raises:
        ConfigurationError: matplotlib is not installed.
    """
    extras.require(extras.CHARTS)


def cjk_font() -> str | None:
    """The name of an installed font that can draw Chinese, if any."""
    from matplotlib import font_manager  # noqa: PLC0415 - matplotlib loads only for charts

    for font in font_manager.fontManager.ttflist:
        if any(hint in font.name for hint in CJK_FONT_HINTS):
            return str(font.name)
    # matplotlib lists the fonts it found when it first ran, in a cache it does not renew: a font
    # installed since (apt-get install fonts-wqy-microhei) is looked for among the system's files.
    for path in font_manager.findSystemFonts():
        if any(part in path.lower() for part in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    for font in font_manager.fontManager.ttflist:
        if any(hint in font.name for hint in CJK_FONT_HINTS):
            return str(font.name)
    return None


def _pyplot(lang: Lang) -> tuple[Any, Lang]:
    require()
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if lang == "zh":
        font = cjk_font()
        if font is None:
            log.warning("no_cjk_font", hint="install fonts-noto-cjk or fonts-wqy-microhei; drawing English labels")
            lang = "en"
        else:
            plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
            plt.rcParams["axes.unicode_minus"] = False
    return plt, lang


@contextmanager
def _figure(plt: Any, size: tuple[float, float]) -> Iterator[tuple[Any, Any]]:
    """A figure and its axes, closed however drawing ends (pyplot keeps open figures for good)."""
    fig, ax = plt.subplots(figsize=size)
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def _save(fig: Any, path: Path, force: bool) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    write_new_file(path, buffer.getvalue(), force=force)


def rounds_chart(outcomes: Sequence[OutcomeRounds], path: Path, lang: Lang = "zh", *, force: bool = False) -> Lang:
    """Grouped bars: for each number of rounds, how many opinions reached each outcome."""
    plt, lang = _pyplot(lang)
    most = max((max(o.histogram, default=0) for o in outcomes), default=0)
    xs = list(range(1, most + 1))
    with _figure(plt, (7, 4)) as (fig, ax):
        width = 0.8 / max(len(outcomes), 1)
        for i, o in enumerate(outcomes):
            ax.bar(
                [x + (i - (len(outcomes) - 1) / 2) * width for x in xs],
                [o.histogram.get(x, 0) for x in xs],
                width,
                label=Outcome(o.outcome).label.get(lang),
            )
        ax.set_xticks(xs, [f"{x}轮" if lang == "zh" else str(x) for x in xs])
        ax.set_xlabel("办理轮次" if lang == "zh" else "Rounds to outcome")
        ax.set_ylabel("意见数" if lang == "zh" else "Opinions")
        ax.set_title("各结果所经历的轮次" if lang == "zh" else "Rounds each opinion went through")
        ax.legend()
        _save(fig, path, force)
    return lang


def category_chart(
    shares: Sequence[tuple[str, str, int]], path: Path, lang: Lang = "zh", *, force: bool = False
) -> Lang:
    """A pie of opinions by category; `shares` holds (zh label, en label, count).

    Raises:
        ValidationError: there is nothing to draw (no opinions yet).
    """
    if not any(n for _zh, _en, n in shares):
        msg = "the consultation has no opinions yet, so there are no category shares to draw"
        raise ValidationError(msg)
    plt, lang = _pyplot(lang)
    with _figure(plt, (6, 6)) as (fig, ax):
        # Labels come from the workflow file, yet a chart is published: redacted like every published text.
        labels = [redacted(zh if lang == "zh" else en) for zh, en, _ in shares]
        ax.pie([n for _, _, n in shares], labels=labels, autopct="%1.1f%%", startangle=90, counterclock=False)
        ax.set_title("意见类别占比" if lang == "zh" else "Opinions by category")
        _save(fig, path, force)
    return lang


def funnel_chart(rows: Sequence[FunnelRow], path: Path, lang: Lang = "zh", *, force: bool = False) -> Lang:
    """Grouped bars per round: entered, got feedback, re-participated, decided, carried over."""
    plt, lang = _pyplot(lang)
    steps = [
        ("entered", "进入本轮", "Entered"),
        ("feedback", "获得反馈", "Got feedback"),
        ("reparticipated", "再参与", "Re-participated"),
        ("decided", "办结", "Decided"),
        ("carried_over", "转入下一轮", "Carried over"),
    ]
    with _figure(plt, (8, 4)) as (fig, ax):
        width = 0.8 / len(steps)
        xs = [r.round_no for r in rows]
        for i, (attr, zh, en) in enumerate(steps):
            ax.bar(
                [x + (i - 2) * width for x in xs],
                [getattr(r, attr) for r in rows],
                width,
                label=zh if lang == "zh" else en,
            )
        ax.set_xticks(xs, [f"第{x}轮" if lang == "zh" else f"Round {x}" for x in xs])
        ax.set_ylabel("意见数" if lang == "zh" else "Opinions")
        ax.set_title("各轮办理漏斗" if lang == "zh" else "Round funnel")
        ax.legend(fontsize="small")
        _save(fig, path, force)
    return lang
