"""Reading a draft plan's clauses from Markdown, CSV and JSON, and the diff between two versions."""

from __future__ import annotations

import pytest

from consultflow.domain.errors import ValidationError
from consultflow.domain.plan import Clause, diff, format_of, parse_csv, parse_json, parse_markdown, resolve_rating

MARKDOWN = """# 规划（征求意见稿）

## 2 产业布局

3. 第三条在前（编号照写）
4) 第四条
   续行

## 三、环境整治

- 垃圾收集点
- Sewage plan
  second line

第二段
落。

## 公共服务

（1）卫生室
"""


def _rows(clauses: list[Clause]) -> list[tuple[str, str, str, str]]:
    return [(c.number, c.section_no, c.section_title, c.text) for c in clauses]


def test_markdown_headings_are_sections_and_items_or_paragraphs_clauses() -> None:
    """A title with nothing under it is no section; 三、 is section 3; an untitled heading's number is its place."""
    assert _rows(parse_markdown(MARKDOWN)) == [
        ("2.3", "2", "产业布局", "第三条在前（编号照写）"),
        ("2.4", "2", "产业布局", "第四条续行"),  # Chinese lines joined without a space
        ("3.1", "3", "环境整治", "垃圾收集点"),
        ("3.2", "3", "环境整治", "Sewage plan second line"),
        ("3.3", "3", "环境整治", "第二段落。"),
        ("4.1", "4", "公共服务", "卫生室"),  # no number: the one after the last
    ]


def test_a_clause_number_given_twice_is_refused() -> None:
    """A draft that numbers one clause twice is refused, naming the clause, so no rating lands on the wrong one."""
    twice = "## 1 交通\n\n1. 甲\n1. 乙\n"
    with pytest.raises(ValidationError, match=r"clause '1\.1' is given twice"):
        parse_markdown(twice)


def test_text_before_the_first_heading_and_an_empty_draft_are_refused() -> None:
    """A draft with text before its first heading, or with no clauses at all, is refused rather than read in part."""
    with pytest.raises(ValidationError, match="line 1: text before the first heading"):
        parse_markdown("引言\n\n## 1 交通\n\n1. 甲\n")
    with pytest.raises(ValidationError, match="the draft has no clauses"):
        parse_markdown("# 只有标题\n")


def test_csv_with_chinese_headers_and_json_in_both_shapes() -> None:
    """A CSV draft with Chinese headers and a JSON draft in either shape give their clauses; bad files are refused."""
    csv_text = "\ufeff章节,章节标题,条款,内容\n1,交通设施,1,新建环线公路\n1,交通设施,2.5,通组道路硬化\n"
    assert _rows(parse_csv(csv_text)) == [
        ("1.1", "1", "交通设施", "新建环线公路"),
        ("2.5", "1", "交通设施", "通组道路硬化"),  # a full number is kept as written
    ]
    listed = '[{"section": "2", "clause": "1", "text": "种业园区"}, {"clause": "3.2", "text": "卫生室"}]'
    assert _rows(parse_json(listed)) == [("2.1", "2", "", "种业园区"), ("3.2", "3", "", "卫生室")]
    nested = '{"sections": [{"no": "4", "title": "环境整治", "clauses": [{"no": 1, "text": "污水治理"}]}]}'
    assert _rows(parse_json(nested)) == [("4.1", "4", "环境整治", "污水治理")]
    with pytest.raises(ValidationError, match="needs a header row"):
        parse_csv("1,1,甲\n")
    with pytest.raises(ValidationError, match="row 1: a row needs a clause number and its text"):
        parse_csv("section,clause\n1,1\n")
    with pytest.raises(ValidationError, match="does not parse"):
        parse_json("{")


def test_format_from_the_file_name() -> None:
    """A draft is read by its file name's suffix in any case; a file of another kind is refused, naming the kinds."""
    assert [format_of(n) for n in ("a.md", "b.DOCX", "c.csv", "d.json")] == ["markdown", "docx", "csv", "json"]
    with pytest.raises(ValidationError, match=r"a plan draft is a \.md, \.docx, \.csv or \.json file"):
        format_of("plan.pdf")


def test_diff_lists_changed_added_and_removed_clauses_by_number() -> None:
    """Two versions' diff lists changed, added and removed clauses by number; a renamed section alone is no change."""
    old = [Clause("1.1", "1", "交通", "甲"), Clause("1.2", "1", "交通", "乙"), Clause("2.1", "2", "产业", "丙")]
    new = [
        Clause("1.1", "1", "交通设施", "甲"),
        Clause("1.2", "1", "交通", "乙（修改）"),
        Clause("3.1", "3", "环境", "丁"),
    ]
    assert [(c.number, c.change, c.before, c.after) for c in diff(old, new)] == [
        ("1.2", "changed", "乙", "乙（修改）"),
        ("3.1", "added", None, "丁"),
        ("2.1", "removed", "丙", None),
    ]  # 1.1: only its section's title changed
    assert diff(old, old) == []


def test_ratings_in_either_language_and_nothing_else() -> None:
    """A rating is understood in Chinese or English, label or key; anything else is refused, naming what is allowed."""
    assert [resolve_rating(r) for r in ("满意", "基本满意", "不满意", "Mostly satisfied", "not_satisfied")] == [
        "satisfied",
        "mostly",
        "not_satisfied",
        "mostly",
        "not_satisfied",
    ]
    with pytest.raises(ValidationError, match="unknown rating '很好'; allowed: 满意/satisfied"):
        resolve_rating("很好")
