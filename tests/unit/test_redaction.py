"""Personal data inside opinions and feedback: found on a labelled corpus, masked, and nothing else touched.

The corpus (data/redaction_corpus.jsonl) holds villagers' opinions and planners' feedback, each with
the participant's name and the exact strings that must be masked. Over half hold no personal data
but numbers that look a little like it: money, areas, years, dates, road and clause numbers.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consultflow.domain.redaction import KINDS, find_personal_data, flag_line, redact

CORPUS = Path(__file__).parent / "data" / "redaction_corpus.jsonl"
# Spans masked that are not personal data, over the whole corpus: given names that are also words
# (振兴 of 李振兴 in 乡村振兴). At most this many; a change that masks more fails here.
MAX_FALSE_MASKS = 3


def _corpus() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_the_corpus_is_large_and_varied() -> None:
    """At least 150 texts, both opinions and feedback, with and without personal data, every kind labelled."""
    rows = _corpus()
    assert len(rows) >= 150
    assert {r["kind"] for r in rows} == {"opinion", "feedback"}
    with_data = [r for r in rows if r["masked"]]
    assert 60 <= len(with_data) <= len(rows) - 60
    assert {m["kind"] for r in rows for m in r["masked"]} == set(KINDS)
    for r in rows:
        for m in r["masked"]:
            assert m["value"] in r["text"], r


def test_no_personal_data_in_the_corpus_is_missed_and_few_false_masks() -> None:
    """Every labelled string is masked, none survives in the published text; false masks stay under the bound."""
    missed: list[tuple[tuple[str, str], str]] = []
    false: list[tuple[tuple[str, str], str]] = []
    for r in _corpus():
        text, name = r["text"], r["name"]
        found: list[tuple[str, str]] = [(text[f.start : f.end], f.kind) for f in find_personal_data(text, name)]
        wanted: list[tuple[str, str]] = [(m["value"], m["kind"]) for m in r["masked"]]
        missed += [(value, text) for value in wanted if value not in found]
        false += [(value, text) for value in found if value not in wanted]
        published = redact(text, name).text
        for value, _kind in wanted:
            assert value not in published, (value, published)
    assert missed == []
    assert len(false) <= MAX_FALSE_MASKS, false


def test_masks_read_as_chinese_and_name_what_was_removed() -> None:
    """The issue's own text: her name becomes 张某某, the number a readable token; the kinds are reported."""
    out = redact("青龙村张秀英建议硬化通组道路（13812345678），秀英家门口最烂。", "张秀英")
    assert out.text == "青龙村张某某建议硬化通组道路（〔手机号已隐去〕），某某家门口最烂。"
    assert out.kinds == ("mobile", "name")
    card = redact("身份证11010519491231002X，卡号6222 0212 3456 7890 128，邮箱 a.b@qq.com，座机028-87765767")
    assert card.text == "身份证〔身份证号已隐去〕，卡号〔银行卡号已隐去〕，邮箱 〔邮箱已隐去〕，座机〔电话已隐去〕"
    assert card.kinds == ("landline", "id_card", "bank_card", "email")


def test_numbers_that_are_not_personal_data_stay() -> None:
    """Years, money, areas, counts, road and clause numbers, dates and percentages are left alone."""
    text = (
        "2026年投资3000元，补贴1.5万元，用地300平方米，共426户，G318国道K2136+500处，"
        "2026-03-01开会，规划3.2.1条，赞成68%，编号2026-0312-0001，宗地510623001002JC00123，邮编628000。"
    )
    assert redact(text, "张秀英").text == text
    assert redact(text).kinds == ()


@pytest.mark.parametrize(
    "invalid",
    [
        "110105194912310029",  # a wrong check digit (it is X)
        "99010519491231002X",  # no such province
        "6222021234567890129",  # fails the Luhn check
        "12812345678",  # 12x is no mobile prefix
    ],
)
def test_look_alikes_that_fail_their_checks_stay(invalid: str) -> None:
    """An 18-digit number with a wrong check digit, a card number failing Luhn: not masked."""
    assert redact(f"编号{invalid}。").text == f"编号{invalid}。"


def test_the_flag_names_the_kinds_in_both_languages() -> None:
    """The line coordinators see at intake."""
    line = flag_line(("name", "mobile"))
    assert line.startswith("注意：意见内容含个人信息（手机号、本人姓名）/ note:")
    assert "(mobile number, the participant's name)" in line and "masked wherever it is published" in line
    assert flag_line(()) == ""


# --- properties -------------------------------------------------------------------------------

_HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
_PUNCT = st.sampled_from(list("，。；：！？、（）《》 \n"))
_CHINESE = st.text(st.one_of(_HAN, _PUNCT), max_size=40)
_NAMES = st.one_of(st.none(), st.text(_HAN, min_size=2, max_size=4))


def _id_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@st.composite
def _mobiles(draw: st.DrawFn) -> str:
    digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    style = draw(st.sampled_from(["plain", "dashes", "spaces", "+86", "fullwidth"]))
    return {
        "plain": digits,
        "dashes": f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
        "spaces": f"{digits[:3]} {digits[3:7]} {digits[7:]}",
        "+86": f"+86 {digits}",
        "fullwidth": digits.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    }[style]


@st.composite
def _id_cards(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(["11", "32", "44", "51", "65"]))
    area = draw(st.text("0123456789", min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31)))
    serial = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = f"{province}{area}{born:%Y%m%d}{serial}"
    return first17 + _id_check(first17)


def _luhn_total(card: str) -> int:
    digits = [int(d) for d in reversed(card)]
    return sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))


@st.composite
def _bank_cards(draw: st.DrawFn) -> str:
    body = "62" + draw(st.text("0123456789", min_size=13, max_size=16))
    card = next(body + last for last in "0123456789" if _luhn_total(body + last) % 10 == 0)
    grouped = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    return draw(st.sampled_from([card, grouped]))


@settings(max_examples=300)
@given(before=_CHINESE, value=st.one_of(_mobiles(), _id_cards(), _bank_cards()), after=_CHINESE)
def test_a_valid_number_inside_chinese_text_is_always_masked(before: str, value: str, after: str) -> None:
    """A generated mobile, ID-card or bank-card number, anywhere in Chinese text, never survives."""
    out = redact(before + value + after)
    assert value not in out.text
    assert out.kinds
    assert out.text.startswith(before) and out.text.endswith(after)


@settings(max_examples=300)
@example("张秀英说秀英的电话是13812345678", "张秀英")
@given(text=st.text(max_size=60), name=_NAMES)
def test_masking_is_idempotent(text: str, name: str | None) -> None:
    """Masking a masked text changes nothing: the masks hold no digit, no @ and no name."""
    once = redact(text, name).text
    assert redact(once, name).text == once


@settings(max_examples=300)
@given(
    text=st.text(
        st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="@＠"),
        max_size=80,
    ),
    name=_NAMES,
)
def test_text_without_digits_at_or_the_name_is_unchanged(text: str, name: str | None) -> None:
    """No digit, no @ and not the name (nor its given name): the text is published exactly as written."""
    forms = [f for f in (name or "", (name or "")[1:], (name or "")[2:]) if len(f) >= 2]
    if any(f in text for f in forms):
        return
    assert redact(text, name).text == text
