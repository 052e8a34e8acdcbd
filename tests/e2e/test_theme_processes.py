"""Theme suggestions as a real process: jieba says nothing on stderr, and the commands that do not segment never load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from consultflow.domain.clock import FixedClock
from consultflow.services import themes
from tests.conftest import make_context
from tests.helpers import PLANNER, seed, submit

pytestmark = pytest.mark.slow


def _consultflow(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consultflow", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_suggest_prints_keywords_and_jieba_logs_nothing(tmp_path: Path, clock: FixedClock) -> None:
    """Theme suggestions print keywords without jieba's chatter; listing themes loads neither jieba nor docx."""
    url = f"sqlite:///{tmp_path / 'themes.sqlite'}"
    ctx = make_context(url, clock)
    s = seed(ctx)
    for said in ("建议建设光伏发电站", "希望发展屋顶光伏", "村里荒坡可以搞光伏", "建议硬化通组道路"):
        submit(ctx, s, said, category="industry", assign=False)
    themes.code(ctx, acting=PLANNER, theme="光伏", add=True, matching="光伏", consultation_id=s.consultation_id)
    ctx.database.dispose()

    suggested = _consultflow(url, "-q", "theme", "suggest", str(s.consultation_id), "--top", "3")
    assert suggested.returncode == 0, suggested.stderr
    assert suggested.stdout.splitlines()[3].split()[:2] == ["光伏", "3"]  # the first keyword, in 3 opinions
    # jieba's "Building prefix dict… / Loading model…" lines are silenced
    assert "prefix dict" not in suggested.stderr and "Loading model" not in suggested.stderr

    probe = (
        "import sys\n"
        "from consultflow.cli.main import main\n"
        f"try:\n    main(['--db', {url!r}, '-q', 'theme', 'list', '1'], prog_name='consultflow')\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('jieba', 'docx')))\n"
    )
    listed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, check=True)
    assert "光伏" in listed.stdout and "LOADED []" in listed.stdout
