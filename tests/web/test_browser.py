"""The whole loop in a real browser: headless Chromium (Debian's package) driven by Playwright.

`consultflow web` runs as its own process on a fresh database; planners and coordinators act
through the CLI as real subprocesses; the villager only ever uses the browser. Screenshots of each
page, in Chinese and English, at phone and desktop widths, go to $CONSULTFLOW_SCREENSHOTS (or the
test's temporary folder). Every page, in both languages and at 360 and 1280 px, must fit the screen,
offer touch targets of 44 px, and pass axe-core (vendored in tests/web/data, MPL-2.0) without a
serious or critical violation. Without Chromium (or Playwright) the tests are skipped, unless
CONSULTFLOW_REQUIRE_BROWSER is set (CI sets it), where a missing browser fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from tests.conftest import migrated
from tests.web.portal import Consultflow, served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
COORD, PLANNER = "李协调", "王规划"
AXE = Path(__file__).parent / "data" / "axe.min.js"
TOUCH = 44  # px: the smallest touch target a page may offer

pytestmark = [pytest.mark.slow, pytest.mark.long]


@pytest.fixture(name="shots")
def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CONSULTFLOW_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _playwright() -> ModuleType:
    """Playwright's sync API; where the browser is required (CI), its absence fails instead of skipping."""
    if os.environ.get("CONSULTFLOW_REQUIRE_BROWSER"):
        import playwright.sync_api

        return playwright.sync_api
    return cast("ModuleType", pytest.importorskip("playwright.sync_api"))


@pytest.fixture(name="portal")
def _portal(db_url: str, tmp_path: Path) -> Iterator[tuple[Consultflow, str]]:
    if not CHROMIUM:
        if os.environ.get("CONSULTFLOW_REQUIRE_BROWSER"):
            pytest.fail("CONSULTFLOW_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    run = Consultflow(db_url)
    migrated(db_url)  # what `db upgrade` makes; the commands around the server run in this process
    run.here("actor", "add", COORD, "--role", "coordinator")
    run.here("actor", "add", PLANNER, "--role", "planner", actor=COORD)
    run.here("consultation", "create", "青龙片区国土空间规划", "--area", "青龙片区（五个行政村）", actor=COORD)
    run.here("round", "open", "1", "--closes-at", "2099-06-30", actor=COORD)
    with served(run, tmp_path) as base:
        yield run, base


def test_a_villager_walks_the_whole_loop_in_chromium(
    portal: tuple[Consultflow, str], shots: Path, db_url: str, tmp_path: Path
) -> None:
    """In a real browser a villager submits, follows by code, replies, sees the outcome; code and phone not logged."""
    playwright_api = _playwright()
    run, base = portal
    backend = "pg" if db_url.startswith("postgresql") else "sqlite"
    taken: list[Path] = []

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def shoot(page: object, name: str) -> None:
            path = shots / f"{backend}-{name}.png"
            page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
            taken.append(path)

        phone = browser.new_context(viewport=PHONE, locale="zh-CN")
        page = phone.new_page()
        page.goto(base + "/")
        shoot(page, "01-home-zh-phone")
        page.click("text=青龙片区国土空间规划")
        page.click("text=提交意见")
        assert page.is_visible("textarea[name=text]")
        page.check("input[value=public_services]")
        page.fill("textarea[name=text]", "建议在村委会旁增设卫生室，老人看病要走五公里")
        page.fill("input[name=village]", "青龙村")
        page.fill("input[name=contact]", "13700001234")
        page.check("input[name=consent]")
        shoot(page, "02-questionnaire-zh-phone")
        page.click("button[type=submit]")
        assert page.url == base + "/my"  # the code never appears in an address
        code = page.inner_text("#receipt-code")
        assert len(code.replace("-", "")) == 25
        shoot(page, "03-receipt-zh-phone")
        phone.close()

        opinion = json.loads(run("--json", "opinion", "list", "--consultation", "1"))[0]["id"]
        run("opinion", "assign", str(opinion), "--to", PLANNER, actor=COORD)
        run("opinion", "fire", str(opinion), "screen", actor=PLANNER)
        run(
            "opinion",
            "fire",
            str(opinion),
            "give_feedback",
            "--text",
            "拟在青龙村和白鹤村之间设置卫生室，请问是否合适？",
            actor=PLANNER,
        )

        later = browser.new_context(viewport=PHONE, locale="zh-CN")  # another day, another browser: only the code
        page = later.new_page()
        page.goto(base + "/my")
        shoot(page, "04-enter-code-zh-phone")
        page.fill("input[name=code]", code.replace("-", " "))
        page.click("button[type=submit]")
        assert "拟在青龙村和白鹤村之间设置卫生室" in page.inner_text("main")
        shoot(page, "05-feedback-zh-phone")
        page.check("input[value=revise]")
        page.fill("textarea[name=text]", "白鹤村太远，建议就设在青龙村委会旁")
        page.click("text=提交回应")
        assert "您的回应已记录" in page.inner_text("main")
        shoot(page, "06-replied-zh-phone")

        run("round", "close", "1", actor=COORD)
        run("round", "open", "1", actor=COORD)
        run(
            "opinion", "fire", str(opinion), "adopt", "--text", "采纳：卫生室设在青龙村委会旁", "--plan-ref", "规划第4.3条",
            actor=PLANNER,
        )  # fmt: skip
        page.goto(base + "/my")
        assert page.inner_text("#outcome") == "采纳" and page.inner_text("#plan-ref") == "规划第4.3条"
        shoot(page, "07-outcome-zh-phone")
        page.goto(base + "/my?lang=en")
        assert page.inner_text("#outcome") == "Adopted"
        shoot(page, "08-outcome-en-phone")
        later.close()

        for lang in ("zh", "en"):
            for width, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                visitor = browser.new_context(viewport=viewport)
                page = visitor.new_page()
                page.goto(f"{base}/c/1?lang={lang}")
                assert page.is_visible("svg.chart")
                shoot(page, f"09-consultation-{lang}-{width}")
                page.goto(f"{base}/c/1/account?round=2&lang={lang}")
                text = page.inner_text("main")
                assert "规划第4.3条" in text and "13700001234" not in text
                shoot(page, f"10-account-{lang}-{width}")
                page.goto(f"{base}/c/1/plan?lang={lang}")
                assert "规划第4.3条" in page.inner_text("main")
                shoot(page, f"11-plan-{lang}-{width}")
                if width == "phone":  # readable without zoom: nothing wider than the screen
                    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                visitor.close()
        browser.close()

    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000 for p in taken)
    history = run("audit", "history", str(opinion))
    assert "web (participant)" in history and "13700001234" not in history
    assert "intact" in run("audit", "verify", "1")
    logged = (tmp_path / "web.log").read_text(encoding="utf-8")
    assert code not in logged and code.replace("-", "") not in logged  # the code never reaches the log
    assert "13700001234" not in logged and "127.0.0.1" not in logged.replace(base, "")


# Each visible link, button, summary, field and choice smaller than a touch target (a radio or
# checkbox counts as its label, which is the target).
_TARGETS = """() => [...document.querySelectorAll('a, button, summary, label.choice, input, textarea')]
  .filter(e => e.offsetParent !== null && e.type !== 'hidden')
  .filter(e => !(e.matches('input[type=radio], input[type=checkbox]') && e.closest('label')))  // its label is the target
  .map(e => { const r = e.getBoundingClientRect(); return {what: e.outerHTML.slice(0, 80), w: r.width, h: r.height}; })
  .filter(t => t.w < 44 || t.h < 44)"""
_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"""


def _check_page(page: Any, url: str, width: int) -> list[str]:
    """What is wrong with the page at `url`: too wide, small targets, serious or critical axe violations."""
    page.goto(url)
    problems = []
    wide = page.evaluate("document.documentElement.scrollWidth")
    if wide > width:
        problems.append(f"{url} at {width}px: {wide}px wide")
    problems += [f"{url} at {width}px: target {t['w']:.0f}x{t['h']:.0f} {t['what']}" for t in page.evaluate(_TARGETS)]
    page.add_script_tag(path=str(AXE))
    for v in page.evaluate(_AXE):
        if v["impact"] in ("serious", "critical"):
            problems.append(f"{url} at {width}px: axe {v['impact']} {v['id']} on {v['nodes']}")
    return problems


def test_every_page_fits_a_phone_has_touch_targets_and_passes_axe(
    portal: tuple[Consultflow, str], tmp_path: Path
) -> None:
    """Every page, zh and en, at 360 and 1280 px: no wider than the screen, targets >= 44 px, axe clean."""
    playwright_api = _playwright()
    run, base = portal
    sheet = tmp_path / "村民大会.csv"  # 60 opinions: enough for a second page of the account
    rows = [f"{n},村民{n},青龙村,产业发展,建议在村口建设农产品冷链仓储点并修通第{n}组的机耕道" for n in range(60)]
    sheet.write_text("\n".join(["序号,姓名,村,类别,意见内容", *rows]) + "\n", encoding="utf-8")
    run("opinion", "import", str(sheet), "--consultation", "1", "--channel", "villagers_assembly", actor=COORD)
    opinion = json.loads(run("--json", "opinion", "list", "--consultation", "1", "--limit", "1"))[0]["id"]
    run("opinion", "assign", str(opinion), "--to", PLANNER, actor=COORD)
    run("opinion", "fire", str(opinion), "screen", actor=PLANNER)
    run(
        "opinion",
        "fire",
        str(opinion),
        "give_feedback",
        "--text",
        "拟纳入产业用地布局研究，请问是否合适？",
        actor=PLANNER,
    )
    issued = re.search(r"\d{5}(?:-\d{5}){4}", run("opinion", "receipt", str(opinion), actor=COORD))
    assert issued, "no receipt code printed"
    code = issued.group()
    run("programme", "create", "县域片区", "--title", "某县片区国土空间规划意见征集", actor=COORD)
    run("programme", "add-area", "县域片区", "1", actor=COORD)
    run(
        "consultation",
        "create",
        "乡村振兴第二片区规划意见征集",
        "--area",
        "乡村振兴第二片区",
        "--from",
        "1",
        actor=COORD,
    )
    pages = ["/", "/c/1", "/c/1/submit", "/c/1/account", "/c/1/account?page=2", "/c/1/account?round=1",
             "/c/1/account?category=industry", "/c/1/plan", "/my", "/nope", "/c/1/account?round=99",
             "/programme/1"]  # fmt: skip
    problems: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for lang in ("zh", "en"):
            for viewport in (PHONE, DESKTOP):
                visitor = browser.new_context(
                    viewport=viewport, bypass_csp=True
                )  # axe is a script; the portal allows none
                page = visitor.new_page()
                page.goto(f"{base}/?lang={lang}")  # the language cookie
                for path in pages:
                    problems += _check_page(page, base + path, viewport["width"])
                page.goto(base + "/my")
                page.fill("input[name=code]", code)
                page.click("button[type=submit]")
                assert "拟纳入产业用地布局研究" in page.inner_text("main")
                problems += _check_page(page, base + "/my", viewport["width"])  # the timeline and the reply form
                visitor.close()
        browser.close()
    assert not problems, "\n".join(problems)
