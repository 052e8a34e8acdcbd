"""The issue's "done when": from the demo, one command writes the county's brief with the pilot's figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import docx
import pytest
from click.testing import CliRunner

from consultflow.cli.main import main

pytestmark = pytest.mark.slow


def _run(db: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db, "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_demos_brief_has_the_pilots_figures_and_names_its_adopted_themes(tmp_path: Path) -> None:
    """From the demo, one command writes a brief with the pilot's figures, its adopted themes and its repeat share."""
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    _run(db, "demo")
    out = tmp_path / "汇报.docx"
    _run(db, "report", "brief", "1", "--out", str(out))
    text = "\n".join(p.text for p in docx.Document(str(out)).paragraphs)

    total = int(re.search(r"累计收集村民意见建议(\d+)条", text).group(1))  # type: ignore[union-attr]
    assert total >= 800  # 800余条
    assert "涉及产业发展的占57%，涉及公共服务配套的占28.3%，涉及环境卫生与农村路网的占14.7%" in text
    assert "完善产业联农带农机制、加强交通设施配套、加强环境整治等203条建议在规划成果中都予以了体现。" in text
    # Most people took part more than once (大部分群众都做到了多次参与): the same share as report participation's.
    share = float(re.search(r"人多次参与，占([\d.]+)%", text).group(1))  # type: ignore[union-attr]
    figures = json.loads(_run(db, "--json", "report", "participation", "1"))["figures"]
    assert share == figures["repeat_share"] > 50
