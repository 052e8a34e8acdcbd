"""The portal's words in Chinese and English (Chinese by default; `?lang=en` switches)."""

from __future__ import annotations

from consultflow.domain.labels import Lang

WORDS: dict[str, tuple[str, str]] = {
    "site": ("意见征集与反馈平台", "Consultation and feedback"),
    "home": ("首页", "Home"),
    "consultations": ("正在征求意见的规划", "Consultations"),
    "no_consultations": ("暂无征求意见的规划。", "No consultations yet."),
    "opinions_n": ("{n} 条意见", "{n} opinion(s)"),
    "rounds": ("征求意见轮次", "Rounds"),
    "round_n": ("第{n}轮", "Round {n}"),
    "opened": ("开始", "Opened"),
    "closes": ("截止", "Closes"),
    "closed": ("已结束", "Closed"),
    "open_now": ("进行中", "Open now"),
    "no_round": ("目前没有正在进行的征求意见轮次。", "No round is open at the moment."),
    "give_opinion": ("提交意见", "Give your opinion"),
    "my_opinion": ("查询我的意见", "My opinion"),
    "adoption": ("意见采纳情况", "How opinions were taken up"),
    "account": ("意见采纳情况说明", "Published account"),
    "plan": ("规划条款对应表", "Plan traceability"),
    "all_rounds": ("全部轮次", "All rounds"),
    "category": ("意见类别", "Category"),
    "text": ("意见内容", "Your opinion"),
    "village": ("所在村/片区", "Village"),
    "group": ("您的身份（可不选）", "You are (optional)"),
    "programme": ("各片区对比", "All areas of the programme"),
    "programme_areas_n": ("共{n}个片区", "{n} area(s)"),
    "programmes": ("各片区规划", "County programmes of areas"),
    "programme_no_areas": ("暂无片区。", "No areas yet."),
    "programme_repeat": ("多次参与{p}%", "{p}% took part more than once"),
    "programme_side_by_side": ("各片区对比", "Areas side by side"),
    "name": ("姓名（可不填）", "Name (optional)"),
    "contact": ("联系方式（可不填）", "Contact (optional)"),
    "consent": (
        "我同意规划编制单位保存我的联系方式，仅用于就本意见与我联系。",
        "I agree that the planning team keeps my contact, only to reach me about this opinion.",
    ),
    "privacy_note": (
        "姓名和联系方式不会公开；公开的说明中只显示姓氏（如“张某某”）。",
        "Your name and contact are never published; public accounts show a surname only.",
    ),
    "submit": ("提交", "Submit"),
    "receipt": ("回执码", "Receipt code"),
    "receipt_new": (
        "意见已收到。请现在记下回执码，凭它查询反馈、回应或撤回意见；遗失后只能到意见反馈点补发新码。",
        (
            "Your opinion is recorded. Note the receipt code now: with it you read the feedback, reply or "
            "withdraw. A lost code can only be replaced at a feedback point."
        ),
    ),
    "receipt_repeat": (
        "这份表单已经提交过，意见只记录一次。回执码在第一次提交时已显示。",
        "This form was already submitted; the opinion is recorded once. Its receipt code was shown then.",
    ),
    "enter_code": ("请输入回执码（25位数字）", "Enter your receipt code (25 digits)"),
    "look_up": ("查询", "Look up"),
    "leave": ("退出查询", "Done"),
    "opinion_no": ("意见编号", "Opinion no."),
    "status": ("办理状态", "Status"),
    "submitted_at": ("提交时间", "Submitted"),
    "timeline": ("办理过程", "What happened"),
    "feedback": ("规划编制人员反馈", "Planners' feedback"),
    "reparticipation": ("您的回应", "Your reply"),
    "nothing_yet": ("本轮暂无反馈。", "No feedback in this round yet."),
    "outcome": ("办理结果", "Outcome"),
    "plan_clause": ("规划中的落实条款", "Where the plan reflects it"),
    "reply_title": ("回应反馈（再参与）", "Reply to the feedback"),
    "reply_by": ("请在 {at} 前回应", "Please reply before {at}"),
    "stance": ("您的态度", "Your answer"),
    "reply_text": ("补充说明", "What you would add"),
    "send_reply": ("提交回应", "Send reply"),
    "withdraw_title": ("撤回意见", "Withdraw the opinion"),
    "reason": ("原因（可不填）", "Reason (optional)"),
    "send_withdraw": ("撤回", "Withdraw"),
    "replied": ("您的回应已记录。", "Your reply is recorded."),
    "withdrawn": ("意见已撤回。", "The opinion is withdrawn."),
    "error": ("无法完成", "Could not do that"),
    "back": ("返回", "Back"),
    "not_found": ("页面不存在。", "There is no such page."),
    "too_many": ("操作过于频繁，请稍后再试。", "Too many attempts; please wait a while and try again."),
    "form_expired": ("表单已过期，请重新填写。", "The form expired; please fill it in again."),
    "adopted_chart": ("各类别办理结果", "Outcomes by category"),
    "all_categories": ("全部类别", "All categories"),
    "continued": ("（续）", "(continued)"),
    "nothing_listed": ("暂无可列出的意见。", "No opinions to list yet."),
    "pages": ("分页", "Pages"),
    "page_n": ("第 {n} 页", "Page {n}"),
    "prev_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    "pages_end": (
        "网页只列到这里；完整的说明请向协调人索取文件版本，或按类别查看。",
        "The pages stop here; choose a category, or ask the coordinators for the full account as a file.",
    ),
    "pseudonym_note": (
        "提出人以化名显示，不公开联系方式。",
        "People are shown by surname only; contacts are never published.",
    ),
    "lang_switch": ("English", "中文"),
    "opinions": ("意见数", "Opinions"),
    "evidence": ("公开核验", "Public record"),
    "head_signed": (
        "本次征求意见的全部记录按顺序串成哈希链。服务器于 {at} 对第 {seq} 条记录处的链头签名并公布：",
        (
            "Every record of this consultation is chained by hashes. On {at} the server signed and published "
            "the chain's head at record {seq}:"
        ),
    ),
    "head_none": (
        "服务器尚未签名公布链头（每小时一次，每轮结束时也会签名）。",
        "The server has not signed a chain head yet (it does every hour, and when a round closes).",
    ),
    "head_hash": ("链头哈希", "Head hash"),
    "public_key": ("公钥（Ed25519）", "Public key (Ed25519)"),
    "key_id": ("公钥编号", "Key id"),
    "all_heads": ("全部已签名链头（可下载核验）", "Every signed head (download to check)"),
    "mine_covered": (
        (
            "您这条意见的最后一条记录（第 {n} 条）已包含在 {at} 签名公布的链头（第 {seq} 条）中："
            "之后任何人改动它都会被发现。"
        ),
        (
            "Your opinion's last record (#{n}) is in the chain head signed and published on {at} (#{seq}): "
            "any later change to it would be detected."
        ),
    ),
    # The review of the draft plan (大众点评 / 成果评审): web/review_pages.py
    "review_title": ("规划成果评审（大众点评）", "Review the draft plan"),
    "review_link": ("参与规划成果评审", "Rate the draft plan"),
    "review_version": ("规划草案第 {v} 版", "Plan draft version {v}"),
    "review_intro": (
        "请对您关心的条款逐条评价：满意、基本满意或不满意；可以只评价其中几条。附上的意见会作为您的意见进入办理流程，并得到反馈。",
        (
            "Rate the clauses you care about: satisfied, mostly satisfied or not satisfied (some are enough). "
            "A comment becomes your opinion and gets feedback."
        ),
    ),
    "review_comment": ("意见（可不填）", "Comment (optional)"),
    "review_thanks": ("感谢您的评价", "Thank you for your ratings"),
    "review_recorded": ("已记录您对 {n} 条条款的评价。", "Your rating of {n} clause(s) is recorded."),
    "review_repeated": (
        "这份评价表已经提交过，没有重复记录。",
        "This form was submitted before; nothing was recorded twice.",
    ),
    "review_codes": (
        "您的每条意见都有一个回执码，请保存，凭它查询反馈并回应：",
        "Each of your comments has a receipt code; keep it to read the feedback and reply:",
    ),
    "review_results": ("评审结果", "Review results"),
    "review_clause": ("条款", "Clause"),
    "review_share": ("满意率", "Share satisfied"),
    "review_comments": ("意见数", "Comments"),
    "review_share_note": (
        "满意率 = (满意 + 基本满意) / 评价数。只公布数字，不公布评价人。",
        "Share satisfied = (satisfied + mostly) / ratings. Figures only; no one is named.",
    ),
    "review_none": ("目前没有正在进行的规划成果评审。", "No review of the draft plan is open at the moment."),
    "review_clause_unknown": (
        "评价中有本版草案没有的条款，请刷新页面后重新填写。",
        "A clause rated is not in this draft; reload the page.",
    ),
    "review_rating_unknown": (
        "评价只能是：满意、基本满意或不满意。",
        "A rating is one of: satisfied, mostly satisfied, not satisfied.",
    ),
    "review_rate_one": ("请至少评价一条条款。", "Please rate at least one clause."),
    "review_rated_already": (
        "您在本次评审中已经评价过条款 {clause}，每条条款评价一次。",
        "You have rated clause {clause} in this review already; each clause is rated once.",
    ),
    "review_comment_unrated": (
        "您对条款 {clause} 写了意见，请同时选择评价（满意、基本满意或不满意）。",
        "You commented on clause {clause}: please rate it too (satisfied, mostly satisfied or not satisfied).",
    ),
    "review_comment_long": (
        "每条意见最多 {limit} 个字，请删减后再提交。",
        "A comment may have at most {limit} characters.",
    ),
    "mine_pending": (
        "您这条意见的最后一条记录（第 {n} 条）将在服务器下一次签名链头时公布。",
        "Your opinion's last record (#{n}) will be covered when the server next signs the chain head.",
    ),
}


def word(key: str, lang: Lang, **kw: object) -> str:
    """`key` in `lang`, with `{placeholders}` filled."""
    zh, en = WORDS[key]
    return (zh if lang == "zh" else en).format(**kw)
