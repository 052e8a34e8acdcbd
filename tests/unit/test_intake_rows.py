"""Whatever a spreadsheet holds, the row check answers with a good row or named problems, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consultflow.domain.errors import ValidationError
from consultflow.domain.intake import Choices, Column, IntakeRow, RowProblem, check_row, map_columns, normalise_header
from consultflow.domain.labels import Label
from consultflow.domain.workflow_loader import load_workflow_text
from tests.conftest import WORKFLOWS

SPEC = load_workflow_text((WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8"))
HEADERS = ["序号", "姓名", "村", "电话", "类别", "意见内容", "渠道"]
COLUMNS = map_columns(HEADERS, {})
cells = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["产业发展", "industry", "Industry", "公共服务配套", "坝坝会", "13812345678", "a@b.cn", ""]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6000),
)


@settings(max_examples=300, deadline=None)
@given(row=st.lists(cells, max_size=9), default=st.sampled_from([None, "online_survey"]))
def test_any_row_gets_an_answer_and_problems_name_their_column(row: list[str], default: str | None) -> None:
    """Short rows, long cells, control characters, unknown labels: a row, or problems naming row and column."""
    checked = check_row(7, row, COLUMNS, HEADERS, SPEC.categories, SPEC.channels, default)
    if isinstance(checked, IntakeRow):
        assert checked.text and checked.category in SPEC.categories and checked.channel in SPEC.channels
        assert len(checked.key) <= 64 and len(checked.participant_key) == 64
    else:
        assert checked and all(isinstance(p, RowProblem) and str(p).startswith("row 7, column ") for p in checked)


@settings(max_examples=200, deadline=None)
@given(headers=st.lists(st.text(max_size=20), max_size=8))
def test_any_header_row_is_mapped_or_refused_in_one_line(headers: list[str]) -> None:
    """Arbitrary headers: a mapping of distinct columns, or one ValidationError."""
    refusal = ""
    try:
        found = map_columns(headers, {})
    except ValidationError as exc:
        refusal, found = str(exc), {}
    if refusal:
        assert "\n" not in refusal
    else:
        assert len(set(found.values())) == len(found)
        assert {Column.TEXT, Column.CATEGORY, Column.VILLAGE} <= found.keys()


def test_labels_match_in_either_language_and_width() -> None:
    """Full-width and numbered headers normalise; zh and en labels and keys all find the category."""
    assert normalise_header(" ３、意见内容： ") == "意见内容"
    good = check_row(
        2,
        ["1", "王", "青龙村", "", "Industry", "修路", "坝坝会"],
        COLUMNS,
        HEADERS,
        SPEC.categories,
        SPEC.channels,
        None,
    )
    assert isinstance(good, IntakeRow) and (good.category, good.channel) == ("industry", "open_air_meeting")


def test_an_import_takes_the_short_forms_opinion_list_takes() -> None:
    """院坝会 and 问卷 name their channels in a file as they do on the command line; a label wins over a short form."""
    channels = {
        "open_air_meeting": Label("坝坝会", "Open-air meeting"),
        "online_survey": Label("线上问卷", "Online survey"),
    }
    choices = Choices("channel", channels)
    assert choices.resolve("院坝会") == "open_air_meeting"
    assert choices.resolve("问卷") == "online_survey"
    assert choices.resolve("坝坝会") == "open_air_meeting"
    assert choices.resolve("广播") == []
