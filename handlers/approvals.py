"""Deciding items of every kind: 待审, 通过, 驳回 (typed or by card button), 撤销 (withdraw or void),
the photos that follow a submission, and the working-day digest of what waits for each approver
(with the lines practices add through `@digest_section`, e.g. overdue 轮训 plans).

Nothing here knows a kind: each is registered in `handlers/items.py` by its practice, which says who
decides it, how its card reads and what a decision books. A decision is a conditional update
(pending → approved/rejected), so two approvers clicking at once cannot both decide; it greys every
approver's card, tells the people it concerns, and books in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, half_width
from bot.replies import ReplaceButton, Reply, Text
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers.items import KINDS, NUMBER, ItemKind, kind_of, ref
from handlers.ledger import Booked, short, signed
from storage import items as item_store
from storage import people
from storage.items import Item
from storage.vocabulary import ItemState, Role

router = Router("approvals")
DECIDERS = {Role.SECRETARY, Role.COMMITTEE}
EVIDENCE_WINDOW = timedelta(minutes=10)
_NUMBER = re.compile(r"#?\s*" + NUMBER)
LIST_LIMIT = 20


def item_numbers(text: str) -> list[int]:
    """`#12`, `＃12`, `12`, `#12 #13` → [12, 13]."""
    return [int(n) for n in _NUMBER.findall(half_width(text))]


def split_number(text: str) -> tuple[int | None, str]:
    """(the first `#N`, the rest of the text)."""
    stripped = text.strip()
    m = re.match(r"#?\s*" + NUMBER + r"\s*", half_width(stripped))
    if not m:
        return None, stripped
    return int(m.group(1)), stripped[m.end() :].strip()


_DECIDERS: dict[tuple[ItemKind, ...], frozenset[str]] = {}


def deciders() -> frozenset[str]:
    """Everyone who may decide some registered kind (the secretaries, the committee, later module leads).
    Asked for each 帮助 by three commands, so kept for the kinds registered (a kind's roles are fixed)."""
    kinds = tuple(KINDS.values())
    found = _DECIDERS.get(kinds)
    if found is None:
        _DECIDERS.clear()
        found = _DECIDERS[kinds] = frozenset(role for kind in kinds for role in kind.decider_roles)
    return found


def stamp(who: str, at: datetime) -> str:
    return f"{who} {at:%m-%d %H:%M}"


def _decided_text(ctx: Context, item: Item) -> str:
    """#12 已通过（张伟 11-24 09:13），无需再处理。"""
    voided = item.status == ItemState.VOIDED
    by_id, at = (item.voided_by, item.voided_at) if voided else (item.decided_by, item.decided_at)
    name = item_store.member_name(ctx.session, by_id)
    who = stamp(name, at.astimezone(ctx.config.tz)) if name and at else ""
    return f"#{item.id} {ItemState(item.status).label}" + (f"（{who}）" if who else "") + "，无需再处理。"


def _missing(number: int) -> str:
    return f"没有编号为 #{number} 的事项。发送「待审」查看等你审核的事项。"


# -- 待审 -------------------------------------------------------------------------------------------


@router.command("待审", code="pending", aliases=("审核", "待办"), roles=deciders, reads=True)
def pending(ctx: Context, member: Sender) -> str:
    """列出等你审核的事项，最早的在前。"""
    waiting = item_store.waiting_for(ctx.session, member.id, LIST_LIMIT)
    if not waiting.total:
        return "没有等你审核的事项。"
    photos = item_store.evidence_counts(ctx.session, [x.id for x in waiting.items if x.id is not None])
    lines = [f"等你审核的事项 {waiting.total} 项（最早的在前）："]
    for x in waiting.items:
        created = x.created_at.astimezone(ctx.config.tz)
        value = kind_of(x).value(ctx.session, x)
        evidence = photos.get(x.id or 0, 0)
        owner = waiting.owners.get(x.member_id or 0, "?")
        lines.append(
            f"#{x.id} {created:%m-%d} {owner} {x.kind} {short(x.title, 24)}"
            + (f" {value}" if value else "")
            + (f" · 附件 {evidence}" if evidence else "")
        )
    if waiting.total > LIST_LIMIT:
        lines.append(f"……另有 {waiting.total - LIST_LIMIT} 项，处理完再发「待审」查看。")
    lines.append("回复「通过 #编号」或「驳回 #编号 理由」，也可以直接点卡片上的按钮。")
    return "\n".join(lines)


# -- 通过 / 驳回 -------------------------------------------------------------------------------------


def _notify_approved(ctx: Context, item: Item, booked: list[Booked], member: Sender) -> None:
    noun = kind_of(item).noun
    for b in booked:
        if b.member.id == member.id:
            continue
        own = "你的" if b.member.id == item.member_id else "你参与的"
        ctx.send(
            b.member.userid,
            f"{own}{item.kind}{noun} #{item.id}（{item.title}）已由 {member.name} 审核通过，"
            f"{signed(b.points_x100)} 分。",
        )
    owner = people.by_id(ctx.session, item.member_id) if item.member_id is not None else None
    if owner is not None and not any(b.member.id == owner.id for b in booked):
        ctx.send(
            owner.userid, f"你的{item.kind}{noun} #{item.id}（{item.title}）已由 {member.name} 审核通过。"
        )


def approve_one(ctx: Context, member: Sender, number: int) -> tuple[str, str]:
    """Approve `#number`; returns (what to say, the button label when it is decided now or already)."""
    item = ctx.session.get(Item, number)
    if item is None:
        return _missing(number), ""
    kind = kind_of(item)
    refusal = kind.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return refusal, ""
    if item.status != ItemState.PENDING:
        return _decided_text(ctx, item), ItemState(item.status).label
    blocked = kind.blocker(ctx, item)
    if blocked:
        return f"#{item.id} 不能通过：{blocked}请用「驳回 #{item.id} 理由」退回。", ""
    if not item_store.decide(ctx.session, number, ItemState.APPROVED, member.id, ctx.now):
        ctx.session.refresh(item)
        return _decided_text(ctx, item), ItemState(item.status).label
    ctx.session.refresh(item)
    booked = kind.approve(ctx, item, member)
    # The clicked card and every other approver's card show the same label, whichever comes last.
    label = f"已通过 · {stamp(member.name, ctx.now)}"
    ctx.update_cards(ref(item.id), label)
    _notify_approved(ctx, item, booked, member)
    split = "、".join(f"{b.member.name} {signed(b.points_x100)} 分" for b in booked) or "无积分变动"
    return f"已通过 #{item.id}：{item.title}，{split}。", label


def parse_numbers(raw: str, _ctx: object) -> list[int]:
    numbers = item_numbers(raw)
    if not numbers:
        raise FieldError("应写编号，如 #12")
    return numbers


def parse_withdrawal(raw: str, _ctx: object) -> tuple[int, str]:
    number, reason = split_number(raw)
    if number is None:
        raise FieldError("应写编号，如 #12")
    return number, reason


@router.command("通过", code="approve", aliases=("同意", "批准"), roles=deciders, args=parse_numbers)
def approve(ctx: Context, member: Sender, args: str) -> list[Reply]:
    """审核通过一项或几项申报，例：通过 #12 或 通过 #12 #13。"""
    numbers = item_numbers(args)
    if not numbers:
        return [Text("请写明编号，例：通过 #12。发送「待审」查看等你审核的事项。")]
    answers = [approve_one(ctx, member, n) for n in dict.fromkeys(numbers)]
    text = Text("\n".join(a for a, _ in answers))
    label = answers[0][1]
    if ctx.by_click and label:
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


@router.command("驳回", code="reject", aliases=("退回申报", "不通过"), roles=deciders, form=RejectForm)
def reject(ctx: Context, member: Sender, form: RejectForm) -> list[Reply]:
    """驳回一项申报，必须写理由，例：驳回 #12 缺少现场照片。"""
    number, reason = form.number, form.reason
    item = ctx.session.get(Item, number)
    if item is None:
        return [Text(_missing(number))]
    kind = kind_of(item)
    refusal = kind.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return [Text(refusal)]
    decided = item.status == ItemState.PENDING and item_store.decide(
        ctx.session, number, ItemState.REJECTED, member.id, ctx.now, reason
    )
    if not decided:
        ctx.session.refresh(item)
        text = Text(_decided_text(ctx, item))
        return [ReplaceButton(ItemState(item.status).label), text] if ctx.by_click else [text]
    label = f"已驳回 · {stamp(member.name, ctx.now)}"
    ctx.update_cards(ref(item.id), label)
    owner = people.by_id(ctx.session, item.member_id) if item.member_id is not None else None
    if owner is not None:
        ctx.send(
            owner.userid,
            f"你的{item.kind}{kind.noun} #{item.id}（{item.title}）被 {member.name} 驳回。理由：{reason}\n"
            "可以修改后重新申报。",
        )
    text = Text(f"已驳回 #{item.id}：{owner.name if owner else ''} {item.title}。已把理由告诉本人。")
    return [ReplaceButton(label), text] if ctx.by_click else [text]


# -- 撤销 -------------------------------------------------------------------------------------------


def _withdraw(ctx: Context, item: Item, member: Sender) -> str:
    if not item_store.decide(ctx.session, item.id or 0, ItemState.WITHDRAWN, member.id, ctx.now):
        ctx.session.refresh(item)
        return _decided_text(ctx, item)
    ctx.update_cards(ref(item.id), f"已撤销 · {stamp(member.name, ctx.now)}")
    return f"已撤销 #{item.id}（{item.title}），审核人不会再处理它。"


def _void(ctx: Context, item: Item, member: Sender, reason: str) -> str:
    if not reason:
        return f"作废已通过的 #{item.id} 必须写理由，例：撤销 #{item.id} 重复申报。"
    if not item_store.void(ctx.session, item.id or 0, member.id, ctx.now, reason):
        ctx.session.refresh(item)
        return f"#{item.id} 现在是「{ItemState(item.status).label}」，不能作废。"
    reversed_ = kind_of(item).void(ctx, item, member, reason)
    for r in reversed_:
        if r.member.id != member.id:
            ctx.send(
                r.member.userid,
                f"你的 #{item.id}（{item.title}）已被 {member.name} 作废，冲正 {signed(r.points_x100)} 分。"
                f"理由：{reason}",
            )
    split = "、".join(f"{r.member.name} {signed(r.points_x100)} 分" for r in reversed_) or "无积分变动"
    return f"已作废 #{item.id}（{item.title}），冲正：{split}。原记录保留可查。"


@router.command("撤销", code="withdraw", aliases=("撤回", "作废"), args=parse_withdrawal)
def withdraw(ctx: Context, member: Sender, args: str) -> str:
    """撤回我待审的申报；审核人可作废已通过的事项（须写理由，记冲正流水），例：撤销 #12 重复申报。"""
    number, reason = split_number(args)
    if number is None:
        return "请写明编号，例：撤销 #12；作废已通过的事项还要写理由：撤销 #12 重复申报。"
    item = ctx.session.get(Item, number)
    if item is None:
        return f"没有编号为 #{number} 的事项。发送「我的」查看你的待审事项。"
    kind = kind_of(item)
    own = member.id in (item.member_id, item.submitted_by)
    if item.status == ItemState.PENDING:
        if own:
            return _withdraw(ctx, item, member)
        if kind.refusal(ctx.session, ctx.config, member, item) is None:
            return f"#{item.id} 还在待审。不同意请用「驳回 #{item.id} 理由」，申报人会收到理由。"
        return f"#{item.id} 不是你的{kind.noun}，不能撤销。"
    if item.status == ItemState.APPROVED:
        refusal = kind.refusal(ctx.session, ctx.config, member, item)
        if refusal is None:
            return _void(ctx, item, member, reason)
        if item.member_id == member.id:
            return (
                f"#{item.id} 已审核通过，不能自己撤销。"
                f"如记分有误，请联系支部书记用「撤销 #{item.id} 理由」作废。"
            )
        return f"#{item.id} 不是你的{kind.noun}，不能撤销。" if not member.has(*deciders()) else refusal
    return f"#{item.id} 现在是「{ItemState(item.status).label}」，无需撤销。"


# -- 我的 ------------------------------------------------------------------------------------------


@router.profile_section
def my_pending(ctx: Context) -> str:
    """My items still waiting for a decision, of every kind."""
    assert ctx.member is not None
    waiting = item_store.pending_of(ctx.session, ctx.member.id)
    if not waiting:
        return ""
    shown_items = waiting[:5]
    values: dict[int, str] = {}
    for kind in {k for _, k, _ in shown_items}:
        values |= KINDS[kind].values(ctx.session, [i for i, k, _ in shown_items if k == kind])
    shown = "；".join(
        f"#{i} {short(title, 16)}" + (f" {values[i]}" if values.get(i) else "") for i, _, title in shown_items
    )
    return f"待审：{shown}" + ("；……" if len(waiting) > 5 else "")


# -- evidence ---------------------------------------------------------------------------------------


@router.on_media
def attach_evidence(ctx: Context) -> str | None:
    """A photo or file sent within 10 minutes of a submission is kept as that item's evidence."""
    assert ctx.member is not None
    item_id = item_store.latest_pending_since(ctx.session, ctx.member.id, ctx.now - EVIDENCE_WINDOW)
    if item_id is None:
        return None
    item = ctx.session.get(Item, item_id)
    if item is None or not kind_of(item).takes_evidence:
        return None
    ctx.fetch_media(ctx.message.media_id, ref=ref(item_id))
    count = item_store.evidence_counts(ctx.session, [item_id]).get(item_id, 0)
    return f"已附到 #{item_id}（共 {count} 个附件）。"


# -- the digest -------------------------------------------------------------------------------------


def age(delta: timedelta) -> str:
    if delta >= timedelta(days=1):
        return f"{delta.days} 天"
    if delta >= timedelta(hours=1):
        return f"{delta.seconds // 3600} 小时"
    return f"{max(1, delta.seconds // 60)} 分钟"


DigestSection = Callable[[Session, Config, datetime], dict[str, list[str]]]
DIGEST_SECTIONS: list[DigestSection] = []


def digest_section(fn: DigestSection) -> DigestSection:
    """Register lines for the working-day digest: `(session, config, now) -> {userid: [line, ...]}`.

    A practice adds what its people should hear about each morning (e.g. overdue plans) without this
    module knowing it; the lines follow the 待审 sentence, in registration order, one message each."""
    DIGEST_SECTIONS.append(fn)
    return fn


@job("pending_digest", calendar="workdays")
def pending_digest(ctx: JobContext) -> str:
    """Working days: tell each approver how many items wait for them and how old the oldest is, followed by
    the lines of every registered digest section; one message per recipient."""
    rows = item_store.digest(ctx.session)
    messages: dict[str, list[str]] = {}
    for userid, count, oldest, first in rows:
        waited = age(ctx.now - oldest)
        messages[userid] = [
            f"待审提醒：有 {count} 项申报等你审核，最早的 #{first} 已等 {waited}。"
            "发送「待审」查看，或直接点卡片上的按钮处理。"
        ]
    extra = 0
    for section in DIGEST_SECTIONS:
        for userid, lines in section(ctx.session, ctx.config, ctx.now).items():
            if lines:
                messages.setdefault(userid, ["待审提醒："]).extend(lines)
                extra += len(lines)
    for userid, lines in messages.items():
        ctx.send(userid, "\n".join(lines))
    if not messages:
        return "没有等待审核或需要提醒的事项，没有发提醒。"
    waiting = sum(r[1] for r in rows)
    more = f"，另有 {extra} 条其他提醒" if extra else ""
    return f"已提醒 {len(messages)} 人：共 {waiting} 项等待审核{more}。"
