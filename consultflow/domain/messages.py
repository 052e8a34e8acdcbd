"""What a villager is told when something is refused, in Chinese and English, from one catalogue.

The services speak to coordinators: their errors are one English line, often with a CLI hint
("open one with 'consultflow round open 1'"). A villager on the portal never sees that line.
`explain` turns a refusal into a catalogue entry (its key and the few values it names), and
`say` words an entry in the page's language. An error this module does not recognise still gets
a message of its kind (not found, refused, invalid input), never the English text.

The recognised conditions are matched on the error's type and, for the broad kinds
(`ValidationError`), on the service's own wording: tests run every refusal a villager can meet
and check that each lands on its own entry, so a reworded service message fails a test here
rather than reaching a villager in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from consultflow.domain.errors import (
    ConflictError,
    ConsultflowError,
    DatabaseUnavailableError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RoundStateError,
    TooManyAttemptsError,
    ValidationError,
)
from consultflow.domain.labels import Lang

#: Every message a villager can read, (Chinese, English); `{placeholders}` are filled by `say`.
MESSAGES: dict[str, tuple[str, str]] = {
    "receipt_unknown": (
        "没有与这个回执码对应的意见。请核对数字；如回执码遗失或已更换，请到意见反馈点补发。",
        "No opinion has this receipt code. Check the digits; if the code was lost or replaced, ask a feedback point.",
    ),
    "receipt_malformed": (
        "回执码是25位数字（可带空格或短横线），例如 40723-11958-60042-87315-29460。",
        "A receipt code is 25 digits (spaces and dashes allowed), like 40723-11958-60042-87315-29460.",
    ),
    "round_closed": (
        "目前没有正在进行的征求意见轮次，暂时不能提交。",
        "No round is open at the moment, so opinions cannot be submitted now.",
    ),
    "round_unknown": ("第{n}轮征求意见不存在。", "There is no round {n} in this consultation."),
    "cannot_reply": (
        "这条意见现在不能回应：只有在收到反馈、等待您回应时才可以回应。",
        "You cannot reply to this opinion now: a reply is possible only while feedback awaits your answer.",
    ),
    "cannot_withdraw": ("这条意见现在不能撤回。", "This opinion cannot be withdrawn now."),
    "required": ("请填写“{field}”。", "Please fill in “{field}”."),
    "too_long": (
        "“{field}”最多 {limit} 个字，现在有 {n} 个字，请删减后再提交。",
        "“{field}” may have at most {limit} characters; it has {n}. Please shorten it.",
    ),
    "control_character": (
        "“{field}”中含有无法保存的特殊字符，请删除后再提交。",
        "“{field}” holds a character that cannot be kept. Please remove it.",
    ),
    "category_unknown": ("请从列出的类别中选择一项。", "Please choose one of the categories listed."),
    "stance_unknown": ("请选择您的态度。", "Please choose your answer."),
    "contact_invalid": (
        "联系方式请填写一个手机号码（11位，以1开头）、带区号的座机号码或电子邮箱。",
        "Please give one mobile number (11 digits starting with 1), a landline with its area code or an email address.",
    ),
    "consent_needed": (
        "只有勾选同意后才能保存联系方式。请勾选同意，或把联系方式留空。",
        "A contact is kept only with your consent: tick the consent box, or leave the contact empty.",
    ),
    "form_expired": (
        "表单已过期或来自其他网站，请刷新页面后重新填写。",
        "The form expired or came from another site. Please reload the page and fill it in again.",
    ),
    "invalid": (
        "填写的内容有误，请检查后再提交。",
        "Something in the form is not right. Please check it and try again.",
    ),
    "too_many": ("操作过于频繁，请稍后再试。", "Too many attempts; please wait a while and try again."),
    "not_found": ("页面不存在。", "There is no such page."),
    "method_not_allowed": (
        "这个页面不能这样打开，请从首页进入。",
        "This page cannot be opened this way. Please start from the home page.",
    ),
    "not_allowed": ("您不能进行这项操作。", "You may not do this."),
    "state_refused": ("这条意见现在不能进行这项操作。", "This cannot be done with the opinion now."),
    "busy": ("系统繁忙，请稍后再试。", "The system is busy; please try again in a moment."),
    "refused": ("无法完成这项操作。", "This could not be done."),
    "internal": (
        "系统出现故障，已记录，请稍后再试。",
        "Something went wrong on our side. It was logged; please try again later.",
    ),
}

#: The names the services give the fields a villager fills in (the CLI's options for a reply or a
#: withdrawal), as the portal's forms label them.
FIELDS: dict[str, tuple[str, str]] = {
    "opinion text": ("意见内容", "Your opinion"),
    "text": ("意见内容", "Your opinion"),
    "village": ("所在村/片区", "Village"),
    "name": ("姓名", "Name"),
    "contact": ("联系方式", "Contact"),
    "reason": ("原因", "Reason"),
    "--text": ("补充说明", "What you would add"),
    "--reason": ("原因", "Reason"),
    "--stance": ("您的态度", "Your answer"),
    "receipt code": ("回执码", "Receipt code"),
}


@dataclass(frozen=True)
class Said:
    """A catalogue entry and the values it names (field names are keys of `FIELDS`)."""

    key: str
    values: dict[str, object] = field(default_factory=dict)


_VALIDATION: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^a receipt code is "), "receipt_malformed"),
    (re.compile(r"^(?P<field>[\w -]+?) is required and may not be blank"), "required"),
    (re.compile(r"^(?P<field>[\w -]+?) is (?P<n>\d+) characters; at most (?P<limit>\d+)"), "too_long"),
    (re.compile(r"^(?P<field>[\w -]+?) contains a control character"), "control_character"),
    (re.compile(r"requires .*; missing: (?P<field>--[\w-]+)"), "required"),
    (re.compile(r"^a contact is kept only with consent"), "consent_needed"),
    (re.compile(r"^contact "), "contact_invalid"),
    (re.compile(r"^unknown category "), "category_unknown"),
    (re.compile(r"stance"), "stance_unknown"),
    (re.compile(r"CSRF"), "form_expired"),
)


# Per kind of refusal: words of the service's line that name a condition of its own, and the
# entry for anything else of that kind.
_KINDS: tuple[
    tuple[type[ConsultflowError] | tuple[type[ConsultflowError], ...], tuple[tuple[str, str], ...], str], ...
] = (
    (TooManyAttemptsError, (), "too_many"),
    (NotFoundError, (("receipt code", "receipt_unknown"),), "not_found"),
    (RoundStateError, (("no open round", "round_closed"),), "refused"),
    (InvalidTransitionError, (("reply to feedback", "cannot_reply"), ("withdraw", "cannot_withdraw")), "state_refused"),
    (PermissionDeniedError, (), "not_allowed"),
    ((ConflictError, DatabaseUnavailableError), (), "busy"),
)


def explain(exc: BaseException) -> Said:
    """The catalogue entry for a refusal (any `ConsultflowError`); anything else is an internal error."""
    if not isinstance(exc, ConsultflowError):
        return Said("internal")
    text = str(exc)
    if isinstance(exc, ValidationError):
        for pattern, key in _VALIDATION:
            found = pattern.search(text)
            if found:
                return Said(key, found.groupdict())
        return Said("invalid")
    for kind, conditions, otherwise in _KINDS:
        if isinstance(exc, kind):
            return Said(next((key for words, key in conditions if words in text), otherwise))
    return Said("refused")


def say(said: Said, lang: Lang) -> str:
    """The entry in `lang` (Chinese unless "en"), its values filled; field names as the form shows them."""
    zh, en = MESSAGES[said.key]
    index = 1 if lang == "en" else 0
    values = dict(said.values)
    if "field" in values:
        name = str(values["field"])
        if name not in FIELDS:  # a field the portal's forms do not have: say only that something is wrong
            return say(Said("invalid"), lang)
        values["field"] = FIELDS[name][index]
    return (zh, en)[index].format(**values)


def message_for(exc: BaseException, lang: Lang) -> str:
    """`explain` then `say`: what a villager reads for `exc`."""
    return say(explain(exc), lang)
