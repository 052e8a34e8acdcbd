"""The portal's consultation page counts adopted opinions by theme, themes published redacted. Both backends."""

from __future__ import annotations

from consultflow.domain.vocabulary import Field
from consultflow.services import opinions, themes
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import FireRequest
from tests.helpers import EXPERT, PLANNER, seed, submit
from tests.web.portal import client


def test_the_consultation_page_lists_adopted_themes_redacted(ctx: ServiceContext) -> None:
    """The consultation page lists the themes of adopted opinions only, with phone numbers in them masked."""
    s = seed(ctx)
    ids = [submit(ctx, s, f"建议{n}") for n in range(3)]
    opinions.fire_many(ctx, acting=EXPERT, requests=[FireRequest(i, "screen", {}) for i in ids])
    adopt = {Field.TEXT: "已纳入", Field.PLAN_REF: "v1 §1"}
    opinions.fire_many(ctx, acting=PLANNER, requests=[FireRequest(i, "adopt", adopt) for i in ids[:2]])
    themes.code(ctx, acting=PLANNER, theme="学校", add=True, opinion_ids=ids[:2])
    themes.code(ctx, acting=PLANNER, theme="回访13812345678", add=True, opinion_ids=ids[:1])  # a careless tag
    themes.code(ctx, acting=PLANNER, theme="卫生院", add=True, opinion_ids=ids[2:])  # not adopted: not listed

    page = client(ctx).get(f"/c/{s.consultation_id}")
    assert page.status_code == 200
    assert "采纳意见主题" in page.text and "学校" in page.text
    assert "13812345678" not in page.text and "手机号已隐去" in page.text
    assert "卫生院" not in page.text
    english = client(ctx).get(f"/c/{s.consultation_id}?lang=en")
    assert "Adopted opinions by theme" in english.text
