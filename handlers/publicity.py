""" "1+1+N" publicity: correspondents submit articles (投稿), the module's lead accepts them at a channel
(录用), sends them back for a revision (退回) or closes them (不录用); quotas per module per month.

An article is an item `#N` of the kind 投稿, decided by the lead of its module (or the committee),
never by one of its authors. Accepting books the channel's points to the authors, split by the
configured rule; an article counts once, at its highest channel, so a later higher channel pays only
the difference and a lower one is only recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from bot.config import Config, comparison_key
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, half_width, unknown_choice
from bot.replies import Button, Card, Markdown, ReplaceButton, Reply, Text, tone
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers import items
from handlers.approvals import approve_one, split_number, stamp
from handlers.assessment import assessment_component
from handlers.items import NUMBER, ItemKind, ref
from handlers.ledger import Booked, book, fmt, short, signed
from handlers.people import Person, find_person, person, sender_person
from handlers.periods import Period, period_of, previous
from handlers.points_config import PointsConfig
from handlers.publicity_config import Channel, PublicityConfig, PublicityModule
from storage import items as item_store
from storage import people
from storage import publicity as store
from storage.items import Item
from storage.publicity import ARTICLE_KIND, Article
from storage.queries import insert_now
from storage.vocabulary import ItemState, Role

router = Router("publicity")
WRITERS = frozenset({Role.CORRESPONDENT, Role.MODULE_LEAD})
DECIDERS = frozenset({Role.MODULE_LEAD, Role.COMMITTEE})
STATS_WORDS = frozenset({"统计", "宣传", "定额"})
CHANNEL_KEY = "publicity_channel"  # ctx.extra: the channel 录用 chose, read by ArticleKind.approve


# -- the kind ---------------------------------------------------------------------------------------


class ArticleKind(ItemKind):
    """投稿: decided by its module's lead (or the committee), never by one of its authors."""

    name = ARTICLE_KIND
    noun = "稿件"
    source = "先锋 · 宣传投稿"
    approve_label = "录用"
    reject_label = "退回"
    decider_roles: ClassVar[frozenset[str]] = DECIDERS

    def beneficiaries(self, session: Session, item: Item) -> list[int]:
        return store.authors(session, item.id or 0) or super().beneficiaries(session, item)

    def approvers(
        self, session: Session, config: Config, item: Item, paid: Sequence[int] | None = None
    ) -> list[Person]:
        """The module's leads; the committee when the module has no lead who is not an author."""
        excluded = set(self.beneficiaries(session, item) if paid is None else paid)
        article = session.get(Article, item.id)
        leads = store.module_people(session, article.module, Role.MODULE_LEAD) if article else []
        found = [p for p in leads if p.id not in excluded]
        if not found:
            found = [p for p in people.with_role(session, Role.COMMITTEE) if p.id not in excluded]
        return found

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        if member.id in self.beneficiaries(session, item):
            return f"#{item.id} 是你自己（或你参与写作）的稿件，不能由你审核，已交给其他审核人处理。"
        if member.has(Role.COMMITTEE):
            return None
        article = session.get(Article, item.id)
        module = article.module if article else ""
        if member.has(Role.MODULE_LEAD) and comparison_key(member.module) == comparison_key(module):
            return None
        return f"#{item.id} 是「{module}」模块的稿件，只能由该模块的管理骨干或党总支处理。"

    def value(self, session: Session, item: Item) -> str:
        article = session.get(Article, item.id)
        return f"{fmt(article.best_points_x100)} 分" if article and article.best_points_x100 else ""

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        article = session.get(Article, item.id)
        if article is None:
            return []
        names = [p.name for p in (person(session, m) for m in store.authors(session, article.id)) if p]
        lines = [("模块", article.module), ("作者", "、".join(names))]
        if article.link:
            lines.append(("链接", short(article.link, 60)))
        if article.revisions:
            lines.append(("修改", f"第 {article.revisions} 次修改后重新提交"))
        if article.best_channel:
            channel = PublicityConfig.of(config).channel(article.best_channel)
            lines.append(("已录用", channel.name if channel else article.best_channel))
        return lines

    def description(self, session: Session, item: Item) -> str:
        article = session.get(Article, item.id)
        if article is None or not article.content:
            return ""
        first = "\n".join(article.content.splitlines()[:3])
        return short(first, 120)

    def card(
        self,
        session: Session,
        config: Config,
        item: Item,
        owner: Person,
        evidence: int = 0,
        *,
        facts: Sequence[tuple[str, str]] | None = None,
        description: str | None = None,
    ) -> Card:
        """录用 / 退回 run this practice's commands; the card counts the attachments it has now."""
        assert item.id is not None
        evidence = item_store.evidence_counts(session, [item.id]).get(item.id, 0)
        article = session.get(Article, item.id)
        channel = PublicityConfig.of(config).default_for(article.module if article else "")
        return Card(
            title=f"稿件 #{item.id}",
            subtitle=f"《{item.title}》",
            source=self.source,
            facts=(
                ("提交人", f"{owner.name}（{owner.branch or '未登记支部'}）"),
                *(self.facts(session, config, item) if facts is None else facts),
                ("附件", f"{evidence} 个"),
            ),
            description=(self.description(session, item) if description is None else description)
            + (
                f"\n点「录用」按{channel.name}录用；其他渠道请回复「录用 #{item.id} 渠道」。"
                if channel
                else ""
            ),
            buttons=(
                Button(self.approve_label, "accept", str(item.id)),
                Button(self.reject_label, "send_back", str(item.id), primary=False),
            ),
            ref=ref(item.id),
        )

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        article = ctx.session.get(Article, item.id)
        channel = ctx.extra.get(CHANNEL_KEY) or PublicityConfig.of(ctx.config).default_for(
            article.module if article else ""
        )
        assert channel is not None, "the publicity section has no channels"
        return accept_at(ctx, item, approver, channel)


ARTICLE = ArticleKind().register()


# -- booking ----------------------------------------------------------------------------------------


def _book_shares(
    ctx: Context, item: Item, authors: list[Person], total_x100: int, approver: Sender, note: str
) -> list[Booked]:
    config = PublicityConfig.of(ctx.config)
    indicator = config.indicator or ""
    category = PointsConfig.of(ctx.config).category_of(indicator) if indicator else None
    booked = []
    for who, share in zip(authors, config.shares(total_x100, len(authors)), strict=True):
        if share:
            booked.append(
                book(
                    ctx.session,
                    who,
                    share,
                    category=category.code if category else "",
                    indicator=indicator,
                    day=ctx.now.date(),
                    at=ctx.now,
                    item_id=item.id,
                    approver_id=approver.id,
                    note=note,
                )
            )
    return booked


def _authors(session: Session, article_id: int) -> list[Person]:
    return [p for p in (person(session, m) for m in store.authors(session, article_id)) if p is not None]


def _pay_submission(ctx: Context, item: Item, article: Article, approver: Sender) -> list[Booked]:
    """The per-article submission points, once, when the article is first decided for good."""
    points = round(PublicityConfig.of(ctx.config).submission_points * 100)
    if article.submission_paid or not points:
        return []
    article.submission_paid = True
    return _book_shares(
        ctx, item, _authors(ctx.session, article.id), points, approver, f"投稿《{item.title}》"
    )


def accept_at(ctx: Context, item: Item, approver: Sender, channel: Channel) -> list[Booked]:
    """Record the article at `channel` and pay its authors the difference to their best channel so far."""
    article = ctx.session.get(Article, item.id)
    assert article is not None and item.id is not None
    authors = _authors(ctx.session, article.id)
    channel_x100 = round(channel.points * 100)
    difference = max(0, channel_x100 - article.best_points_x100)
    booked = _book_shares(ctx, item, authors, difference, approver, f"《{item.title}》{channel.name}录用")
    booked += _pay_submission(ctx, item, article, approver)
    paid = sum(b.points_x100 for b in booked)
    first = article.accepted_at is None
    if difference:
        article.best_channel, article.best_points_x100 = channel.code, channel_x100
    if first:
        article.accepted_at = ctx.now
    store.record_publication(ctx.session, article.id, channel.code, ctx.now, approver.id, paid)
    group = PublicityConfig.of(ctx.config).announce_group
    if group and (first or difference):
        names = "、".join(p.name for p in authors)
        ctx.broadcast(
            group,
            Markdown(
                f"**稿件录用**：《{item.title}》\n"
                f"> 作者：{names}（{article.module}）\n"
                f"> 渠道：{tone(channel.name, 'info')}"
            ),
        )
    return _merge(booked)


def _merge(booked: list[Booked]) -> list[Booked]:
    """One line per member (channel points and submission points together)."""
    by_member: dict[int, Booked] = {}
    for b in booked:
        earlier = by_member.get(b.member.id)
        by_member[b.member.id] = Booked(b.member, b.points_x100 + (earlier.points_x100 if earlier else 0))
    return list(by_member.values())


# -- 投稿 -------------------------------------------------------------------------------------------


STATS = 0  # the value of 编号 for 「投稿 统计」


def parse_reference(raw: str, _ctx: Any) -> int:
    """`#12` (a revision of article #12) or 统计 (this month's figures)."""
    text = half_width(raw).strip()
    if text in STATS_WORDS:
        return STATS
    m = re.fullmatch(r"#?\s*" + NUMBER, text)
    if not m or int(m.group(1)) == STATS:
        raise FieldError("应写稿件编号，如 #12（修改后重新提交），或写「统计」查看本月定额")
    return int(m.group(1))


def parse_title(raw: str, _ctx: Any) -> str:
    value = raw.strip().strip("《》").strip()
    if len(value) < 2:
        raise FieldError("请写稿件的标题")
    if len(value) > 60:
        raise FieldError("太长了，请控制在 60 字以内")
    return value


def parse_module(raw: str, ctx: Context) -> PublicityModule:
    config = PublicityConfig.of(ctx.config)
    text = raw.strip()
    found = config.module(text)
    if found is not None:
        return found
    raise unknown_choice(config.modules, text, "模块")


def parse_content(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 10:
        raise FieldError("太短了，请写稿件正文（或改写「链接」）")
    if len(value) > 5000:
        raise FieldError("太长了，请控制在 5000 字以内，长文请发链接")
    return value


def parse_link(raw: str, _ctx: Any) -> str:
    value = half_width(raw).strip()
    if not re.match(r"https?://\S+$", value):
        raise FieldError("应是以 http:// 或 https:// 开头的网址")
    return value


def parse_authors(raw: str, ctx: Context) -> list[Person]:
    found: dict[int, Person] = {}
    for word in (w for w in re.split(r"[\s,，、;；]+", half_width(raw)) if w):
        p = find_person(ctx.session, word)
        found.setdefault(p.id, p)
    return list(found.values())


class ArticleForm(Form):
    number: int | None = Field(
        "编号",
        example="#12",
        parse=parse_reference,  # type: ignore[assignment]
        required=False,
        positional=True,
        help="修改退回的稿件时写它的编号",
    )
    title: str | None = Field(
        "标题", example="叶丝干燥工序水分稳定性攻关见成效", parse=parse_title, required=False
    )  # type: ignore[assignment]
    module: PublicityModule | None = Field(
        "模块",
        example="工艺质量",
        parse=parse_module,  # type: ignore[assignment]
        required=False,
        help="不写就是你所在的模块",
    )
    content: str | None = Field(
        "内容",
        example="本月工艺质量模块围绕叶丝干燥出口水分开展攻关，标准偏差由0.21降到0.15。",
        parse=parse_content,  # type: ignore[assignment]
        required=False,
        aliases=("正文",),
    )
    link: str | None = Field(
        "链接", example="https://mp.weixin.qq.com/s/xxxx", parse=parse_link, required=False, aliases=("网址",)
    )  # type: ignore[assignment]
    authors: list[Person] | None = Field(
        "作者",
        example="王芳、孙丽",
        parse=parse_authors,  # type: ignore[assignment]
        required=False,
        aliases=("合作者", "共同作者"),
        help="共同作者的姓名，用顿号分隔；你自己不用写",
    )

    def check(self, ctx: Any) -> dict[str, str]:
        if self.number is not None:  # 统计, or a revision: every field is optional
            return {}
        if not self.title:
            return {"title": "不能为空"}
        if not self.content and not self.link:
            return {"content": "和「链接」至少要写一项"}
        return {}


@router.command("投稿", code="submit_article", aliases=("稿件",), roles=WRITERS | DECIDERS, form=ArticleForm)
def submit_article(ctx: Context, member: Sender, form: ArticleForm) -> str:
    """通讯员投稿，模块管理骨干录用后按渠道记分；10 分钟内发图片会附到稿件。

    修改退回的稿件：投稿 #12 加要改的字段；本月定额：投稿 统计。
    """
    if form.number == STATS:
        return stats_text(ctx, member)
    if not member.has(*WRITERS):
        return "「投稿」仅限通讯员和模块管理骨干使用。党总支可发送「宣传」查看本月各模块投稿情况。"
    if form.number is not None:
        return resubmit(ctx, member, form.number, form)
    config = PublicityConfig.of(ctx.config)
    module = form.module or (config.module(member.module) if member.module else None)
    if module is None:
        choices = "、".join(m.name for m in config.modules)
        return f"你还没有登记所属模块，请加一行「模块：…」写明稿件属于哪个模块（可选：{choices}）。"
    title = form.title or ""
    item_id = item_store.new_item(
        ctx.session,
        ARTICLE.name,
        ctx.now,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        title=title,
    )
    insert_now(
        ctx.session, Article(id=item_id, module=module.name, content=form.content or "", link=form.link or "")
    )
    co = [p for p in form.authors or [] if p.id != member.id]
    store.set_authors(ctx.session, item_id, [member.id, *(p.id for p in co)])
    item = Item.model_construct(
        id=item_id,
        kind=ARTICLE.name,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        title=title,
        created_at=ctx.now,
    )
    approvers = items.submit(ctx, item, sender_person(member))
    authors = "、".join([member.name, *(p.name for p in co)])
    return (
        f"已提交稿件 #{item_id}：《{title}》（{module.name}模块，作者 {authors}）。"
        f"{items.waiting_for(approvers)}\n"
        f"10 分钟内发送图片，会附到 #{item_id}。"
    )


def resubmit(ctx: Context, member: Sender, number: int, form: ArticleForm) -> str:
    """投稿 #N: a revision of an article that was sent back, with the fields that changed."""
    item = ctx.session.get(Item, number)
    article = ctx.session.get(Article, number) if item is not None else None
    if item is None or article is None:
        return f"没有编号为 #{number} 的稿件。发送「我的」查看你的稿件。"
    if member.id not in store.authors(ctx.session, number):
        return f"#{number} 不是你的稿件，只有作者可以修改后重新提交。"
    if article.closed:
        return f"#{number} 已被决定不录用，不能再修改提交。可以写成新稿件重新投稿。"
    if item.status == ItemState.PENDING:
        return f"#{number} 还在审核中，不用重新提交。"
    if item.status != ItemState.REJECTED:
        return f"#{number} 现在是「{ItemState(item.status).label}」，不能修改后重新提交。"
    changed = [
        f.label for f in ArticleForm.fields if f.name != "number" and getattr(form, f.name) is not None
    ]
    if not changed:
        return f"请写明要修改的内容，例：\n投稿 #{number}\n内容：……（修改后的正文）"
    title = form.title or item.title
    if form.module is not None:
        article.module = form.module.name
    if form.content is not None:
        article.content = form.content
    if form.link is not None:
        article.link = form.link
    if form.authors is not None:
        store.set_authors(
            ctx.session, number, [member.id, *(p.id for p in form.authors if p.id != member.id)]
        )
    article.revisions += 1
    store.reopen(ctx.session, number, title)
    ctx.session.flush()
    ctx.session.refresh(item)
    kind = ARTICLE
    approvers = kind.approvers(ctx.session, ctx.config, item)
    asked = set(item_store.asked(ctx.session, number))
    item_store.ask(ctx.session, number, [a.id for a in approvers if a.id not in asked])
    owner = person(ctx.session, item.member_id or member.id) or sender_person(member)
    card = kind.card(ctx.session, ctx.config, item, owner)
    for a in approvers:
        ctx.send(a.userid, card)
    return (
        f"已重新提交稿件 #{number}（第 {article.revisions} 次修改，改了{'、'.join(changed)}）。"
        f"{items.waiting_for(approvers)}"
    )


# -- 宣传 (统计) -------------------------------------------------------------------------------------


def _month_bounds(ctx_now: datetime, config: Config) -> tuple[Any, datetime, datetime]:
    month = period_of("month", ctx_now.date())
    lo, hi = month.bounds(config.tz)
    return month, lo, hi


def _stats_lines(
    session: Session, config: Config, lo: datetime, hi: datetime
) -> list[tuple[PublicityModule, store.ModuleMonth, int]]:
    figures = store.module_figures(session, lo, hi)
    cfg = PublicityConfig.of(config)
    return [
        (m, figures.get(m.name) or store.ModuleMonth(by_channel={}), cfg.module_quota(m.name))
        for m in cfg.modules
    ]


@router.command("宣传", code="publicity_stats", aliases=("投稿统计", "宣传统计"), roles=DECIDERS, reads=True)
def publicity_stats(ctx: Context, member: Sender) -> str:
    """本月各模块的投稿、录用与定额（模块管理骨干、党总支）。也可以写：投稿 统计。"""
    return stats_text(ctx, member)


def stats_text(ctx: Context, member: Sender) -> str:
    if not member.has(*DECIDERS):
        return "「投稿 统计」仅限模块管理骨干和党总支查看。"
    month, lo, hi = _month_bounds(ctx.now, ctx.config)
    lines = [f"{month.label}各模块宣传稿件（录用/定额）："]
    for module, fig, quota in _stats_lines(ctx.session, ctx.config, lo, hi):
        status = "已完成" if fig.accepted >= quota else f"还差 {quota - fig.accepted} 篇"
        mine = " ←" if comparison_key(module.name) == comparison_key(member.module) else ""
        lines.append(f"{module.name}：投稿 {fig.submitted}，录用 {fig.accepted}/{quota}，{status}{mine}")
    return "\n".join(lines)


# -- 录用 / 退回 / 不录用 ---------------------------------------------------------------------------


def _article(ctx: Context, number: int) -> tuple[Item, Article] | str:
    item = ctx.session.get(Item, number)
    article = ctx.session.get(Article, number) if item is not None else None
    if item is None or article is None:
        return f"没有编号为 #{number} 的稿件。发送「待审」查看等你审核的事项。"
    return item, article


def parse_channel(text: str, ctx: Context) -> Channel:
    config = PublicityConfig.of(ctx.config)
    found = config.channel(text)
    if found is not None:
        return found
    raise unknown_choice(config.channels, text, "渠道")


def parse_accept(raw: str, ctx: Any) -> tuple[int, str]:
    number, rest = split_number(raw)
    if number is None:
        raise FieldError("应写编号，如 #12")
    return number, rest


@router.command("录用", code="accept", roles=DECIDERS, args=parse_accept)
def accept(ctx: Context, member: Sender, args: str) -> list[Reply]:
    """录用稿件并按渠道记分，例：录用 #12 厂内。

    不写渠道按默认渠道；已录用的稿件在更高渠道发表时再录用一次，只补差额。
    """
    number, rest = split_number(args)
    if number is None:
        return [Text("请写明编号，例：录用 #12 厂内。")]
    found = _article(ctx, number)
    if isinstance(found, str):
        return [Text(found)]
    item, article = found
    try:
        channel = parse_channel(rest, ctx) if rest else None
    except FieldError as exc:
        return [Text(str(exc) + f"。例：录用 #{number} 厂内")]
    refusal = ARTICLE.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return [Text(refusal)]
    if item.status == ItemState.PENDING:
        if channel is not None:
            ctx.extra[CHANNEL_KEY] = channel
        text, label = approve_one(ctx, member, number)
        text = text.replace("已通过", "已录用", 1)
        label = label.replace("已通过", "已录用", 1)
        if ctx.by_click and label:
            return [ReplaceButton(label), Text(text)]
        return [Text(text)]
    if item.status == ItemState.APPROVED:
        if ctx.by_click:
            return [ReplaceButton("已录用"), Text(f"#{number} 已录用，无需再处理。")]
        if channel is None:
            return [Text(f"#{number} 已录用。在其他渠道发表时请写渠道，例：录用 #{number} 厂内。")]
        return [Text(publish_again(ctx, member, item, article, channel))]
    if item.status == ItemState.REJECTED:
        state = "已不录用" if article.closed else "已退回，等作者修改后重新提交"
        text = f"#{number} {state}。"
    else:
        text = f"#{number} 现在是「{ItemState(item.status).label}」，不能录用。"
    return [ReplaceButton(ItemState(item.status).label), Text(text)] if ctx.by_click else [Text(text)]


def publish_again(ctx: Context, member: Sender, item: Item, article: Article, channel: Channel) -> str:
    """An accepted article published at another channel: pays only what a higher channel adds."""
    before = article.best_channel
    booked = accept_at(ctx, item, member, channel)
    ctx.session.flush()
    if not booked:
        best = PublicityConfig.of(ctx.config).channel(before)
        return (
            f"已记录 #{item.id}《{item.title}》在{channel.name}发表。同一稿件只按最高渠道"
            f"（{best.name if best else before}）计一次分，这次不再加分。"
        )
    for b in booked:
        if b.member.id != member.id:
            ctx.send(
                b.member.userid,
                f"你的稿件 #{item.id}《{item.title}》又在{channel.name}发表，"
                f"补差额 {signed(b.points_x100)} 分。",
            )
    split = "、".join(f"{b.member.name} {signed(b.points_x100)} 分" for b in booked)
    return f"已记录 #{item.id}《{item.title}》在{channel.name}发表，补差额：{split}。"


def parse_number(raw: str, _ctx: Any) -> int:
    number, _rest = split_number(raw)
    if number is None:
        raise FieldError("应写编号")
    return number


def parse_reason(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 2:
        raise FieldError("请写清原因，方便作者修改")
    return value[:300]


class DecisionForm(Form):
    number: int = Field("编号", example="#12", parse=parse_number, positional=True)  # type: ignore[assignment]
    reason: str = Field(
        "理由", example="数据请核对后补充现场照片", parse=parse_reason, positional=True, rest=True
    )  # type: ignore[assignment]


def _tell_authors(ctx: Context, item: Item, text: str) -> None:
    for author in store.authors(ctx.session, item.id or 0):
        who = person(ctx.session, author)
        if who is not None:
            ctx.send(who.userid, text)


@router.command("退回", code="send_back", aliases=("退稿",), roles=DECIDERS, form=DecisionForm)
def send_back(ctx: Context, member: Sender, form: DecisionForm) -> list[Reply]:
    """把稿件退回作者修改，必须写理由，例：退回 #12 数据请核对。作者用「投稿 #12」修改后重新提交。"""
    found = _article(ctx, form.number)
    if isinstance(found, str):
        return [Text(found)]
    item, _article_row = found
    refusal = ARTICLE.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return [Text(refusal)]
    if item.status != ItemState.PENDING or not item_store.decide(
        ctx.session, form.number, ItemState.REJECTED, member.id, ctx.now, form.reason
    ):
        ctx.session.refresh(item)
        text = Text(f"#{item.id} 现在是「{ItemState(item.status).label}」，不能退回。")
        return [ReplaceButton(ItemState(item.status).label), text] if ctx.by_click else [text]
    label = f"已退回 · {stamp(member.name, ctx.now)}"
    ctx.update_cards(ref(item.id), label)
    _tell_authors(
        ctx,
        item,
        f"你的稿件 #{item.id}《{item.title}》被 {member.name} 退回修改。理由：{form.reason}\n"
        f"修改后发送「投稿 #{item.id}」并写上要改的字段（如 内容：…）重新提交。",
    )
    text = Text(f"已退回 #{item.id}《{item.title}》，已把理由告诉作者。")
    return [ReplaceButton(label), text] if ctx.by_click else [text]


@router.command("不录用", code="decline", roles=DECIDERS, form=DecisionForm)
def decline(ctx: Context, member: Sender, form: DecisionForm) -> str:
    """决定不录用稿件（不能再修改提交），必须写理由，例：不录用 #12 与 #9 内容重复。"""
    found = _article(ctx, form.number)
    if isinstance(found, str):
        return found
    item, article = found
    refusal = ARTICLE.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return refusal
    returned = item.status == ItemState.REJECTED and not article.closed
    if not returned and (
        item.status != ItemState.PENDING
        or not item_store.decide(
            ctx.session, form.number, ItemState.REJECTED, member.id, ctx.now, form.reason
        )
    ):
        ctx.session.refresh(item)
        state = "已不录用" if article.closed else ItemState(item.status).label
        return f"#{item.id} 现在是「{state}」，不能再决定不录用。"
    article.closed = True
    booked = _pay_submission(ctx, item, article, member)
    ctx.update_cards(ref(item.id), f"不录用 · {stamp(member.name, ctx.now)}")
    paid = f"投稿分 {signed(booked[0].points_x100)} 分照记。" if booked else ""
    _tell_authors(ctx, item, f"你的稿件 #{item.id}《{item.title}》未被录用。理由：{form.reason}\n{paid}")
    return f"已决定不录用 #{item.id}《{item.title}》，已告诉作者。"


# -- 我的 ------------------------------------------------------------------------------------------


@router.profile_section
def my_articles(ctx: Context) -> str:
    """This month's articles of a correspondent or module lead."""
    assert ctx.member is not None
    if not ctx.member.has(*WRITERS):
        return ""
    _month, lo, hi = _month_bounds(ctx.now, ctx.config)
    submitted, accepted = store.member_month(ctx.session, ctx.member.id, lo, hi)
    module = ctx.member.module
    if not module:
        return f"投稿：本月投稿 {submitted} 篇，录用 {accepted} 篇"
    quota = PublicityConfig.of(ctx.config).module_quota(module)
    team = store.module_accepted(ctx.session, module, lo, hi)
    return f"投稿：本月投稿 {submitted} 篇，录用 {accepted} 篇；{module}模块本月录用 {team}/{quota}"


# -- jobs -------------------------------------------------------------------------------------------


@job("publicity_quota_reminder")
def quota_reminder(ctx: JobContext) -> str:
    """Tell the correspondents and the lead of each module below this month's quota how many are missing."""
    month, lo, hi = _month_bounds(ctx.now, ctx.config)
    told, short_modules = 0, []
    for module, fig, quota in _stats_lines(ctx.session, ctx.config, lo, hi):
        missing = quota - fig.accepted
        if missing <= 0:
            continue
        short_modules.append(f"{module.name}差 {missing} 篇")
        people_ = [
            *store.module_people(ctx.session, module.name, Role.CORRESPONDENT),
            *store.module_people(ctx.session, module.name, Role.MODULE_LEAD),
        ]
        for p in {p.id: p for p in people_}.values():
            ctx.send(
                p.userid,
                f"宣传定额提醒：{month.label}「{module.name}」模块已录用 {fig.accepted} 篇，定额 {quota} 篇，"
                f"还差 {missing} 篇。发送「投稿」提交稿件。",
            )
            told += 1
    if not short_modules:
        return f"{month.label}各模块都已完成定额，没有发提醒。"
    return f"已提醒 {told} 人：" + "、".join(short_modules) + "。"


@job("publicity_monthly_report")
def monthly_report(ctx: JobContext) -> str:
    """The month just ended, per module: submitted, accepted by channel, points, quota met; sent to
    the committee."""
    month = previous(period_of("month", ctx.now.date()))
    lo, hi = month.bounds(ctx.config.tz)
    config = PublicityConfig.of(ctx.config)
    lines = [f"**{month.label}宣传稿件月报**"]
    met = 0
    for module, fig, quota in _stats_lines(ctx.session, ctx.config, lo, hi):
        channels = "、".join(
            f"{c.name} {(fig.by_channel or {})[c.code]}"
            for c in config.channels
            if (fig.by_channel or {}).get(c.code)
        )
        ok = fig.accepted >= quota
        met += ok
        status = tone("完成", "info") if ok else tone(f"差 {quota - fig.accepted} 篇", "warning")
        lines.append(
            f"> {module.name}：投稿 {fig.submitted}，录用 {fig.accepted}/{quota}"
            + (f"（{channels}）" if channels else "")
            + f"，积分 {fmt(fig.points_x100)}，{status}"
        )
    report = Markdown("\n".join(lines))
    committee = people.with_role(ctx.session, Role.COMMITTEE)
    for p in committee:
        ctx.send(p.userid, report)
    return (
        f"{month.label}宣传月报已发给党总支 {len(committee)} 人：{met}/{len(config.modules)} 个模块完成定额。"
    )


# -- the quarterly 党建考评 --------------------------------------------------------------------------


@assessment_component("publicity_quota", "宣传录用完成率", unit="%")
def quota_for_assessment(session: Session, config: Config, period: Period) -> dict[int, float]:
    """Articles accepted in the quarter against what the branch's correspondents owe (0–1, at most 1).
    A branch with no correspondents owes nothing and is left out (it scores 0 on this part)."""
    publicity = PublicityConfig.of(config)
    lo, hi = period.bounds(config.tz)
    quotas = {m.name: publicity.module_quota(m.name) for m in publicity.modules}
    months = (period.end.year - period.start.year) * 12 + period.end.month - period.start.month
    found = store.branch_publicity(session, lo, hi, months, quotas)
    return {b: min(1.0, p.accepted / p.quota) for b, p in found.items() if p.quota}
