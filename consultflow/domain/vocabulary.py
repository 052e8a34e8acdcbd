"""Fixed vocabularies the reports depend on: outcomes, fields of a transition, stances."""

from __future__ import annotations

from enum import Enum

from consultflow.domain.labels import Label


class Outcome(str, Enum):
    """What a terminal state means for the opinion; reports count by these."""

    ADOPTED = "adopted"
    PARTLY_ADOPTED = "partly_adopted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    MERGED = "merged"

    @property
    def label(self) -> Label:
        """The outcome's zh/en label."""
        return OUTCOME_LABELS[self]


OUTCOME_LABELS: dict[Outcome, Label] = {
    Outcome.ADOPTED: Label("采纳", "Adopted"),
    Outcome.PARTLY_ADOPTED: Label("部分采纳", "Partly adopted"),
    Outcome.REJECTED: Label("不予采纳", "Rejected"),
    Outcome.WITHDRAWN: Label("撤回", "Withdrawn"),
    Outcome.MERGED: Label("合并", "Merged"),
}

#: The outcomes whose opinions were decided on their merits, as `audit rounds` reports them.
DECIDED_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.ADOPTED,
    Outcome.PARTLY_ADOPTED,
    Outcome.REJECTED,
)


class Stance(str, Enum):
    """A participant's answer to feedback (再参与)."""

    AGREE = "agree"
    OBJECT = "object"
    REVISE = "revise"

    @property
    def label(self) -> Label:
        """The stance's zh/en label."""
        return STANCE_LABELS[self]


STANCE_LABELS: dict[Stance, Label] = {
    Stance.AGREE: Label("同意", "Agree"),
    Stance.OBJECT: Label("有异议", "Object"),
    Stance.REVISE: Label("修改补充", "Revise"),
}


class Field(str, Enum):
    """Data a transition may require; each is one CLI option of `opinion fire`."""

    TEXT = "text"
    REASON = "reason"
    PLAN_REF = "plan_ref"
    MERGE_TARGET = "merge_target"
    STANCE = "stance"

    @property
    def option(self) -> str:
        """The CLI option that carries this field."""
        return FIELD_OPTIONS[self]


FIELD_OPTIONS: dict[Field, str] = {
    Field.TEXT: "--text",
    Field.REASON: "--reason",
    Field.PLAN_REF: "--plan-ref",
    Field.MERGE_TARGET: "--into",
    Field.STANCE: "--stance",
}


MAX_OPINION_CHARS = 5000

# The longest text each field takes (characters; Chinese counts one per character). A plan
# reference names a clause (规划第3.2条), it is not prose; the database column holds 200.
FIELD_MAX_CHARS: dict[Field, int] = {
    Field.TEXT: MAX_OPINION_CHARS,
    Field.REASON: 2000,
    Field.PLAN_REF: 200,
    Field.STANCE: 20,
}


class EntryKind(str, Enum):
    """What a transition records in the opinion's per-round exchange."""

    FEEDBACK = "feedback"
    REPARTICIPATION = "reparticipation"


# Short forms people write for the default workflow's categories and channels (the keys, labels in
# both languages and these are all accepted wherever one is named; an alias of a key the workflow
# does not have is ignored). Each is what the same thing is commonly called: 院坝会 is the other name
# of the open-air meeting (坝坝会), 村民会议 the legal name of the villagers' assembly.
CHOICE_ALIASES: dict[str, tuple[str, ...]] = {
    "industry": ("产业",),
    "public_services": ("公共服务", "公服"),
    "environment_roads": ("环境卫生", "农村路网", "路网"),
    "villagers_assembly": ("村民会议", "村民会", "assembly"),
    "open_air_meeting": ("院坝会", "坝坝会议"),
    "lecture_hall": ("大讲堂", "讲堂"),
    "online_survey": ("问卷", "调查问卷", "网上问卷", "线上问卷", "survey", "questionnaire"),
    "feedback_point": ("反馈点",),
}
