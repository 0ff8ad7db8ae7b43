"""Deciding items: 待审, 通过, 驳回 (typed or by card button), 撤销 (withdraw or void), and the working-day
digest of what waits for each approver.

A decision is a conditional update (pending → approved/rejected), so two approvers clicking at once
cannot both decide. It greys every approver's card, tells the people it concerns, and — when
approved — writes the ledger lines in the same transaction.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, normalise
from bot.replies import ReplaceButton, Reply, Text
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers.points import (
    Booked,
    book,
    cap_refusal,
    decision_refusal,
    fmt,
    person,
    reverse,
    short,
    signed,
)
from storage import points as ledger
from storage.models import MediaFile, Member
from storage.points import ApprovalRequest, Submission

router = Router("approvals")
DECIDERS = {"secretary", "committee"}
STATUS_NAMES = {
    "pending": "待审",
    "approved": "已通过",
    "rejected": "已驳回",
    "withdrawn": "已撤销",
    "voided": "已作废",
}
_NUMBER = re.compile(r"#?\s*(\d+)")
LIST_LIMIT = 20


def item_numbers(text: str) -> list[int]:
    """`#12`, `＃12`, `12`, `#12 #13` → [12, 13]."""
    return [int(n) for n in _NUMBER.findall(normalise(text))]


def split_number(text: str) -> tuple[int | None, str]:
    """(the first `#N`, the rest of the text)."""
    stripped = text.strip()
    m = re.match(r"#?\s*(\d+)\s*", normalise(stripped))
    if not m:
        return None, stripped
    return int(m.group(1)), stripped[m.end() :].strip()


def from_click(ctx: Context) -> bool:
    return ctx.message.kind == "event" and ctx.message.event == "template_card_event"


def stamp(who: str, at: datetime) -> str:
    return f"{who} {at:%m-%d %H:%M}"


def _decided_text(ctx: Context, sub: Submission) -> str:
    """#12 已通过（张伟 11-24 09:13），无需再处理。"""
    by_id, at = (sub.voided_by, sub.voided_at) if sub.status == "voided" else (sub.decided_by, sub.decided_at)
    by = ctx.session.get(Member, by_id) if by_id else None
    who = stamp(by.name, at.astimezone(ctx.config.tz)) if by and at else ""
    return f"#{sub.id} {STATUS_NAMES[sub.status]}" + (f"（{who}）" if who else "") + "，无需再处理。"


def _missing(number: int) -> str:
    return f"没有编号为 #{number} 的申报。发送「待审」查看等你审核的事项。"


# -- 待审 -------------------------------------------------------------------------------------------


@router.command("待审", code="pending", aliases=("审核", "待办"), roles=DECIDERS)
def pending(ctx: Context, member: Sender) -> str:
    """列出等你审核的申报，最早的在前。"""
    s, a = Submission, ApprovalRequest
    waiting = select(s).join(a, a.item_id == s.id).where(a.approver_id == member.id, s.status == "pending")
    total = ctx.session.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
    if not total:
        return "没有等你审核的申报。"
    subs = ctx.session.execute(waiting.order_by(s.created_at, s.id).limit(LIST_LIMIT)).scalars().all()
    names = dict(
        ctx.session.execute(
            select(Member.id, Member.name).where(Member.id.in_({x.member_id for x in subs}))
        ).all()
    )
    refs = [f"item:{x.id}" for x in subs]
    photos = dict(
        ctx.session.execute(
            select(MediaFile.ref, func.count()).where(MediaFile.ref.in_(refs)).group_by(MediaFile.ref)
        ).all()
    )
    lines = [f"等你审核的申报 {total} 项（最早的在前）："]
    for x in subs:
        created = x.created_at.astimezone(ctx.config.tz)
        evidence = photos.get(f"item:{x.id}", 0)
        lines.append(
            f"#{x.id} {created:%m-%d} {names.get(x.member_id, '?')} {x.kind} {short(x.title, 24)} "
            f"{fmt(x.points_x100)} 分" + (f" · 图 {evidence}" if evidence else "")
        )
    if total > LIST_LIMIT:
        lines.append(f"……另有 {total - LIST_LIMIT} 项，处理完再发「待审」查看。")
    lines.append("回复「通过 #编号」或「驳回 #编号 理由」，也可以直接点卡片上的按钮。")
    return "\n".join(lines)


# -- 通过 / 驳回 -------------------------------------------------------------------------------------


def _notify_approved(ctx: Context, sub: Submission, booked: list[Booked], member: Sender) -> None:
    for b in booked:
        if b.member.id == member.id:
            continue
        own = "你的" if b.member.id == sub.member_id else "你参与的"
        ctx.send(
            b.member.userid,
            f"{own}{sub.kind}申报 #{sub.id}（{sub.title}）已由 {member.name} 审核通过，"
            f"{signed(b.points_x100)} 分。",
        )
    owner = person(ctx.session, sub.member_id)
    if owner is not None and not any(b.member.id == owner.id for b in booked):
        ctx.send(owner.userid, f"你的{sub.kind}申报 #{sub.id}（{sub.title}）已由 {member.name} 审核通过。")


def approve_one(ctx: Context, member: Sender, number: int) -> tuple[str, str]:
    """Approve `#number`; returns (what to say, the button label when it is decided now or already)."""
    sub = ctx.session.get(Submission, number)
    if sub is None:
        return _missing(number), ""
    refusal = decision_refusal(ctx.session, ctx.config, member, sub)
    if refusal:
        return refusal, ""
    if sub.status != "pending":
        return _decided_text(ctx, sub), STATUS_NAMES[sub.status]
    indicator = ctx.config.indicator(sub.indicator) if sub.indicator and sub.kind != "创新" else None
    if indicator is not None:
        over = cap_refusal(
            ctx.session,
            indicator,
            sub.member_id,
            sub.day,
            sub.points_x100,
            with_pending=False,
            exclude_item=sub.id,
        )
        if over:
            return f"#{sub.id} 不能通过：{over}请用「驳回 #{sub.id} 理由」退回。", ""
    if not ledger.decide(ctx.session, sub.id, "approved", member.id, ctx.now):
        ctx.session.refresh(sub)
        return _decided_text(ctx, sub), STATUS_NAMES[sub.status]
    ctx.session.refresh(sub)
    booked = book(ctx.session, ctx.config, sub, member.id, ctx.now)
    # The clicked card and every other approver's card show the same label, whichever comes last.
    label = f"已通过 · {stamp(member.name, ctx.now)}"
    ctx.update_cards(f"item:{sub.id}", label)
    _notify_approved(ctx, sub, booked, member)
    split = "、".join(f"{b.member.name} {signed(b.points_x100)} 分" for b in booked) or "无积分变动"
    return f"已通过 #{sub.id}：{sub.title}，{split}。", label


@router.command("通过", code="approve", aliases=("同意", "批准"), roles=DECIDERS)
def approve(ctx: Context, member: Sender, args: str) -> list[Reply]:
    """审核通过一项或几项申报，例：通过 #12 或 通过 #12 #13。"""
    numbers = item_numbers(args)
    if not numbers:
        return [Text("请写明编号，例：通过 #12。发送「待审」查看等你审核的事项。")]
    answers = [approve_one(ctx, member, n) for n in dict.fromkeys(numbers)]
    text = Text("\n".join(a for a, _ in answers))
    label = answers[0][1]
    if from_click(ctx) and label:
        return [ReplaceButton(label), text]
    return [text]


def parse_item_number(raw: str, _ctx: object) -> int:
    numbers = item_numbers(raw)
    if len(numbers) != 1:
        raise FieldError("应是一个编号")
    return numbers[0]


def parse_reason(raw: str, _ctx: object) -> str:
    value = raw.strip()
    if len(value) < 2:
        raise FieldError("请写清驳回的原因，方便对方修改")
    return value[:300]


class RejectForm(Form):
    number: int = Field("编号", example="#12", parse=parse_item_number, positional=True)  # type: ignore[assignment]
    reason: str = Field(
        "理由",
        example="缺少现场照片，请补充后重新申报",
        parse=parse_reason,  # type: ignore[assignment]
        positional=True,
        rest=True,
    )


@router.command("驳回", code="reject", aliases=("退回申报", "不通过"), roles=DECIDERS, form=RejectForm)
def reject(ctx: Context, member: Sender, form: RejectForm) -> list[Reply]:
    """驳回一项申报，必须写理由，例：驳回 #12 缺少现场照片。"""
    number, reason = form.number, form.reason
    sub = ctx.session.get(Submission, number)
    if sub is None:
        return [Text(_missing(number))]
    refusal = decision_refusal(ctx.session, ctx.config, member, sub)
    if refusal:
        return [Text(refusal)]
    if sub.status != "pending" or not ledger.decide(
        ctx.session, sub.id, "rejected", member.id, ctx.now, reason
    ):
        ctx.session.refresh(sub)
        text = Text(_decided_text(ctx, sub))
        return [ReplaceButton(STATUS_NAMES[sub.status]), text] if from_click(ctx) else [text]
    label = f"已驳回 · {stamp(member.name, ctx.now)}"
    ctx.update_cards(f"item:{sub.id}", label)
    owner = person(ctx.session, sub.member_id)
    if owner is not None:
        ctx.send(
            owner.userid,
            f"你的{sub.kind}申报 #{sub.id}（{sub.title}）被 {member.name} 驳回。理由：{reason}\n"
            "可以修改后重新申报。",
        )
    text = Text(f"已驳回 #{sub.id}：{owner.name if owner else ''} {sub.title}。已把理由告诉本人。")
    return [ReplaceButton(label), text] if from_click(ctx) else [text]


# -- 撤销 -------------------------------------------------------------------------------------------


def _withdraw(ctx: Context, sub: Submission, member: Sender) -> str:
    if not ledger.decide(ctx.session, sub.id, "withdrawn", member.id, ctx.now):
        ctx.session.refresh(sub)
        return _decided_text(ctx, sub)
    ctx.update_cards(f"item:{sub.id}", f"已撤销 · {stamp(member.name, ctx.now)}")
    return f"已撤销 #{sub.id}（{sub.title}），审核人不会再处理它。"


def _void(ctx: Context, sub: Submission, member: Sender, reason: str) -> str:
    if not reason:
        return f"作废已通过的 #{sub.id} 必须写理由，例：撤销 #{sub.id} 重复申报。"
    if not ledger.void(ctx.session, sub.id, member.id, ctx.now, reason):
        ctx.session.refresh(sub)
        return f"#{sub.id} 现在是「{STATUS_NAMES[sub.status]}」，不能作废。"
    reversed_ = reverse(ctx.session, sub, member.id, ctx.now, reason)
    for r in reversed_:
        if r.member.id != member.id:
            ctx.send(
                r.member.userid,
                f"你的 #{sub.id}（{sub.title}）已被 {member.name} 作废，冲正 {signed(r.points_x100)} 分。"
                f"理由：{reason}",
            )
    split = "、".join(f"{r.member.name} {signed(r.points_x100)} 分" for r in reversed_) or "无积分变动"
    return f"已作废 #{sub.id}（{sub.title}），冲正：{split}。原记录保留可查。"


@router.command("撤销", code="withdraw", aliases=("撤回", "作废"))
def withdraw(ctx: Context, member: Sender, args: str) -> str:
    """撤回我待审的申报；审核人可作废已通过的事项（须写理由，记冲正流水），例：撤销 #12 重复申报。"""
    number, reason = split_number(args)
    if number is None:
        return "请写明编号，例：撤销 #12；作废已通过的事项还要写理由：撤销 #12 重复申报。"
    sub = ctx.session.get(Submission, number)
    if sub is None:
        return f"没有编号为 #{number} 的申报。发送「我的」查看你的待审事项。"
    own = member.id in (sub.member_id, sub.submitted_by)
    if sub.status == "pending":
        if own:
            return _withdraw(ctx, sub, member)
        if decision_refusal(ctx.session, ctx.config, member, sub) is None:
            return f"#{sub.id} 还在待审。不同意请用「驳回 #{sub.id} 理由」，申报人会收到理由。"
        return f"#{sub.id} 不是你的申报，不能撤销。"
    if sub.status == "approved":
        refusal = decision_refusal(ctx.session, ctx.config, member, sub)
        if refusal is None:
            return _void(ctx, sub, member, reason)
        if sub.member_id == member.id:
            return (
                f"#{sub.id} 已审核通过，不能自己撤销。"
                f"如记分有误，请联系支部书记用「撤销 #{sub.id} 理由」作废。"
            )
        return f"#{sub.id} 不是你的申报，不能撤销。" if not member.has(*DECIDERS) else refusal
    return f"#{sub.id} 现在是「{STATUS_NAMES[sub.status]}」，无需撤销。"


# -- the digest -------------------------------------------------------------------------------------


def age(delta: timedelta) -> str:
    if delta >= timedelta(days=1):
        return f"{delta.days} 天"
    if delta >= timedelta(hours=1):
        return f"{delta.seconds // 3600} 小时"
    return f"{max(1, delta.seconds // 60)} 分钟"


@job("pending_digest")
def pending_digest(ctx: JobContext) -> str:
    """Working days: tell each approver how many items wait for them and how old the oldest is."""
    s, a = Submission, ApprovalRequest
    rows = ctx.session.execute(
        select(Member.userid, func.count(), func.min(s.created_at), func.min(s.id))
        .select_from(a)
        .join(s, s.id == a.item_id)
        .join(Member, Member.id == a.approver_id)
        .where(s.status == "pending", Member.active.is_(True))
        .group_by(Member.userid)
        .order_by(Member.userid)
    ).all()
    for userid, count, oldest, first in rows:
        waited = age(ctx.now - oldest)
        ctx.send(
            userid,
            f"待审提醒：有 {count} 项申报等你审核，最早的 #{first} 已等 {waited}。"
            "发送「待审」查看，或直接点卡片上的按钮处理。",
        )
    return f"{len(rows)} approvers reminded"
