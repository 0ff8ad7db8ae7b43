"""我的岗位我尽责 and 创新积分: claiming points (尽责, 创新), awarding them directly (加分), evidence
photos, and how an approved item is booked into the append-only ledger.

A claim becomes a pending `Submission` numbered `#N` and reaches its approvers as a template card;
deciding it is `handlers/approvals.py`. Points are whole hundredths in storage (`x100`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from bot.config import Config, Indicator, InnovationType, NamedEntry, normalize
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, as_number, normalise, parse_date
from bot.replies import Button, Card
from bot.router import Router
from handlers.periods import KIND_NAMES, period_keys, period_of
from storage import points as ledger
from storage.models import Branch, MediaFile, Member, MemberRole
from storage.points import INNOVATION, Innovation, InnovationMember, Submission
from storage.queries import insert_now, insert_rows

router = Router("points")

EVIDENCE_WINDOW = timedelta(minutes=10)
PARTY = ("党员", "预备党员")
NEXT = {"week": "下周", "month": "下个月", "quarter": "下个季度", "year": "明年"}


# -- points as people read them ---------------------------------------------------------------------


def x100(points: float) -> int:
    return round(points * 100)


def fmt(points_x100: int) -> str:
    """250 → "2.5", 300 → "3", -200 → "-2"."""
    sign = "-" if points_x100 < 0 else ""
    whole, frac = divmod(abs(points_x100), 100)
    return f"{sign}{whole}" if not frac else f"{sign}{whole}.{frac:02d}".rstrip("0")


def signed(points_x100: int) -> str:
    return ("+" if points_x100 > 0 else "") + fmt(points_x100)


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- members named by people ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """A member as the points rules need them."""

    id: int
    userid: str
    name: str
    branch_id: int | None
    team_id: int | None
    political_status: str
    branch: str = ""


_M, _R = Member.__table__.c, MemberRole.__table__.c
_PEOPLE = (
    select(_M.id, _M.userid, _M.name, _M.branch_id, _M.team_id, _M.political_status, Branch.__table__.c.name)
    .select_from(Member.__table__)
    .outerjoin(Branch.__table__, Branch.__table__.c.id == _M.branch_id)
    .where(_M.active.is_(True))
    .order_by(_M.id)
)
# Built once (claims run often, and building a statement costs more than running it): by id, by
# userid, by name, and by role (in a branch, or anywhere).
_BY_ID = _PEOPLE.where(_M.id == bindparam("value"))
_BY_USERID = _PEOPLE.where(_M.userid == bindparam("value"))
_BY_NAME = _PEOPLE.where(_M.name == bindparam("value"))
_ROLE_HOLDERS = select(_R.member_id).where(_R.role == bindparam("role"))
_WITH_ROLE = _PEOPLE.where(_M.id.in_(_ROLE_HOLDERS))
_WITH_ROLE_IN_BRANCH = _WITH_ROLE.where(_M.branch_id == bindparam("branch"))


def _people(session: Session, stmt: Select[Any], **params: Any) -> list[Person]:
    rows = session.connection().execute(stmt, params).all()
    return [Person(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "") for r in rows]


def person(session: Session, member_id: int) -> Person | None:
    found = _people(session, _BY_ID, value=member_id)
    return found[0] if found else None


def find_person(session: Session, text: str) -> Person:
    """The member someone means by a name or userid; FieldError when none or several match."""
    word = normalise(text).strip().lstrip("@")
    if not word:
        raise FieldError("不能为空")
    found = _people(session, _BY_USERID, value=word) or _people(session, _BY_NAME, value=word)
    if not found:
        raise FieldError(f"找不到成员「{word}」，请写姓名或企业微信账号")
    if len(found) > 1:
        who = "、".join(f"{p.userid}（{p.branch or '未登记支部'}）" for p in found)
        raise FieldError(f"有 {len(found)} 位「{word}」：{who}，请改写账号")
    return found[0]


def sender_person(member: Sender) -> Person:
    return Person(
        member.id,
        member.userid,
        member.name,
        member.branch_id,
        member.team_id,
        member.political_status,
        member.branch,
    )


# -- caps -------------------------------------------------------------------------------------------


def cap_refusal(
    session: Session,
    indicator: Indicator,
    member_id: int,
    day: date,
    points_x100: int,
    *,
    with_pending: bool,
    exclude_item: int | None = None,
) -> str | None:
    """Why one more entry of `indicator` would break its cap (e.g. 3 times a quarter), or None."""
    cap = indicator.cap
    if cap is None:
        return None
    period = period_of(cap.period, day)
    count, points = ledger.indicator_usage(
        session, member_id, indicator.code, period.start, period.end, exclude_item=exclude_item
    )
    waiting = (0, 0)
    if with_pending:
        waiting = ledger.pending_usage(session, member_id, indicator.code, period.start, period.end)
    used, used_points = count + waiting[0], points + waiting[1]
    every = f"每{KIND_NAMES[cap.period]}"
    pending_note = f"（含待审 {waiting[0]} 次）" if waiting[0] else ""
    name = f"「{indicator.code} {indicator.name}」"
    if cap.count is not None and used + 1 > cap.count:
        return (
            f"{name}{every}最多 {cap.count} 次，{period.label}已有 {used} 次{pending_note}，已达上限，"
            f"不能再记。{NEXT[cap.period]}可以再申报。"
        )
    if cap.points is not None and used_points + points_x100 > x100(cap.points):
        return (
            f"{name}{every}最多 {fmt(x100(cap.points))} 分，{period.label}已有 {fmt(used_points)} 分"
            f"{pending_note}，再加 {fmt(points_x100)} 分会超过上限。"
        )
    return None


# -- who decides ------------------------------------------------------------------------------------


def approval_roles(config: Config, kind: str) -> list[str]:
    return list(config.innovation.approval_roles if kind == "创新" else config.points.approval.roles)


def _with_role(session: Session, role: str, branch_id: int | None = None) -> list[Person]:
    if branch_id is None:
        return _people(session, _WITH_ROLE, role=role)
    return _people(session, _WITH_ROLE_IN_BRANCH, role=role, branch=branch_id)


def approvers_for(
    session: Session, config: Config, kind: str, owner: Person, beneficiaries: Sequence[int] = ()
) -> list[Person]:
    """Who receives the card: the branch's approvers (secretaries), the committee where the config says
    so; the committee when the branch has nobody else. Never someone the item pays."""
    excluded = {owner.id, *beneficiaries}
    roles = approval_roles(config, kind)
    found: list[Person] = []
    for role in roles:
        if role == "committee":
            found += _with_role(session, "committee")
        elif owner.branch_id is not None:
            found += _with_role(session, role, owner.branch_id)
    found = [p for p in found if p.id not in excluded]
    if not found:
        found = [p for p in _with_role(session, "committee") if p.id not in excluded]
    unique: dict[int, Person] = {}
    for p in found:
        unique.setdefault(p.id, p)
    return list(unique.values())


def beneficiaries(session: Session, sub: Submission) -> list[int]:
    """Everyone an item pays: the member, and for an innovation every team member."""
    if sub.kind != "创新":
        return [sub.member_id]
    team = session.execute(select(InnovationMember.member_id).where(InnovationMember.innovation_id == sub.id))
    return [sub.member_id, *team.scalars()]


def decision_refusal(session: Session, config: Config, member: Sender, sub: Submission) -> str | None:
    """Why `member` may not decide (or void) `sub`, or None. Checked for typed commands and clicks alike."""
    if member.id in beneficiaries(session, sub):
        return f"#{sub.id} 是你自己的申报，不能由你审核，已交给其他审核人处理。"
    if member.has("committee"):
        return None  # 党总支: every branch
    roles = [r for r in approval_roles(config, sub.kind) if r != "committee"]
    if member.has(*roles):
        if member.branch_id is not None and member.branch_id == sub.branch_id:
            return None
        branch = session.get(Branch, sub.branch_id).name if sub.branch_id else "未登记支部"  # type: ignore[union-attr]
        return f"#{sub.id} 是{branch}成员的事项，只能由该支部书记或党总支处理。"
    return f"#{sub.id} 只能由支部书记或党总支处理。"


# -- submitting: the item, its approvers, their cards ------------------------------------------------


def evidence_count(session: Session, item_id: int) -> int:
    return int(session.execute(select(func.count()).where(MediaFile.ref == f"item:{item_id}")).scalar_one())


def approval_card(sub: Submission, owner: Person, evidence: int) -> Card:
    return Card(
        title=f"{sub.kind}申报 #{sub.id}",
        subtitle=sub.title,
        source="先锋 · 积分审核",
        facts=(
            ("提交人", f"{owner.name}（{owner.branch or '未登记支部'}）"),
            ("类型" if sub.kind == "创新" else "指标", sub.title),
            ("分值", f"{fmt(sub.points_x100)} 分"),
            ("证明材料", f"{evidence} 张"),
        ),
        description=sub.description,
        buttons=(
            Button("通过", "approve", str(sub.id)),
            Button("驳回", "reject", str(sub.id), primary=False),
        ),
        ref=f"item:{sub.id}",
    )


def send_for_approval(
    ctx: Context, sub: Submission, owner: Person, extra: Sequence[int] = ()
) -> list[Person]:
    """Record who decides `sub` and send each of them the card; returns them."""
    approvers = approvers_for(ctx.session, ctx.config, sub.kind, owner, extra)
    insert_rows(
        ctx.session, ledger.ApprovalRequest, [{"item_id": sub.id, "approver_id": a.id} for a in approvers]
    )
    for a in approvers:
        ctx.send(a.userid, approval_card(sub, owner, 0))  # photos can only follow the claim
    return approvers


def waiting_for(approvers: Sequence[Person]) -> str:
    if not approvers:
        return "暂时没有可以审核的人，请联系管理员。"
    names = "、".join(a.name for a in approvers[:3]) + ("等" if len(approvers) > 3 else "")
    return f"等待 {names} 审核。"


# -- booking: approved items into the ledger --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Booked:
    member: Person
    points_x100: int


def _entry(
    session: Session,
    who: Person,
    points_x100: int,
    sub: Submission,
    approver_id: int,
    at: datetime,
    note: str = "",
) -> Booked:
    ledger.add_entry(
        session,
        member_id=who.id,
        branch_id=who.branch_id,
        team_id=who.team_id,
        points_x100=points_x100,
        category=sub.category,
        indicator=sub.indicator,
        day=sub.day,
        at=at,
        periods=period_keys(sub.day),
        item_id=sub.id,
        approver_id=approver_id,
        note=note,
        in_total=sub.category != INNOVATION,
    )
    return Booked(who, points_x100)


def veto_points(session: Session, member_id: int, day: date) -> int:
    """一票否决: the entry that brings the member's total for the quarter of `day` to zero."""
    quarter = period_of("quarter", day).key
    total = session.get(ledger.MemberTotal, (member_id, quarter, ledger.TOTAL))
    return -max(0, total.points_x100) if total is not None else 0


def book(session: Session, config: Config, sub: Submission, approver_id: int, at: datetime) -> list[Booked]:
    """Write the ledger lines of an approved item (one per member it pays) and move the totals."""
    if sub.kind == "创新":
        innovation = session.get(Innovation, sub.id)
        assert innovation is not None
        pay = payouts(session, innovation.result_key, shares_of(session, sub.id), exclude=sub.id)
        booked = []
        for member_id, amount in pay.items():
            row = session.get(InnovationMember, (sub.id, member_id))
            assert row is not None
            row.paid_x100 = amount
            who = person(session, member_id)
            if amount and who is not None:
                booked.append(_entry(session, who, amount, sub, approver_id, at, note=innovation.name))
        sub.points_x100 = sum(pay.values())
        return booked
    who = person(session, sub.member_id)
    assert who is not None
    indicator = config.indicator(sub.indicator)
    amount = sub.points_x100
    if indicator is not None and indicator.veto:
        amount = sub.points_x100 = veto_points(session, who.id, sub.day)
    return [_entry(session, who, amount, sub, approver_id, at, note=short(sub.description, 60))]


def reverse(session: Session, sub: Submission, voider_id: int, at: datetime, reason: str) -> list[Booked]:
    """Cancel an item's ledger lines with reversal lines (the originals stay as they were)."""
    done = []
    for e in ledger.unreversed(ledger.entries_of_item(session, sub.id)):
        who = person(session, e.member_id) if e.member_id is not None else None
        if who is None:
            continue
        ledger.add_entry(
            session,
            member_id=who.id,
            branch_id=who.branch_id,
            team_id=who.team_id,
            points_x100=-e.points_x100,
            category=e.category,
            indicator=e.indicator,
            day=e.day,
            at=at,
            periods=period_keys(e.day),
            item_id=sub.id,
            approver_id=voider_id,
            note=reason,
            kind="reversal",
            reverses_entry_id=e.id,
            in_total=e.category != INNOVATION,
        )
        done.append(Booked(who, -e.points_x100))
    return done


# -- 尽责 -------------------------------------------------------------------------------------------


def claimable_list(config: Config) -> str:
    return "、".join(
        f"{i.code} {i.name}" for c in config.points.categories for i in c.indicators if i.claimable
    )


def parse_indicator(raw: str, ctx: Context) -> Indicator:
    """指标 by code, name or alias, or a part of a name when only one indicator fits."""
    text = raw.strip()
    found = ctx.config.find_indicators(text, include_deductions=False)
    if len(found) > 1:
        listed = "、".join(f"{i.code} {i.name}" for i in found[:6])
        raise FieldError(f"「{text}」对应多个指标：{listed}。请写其中一个的代码")
    if not found:
        deductions = ctx.config.find_indicators(text)
        if deductions:
            raise FieldError(
                f"「{deductions[0].code} {deductions[0].name}」是扣分项，只能由支部书记用「加分」记录"
            )
        names = {w: i for i in ctx.config.points.indicators if i.claimable for w in (i.name, *i.aliases)}
        near = [names[w] for w in difflib.get_close_matches(text, list(names), n=3, cutoff=0.3)]
        if near:
            hint = "、".join(dict.fromkeys(f"{i.code} {i.name}" for i in near))
            raise FieldError(f"没有「{text}」这个指标。你是不是想写：{hint}？")
        raise FieldError(f"没有「{text}」这个指标。可申报的指标：{claimable_list(ctx.config)}")
    indicator = found[0]
    if not indicator.claimable:
        raise FieldError(
            f"「{indicator.code} {indicator.name}」由其他流程自动记分（如录用、签到、带教、结题），不能"
            f"手工申报"
        )
    return indicator


def parse_claim_date(raw: str, ctx: Context) -> date:
    day = parse_date(raw, ctx.now.date())
    if day > ctx.now.date():
        raise FieldError("不能晚于今天")
    quarter = period_of("quarter", ctx.now.date())
    if day < quarter.start and not ctx.config.points.claim_backdate:
        raise FieldError(f"不能早于本季度（{quarter.start:%Y-%m-%d} 起）；之前的季度已结算，请联系支部书记")
    return day


def parse_description(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 2:
        raise FieldError("请用一句话写清做了什么")
    if len(value) > 500:
        raise FieldError("太长了，请控制在 500 字以内")
    return value


class ClaimForm(Form):
    # Annotated with the parsed types: a form instance holds values, the class holds the fields.
    indicator: Indicator = Field(
        "指标",
        example="B05",
        parse=parse_indicator,  # type: ignore[assignment]
        help="写指标代码或名称，如 A01 或 突击队",
        aliases=("项目",),
    )
    description: str = Field(
        "说明",
        example="获得厂制丝工技能竞赛三等奖",
        parse=parse_description,  # type: ignore[assignment]
        aliases=("内容", "事由"),
    )
    day: date | None = Field(
        "日期",
        example="今天",
        parse=parse_claim_date,
        required=False,  # type: ignore[assignment]
        aliases=("时间",),
    )
    variant: str | None = Field(
        "档次",
        example="厂级",
        required=False,
        aliases=("结果", "等级"),  # type: ignore[assignment]
        help="指标分档次时填写，如 合理化建议 的 提交/采纳/推广",
    )

    def check(self, ctx: Any) -> dict[str, str]:
        indicator, variant = self.indicator, self.variant
        if variant and indicator.points_for(variant) is None:
            names = "、".join(v.name for v in indicator.variants)
            if not names:
                return {"variant": f"「{indicator.code}」不分档次，请不要填写"}
            return {"variant": f"「{indicator.code}」没有「{variant}」这个档次，可选：{names}"}
        return {}


@router.command("尽责", code="claim", aliases=("申报", "尽责申报"), party_only=True, form=ClaimForm)
def claim(ctx: Context, member: Sender, form: ClaimForm) -> str:
    """申报一项「我的岗位我尽责」指标；支部书记审核通过后记分。10 分钟内发图片可附作证明材料。"""
    indicator = form.indicator
    variant = indicator.variant(form.variant) if form.variant else None
    day = form.day or ctx.now.date()
    points_x100 = x100(indicator.points_for(variant.name if variant else None) or 0)
    refusal = cap_refusal(ctx.session, indicator, member.id, day, points_x100, with_pending=True)
    if refusal:
        return refusal
    category = ctx.config.points.category_of(indicator.code)
    item_id = ledger.new_item(ctx.session, "尽责", ctx.now)
    title = f"{indicator.code} {indicator.name}" + (f"（{variant.name}）" if variant else "")
    sub = Submission(
        id=item_id,
        kind="尽责",
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        indicator=indicator.code,
        variant=variant.name if variant else "",
        category=category.code if category else "",
        title=title,
        description=form.description,
        day=day,
        points_x100=points_x100,
        created_at=ctx.now,
    )
    insert_now(ctx.session, sub)
    approvers = send_for_approval(ctx, sub, sender_person(member))
    return (
        f"已提交尽责申报 #{item_id}：{title}，{fmt(points_x100)} 分，日期 {day:%m-%d}。"
        f"{waiting_for(approvers)}\n"
        f"10 分钟内发送图片，会作为证明材料附到 #{item_id}。"
    )


# -- evidence ---------------------------------------------------------------------------------------


@router.on_image
def attach_evidence(ctx: Context) -> str | None:
    """A photo sent within 10 minutes of a claim is kept as that claim's evidence."""
    assert ctx.member is not None
    s = Submission
    item_id = ctx.session.execute(
        select(s.id)
        .where(s.member_id == ctx.member.id, s.status == "pending", s.created_at >= ctx.now - EVIDENCE_WINDOW)
        .order_by(s.created_at.desc(), s.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if item_id is None:
        return None
    ctx.fetch_media(ctx.message.media_id, ref=f"item:{item_id}")
    return f"已附到 #{item_id}（共 {evidence_count(ctx.session, item_id)} 张）。"


# -- 创新 -------------------------------------------------------------------------------------------


_QUOTES = re.compile(r"[《》<>「」“”\"'()（）]")


def result_key(type_name: str, name: str) -> str:
    """Identifies "the same result" across claims at different levels: type and name, normalised."""
    return normalize(type_name) + "|" + _QUOTES.sub("", normalize(name))


def shares_of(session: Session, innovation_id: int) -> dict[int, int]:
    rows = session.execute(
        select(InnovationMember.member_id, InnovationMember.share_x100).where(
            InnovationMember.innovation_id == innovation_id
        )
    )
    return {m: s for m, s in rows}


def top_up(shares: dict[int, int], paid: dict[int, int]) -> dict[int, int]:
    """What a claim pays each member: their share less what earlier claims of the result paid them."""
    return {m: max(0, share - paid.get(m, 0)) for m, share in shares.items()}


def payouts(session: Session, key: str, shares: dict[int, int], exclude: int | None = None) -> dict[int, int]:
    return top_up(shares, already_paid(session, key, exclude))


_IM, _INV, _SUB = InnovationMember.__table__.c, Innovation.__table__.c, Submission.__table__.c
_PAID = (
    select(_IM.member_id, func.sum(_IM.paid_x100))
    .select_from(InnovationMember.__table__)
    .join(Innovation.__table__, _INV.id == _IM.innovation_id)
    .join(Submission.__table__, _SUB.id == _INV.id)
    .where(_INV.result_key == bindparam("key"), _SUB.status == "approved", _INV.id != bindparam("exclude"))
    .group_by(_IM.member_id)
)
_CLAIMED = select(_INV.id).where(_INV.result_key == bindparam("key")).limit(1)
_EARLIER = (
    select(_INV.id, _INV.level, _INV.grade, _INV.level_rank, _INV.points_x100, _SUB.status)
    .select_from(Innovation.__table__)
    .join(Submission.__table__, _SUB.id == _INV.id)
    .where(_INV.result_key == bindparam("key"), _SUB.status.in_(("pending", "approved")))
)


def already_paid(session: Session, key: str, exclude: int | None = None) -> dict[int, int]:
    rows = session.connection().execute(_PAID, {"key": key, "exclude": -1 if exclude is None else exclude})
    return {m: int(p) for m, p in rows}


def earlier_claim_refusal(
    session: Session, key: str, label: str, level_rank: int, points_x100: int
) -> str | None:
    """One result counts once, at its highest level: refuse a claim that is not higher than an earlier one."""
    rows = session.connection().execute(_EARLIER, {"key": key}).all()
    for r in rows:
        if r.status == "pending":
            return f"{label}已有待审的申报 #{r.id}，请等它审核后再申报。"
    best = max(rows, key=lambda r: (r.points_x100, r.level_rank), default=None)
    if best is not None and (level_rank < best.level_rank or points_x100 <= best.points_x100):
        return (
            f"{label}已按 {best.level}{best.grade} 计 {fmt(best.points_x100)} 分（#{best.id}）。"
            "同一成果只按最高级别计一次：获得更高级别后再申报，只补差额。"
        )
    return None


def parse_type(raw: str, ctx: Context) -> InnovationType:
    found = ctx.config.innovation.type(raw)
    if found is None:
        raise FieldError(
            f"没有「{raw.strip()}」这个类型，可选：{'、'.join(t.name for t in ctx.config.innovation.types)}"
        )
    return found


def parse_level(raw: str, ctx: Context) -> NamedEntry:
    found = ctx.config.innovation.level(raw)
    if found is None:
        raise FieldError(
            f"没有「{raw.strip()}」这个级别，可选：{'、'.join(e.name for e in ctx.config.innovation.levels)}"
        )
    return found


def parse_name(raw: str, _ctx: Any) -> str:
    value = raw.strip().strip("《》")
    if not value:
        raise FieldError("不能为空")
    if len(value) > 80:
        raise FieldError("太长了，请控制在 80 字以内")
    return value


def parse_members(raw: str, ctx: Context) -> list[Person]:
    words = [w for w in re.split(r"[\s,，、;；]+", normalise(raw)) if w]
    people: dict[int, Person] = {}
    for word in words:
        p = find_person(ctx.session, word)
        people.setdefault(p.id, p)
    return list(people.values())


def _grade_choices(config: Config, kind: InnovationType) -> str:
    words = [a.name for a in kind.awards] + (
        [g.name for g in config.innovation.grades] if kind.use_table else []
    )
    return "、".join(words)


class InnovationForm(Form):
    type: InnovationType = Field(
        "类型",
        example="QC成果",
        parse=parse_type,  # type: ignore[assignment]
        help="QC成果、六西格玛、小改小革、合理化建议、专利",
    )
    name: str = Field(
        "名称",
        example="降低叶丝干燥工序水分标准偏差",
        parse=parse_name,  # type: ignore[assignment]
        aliases=("成果", "课题", "项目名称"),
    )
    level: NamedEntry = Field(
        "级别",
        example="厂级",
        parse=parse_level,  # type: ignore[assignment]
        help="班组、车间、厂级、公司级、省级/行业、全国",
    )
    grade: str | None = Field("等次", example="一等", required=False, aliases=("奖项", "等级"))  # type: ignore[assignment]
    members: list[Person] | None = Field(
        "成员",
        example="王芳、赵磊",
        parse=parse_members,  # type: ignore[assignment]
        required=False,
        aliases=("组员", "小组成员"),
        help="不含你自己（你是组长）；写姓名或账号，用顿号分隔",
    )
    description: str | None = Field(
        "说明",
        example="2026年厂QC成果发布会一等奖",
        required=False,  # type: ignore[assignment]
        aliases=("备注",),
    )

    def check(self, ctx: Any) -> dict[str, str]:
        kind, level, grade = self.type, self.level, self.grade
        if ctx.config.innovation_points(kind.name, level.name, grade) is None:
            choices = _grade_choices(ctx.config, kind)
            if not grade:
                return {"grade": f"「{kind.name}」需要写等次，可选：{choices}"}
            return {"grade": f"「{kind.name}」没有「{grade}」这个等次，可选：{choices}"}
        return {}


@router.command("创新", code="innovate", aliases=("创新成果", "创新申报"), form=InnovationForm)
def innovate(ctx: Context, member: Sender, form: InnovationForm) -> str:
    """申报一项创新成果（QC、六西格玛、小改小革、合理化建议、专利）；你是组长，积分按规则分给成员。"""
    config = ctx.config.innovation
    kind, level, grade_text = form.type, form.level, form.grade
    award = kind.award(grade_text) if grade_text else None
    found_grade = config.grade(grade_text or config.default_grade or "")
    grade = award.name if award else (found_grade.name if found_grade else "")
    points_x100 = x100(ctx.config.innovation_points(kind.name, level.name, grade_text) or 0)
    name = form.name
    key = result_key(kind.name, name)
    label = f"{kind.name}《{name}》"
    level_rank = config.level_rank(level.name) or 0
    # Most results are claimed for the first time: one look decides whether earlier claims matter.
    claimed_before = ctx.session.connection().execute(_CLAIMED, {"key": key}).first() is not None
    refusal = (
        earlier_claim_refusal(ctx.session, key, label, level_rank, points_x100) if claimed_before else None
    )
    if refusal:
        return refusal
    others = [p for p in form.members or [] if p.id != member.id]
    leader_share, member_share = config.shares(points_x100 / 100, len(others))
    shares = {member.id: x100(leader_share), **{p.id: x100(member_share) for p in others}}
    pay = payouts(ctx.session, key, shares) if claimed_before else dict(shares)
    if not any(pay.values()):
        return f"{label}的各成员已按这个分值得过分，这次没有差额可补。"
    indicator = ctx.config.indicator(config.indicator) if config.indicator else None
    category = ctx.config.points.category_of(indicator.code) if indicator else None
    item_id = ledger.new_item(ctx.session, "创新", ctx.now)
    title = f"{label}{level.name}{grade}"
    sub = Submission(
        id=item_id,
        kind="创新",
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        indicator=indicator.code if indicator else "",
        category=category.code if category else INNOVATION,
        title=title,
        description=form.description or "",
        day=ctx.now.date(),
        points_x100=sum(pay.values()),
        created_at=ctx.now,
    )
    insert_now(ctx.session, sub)
    insert_rows(
        ctx.session,
        Innovation,
        [
            {
                "id": item_id,
                "result_key": key,
                "type": kind.name,
                "name": name,
                "level": level.name,
                "level_rank": level_rank,
                "grade": grade,
                "points_x100": points_x100,
                "leader_id": member.id,
            }
        ],
    )
    insert_rows(
        ctx.session,
        InnovationMember,
        [
            {
                "innovation_id": item_id,
                "member_id": p_id,
                "share_x100": share,
                "role": "组长" if p_id == member.id else "成员",
                "paid_x100": pay[p_id],
            }
            for p_id, share in shares.items()
        ],
    )
    approvers = send_for_approval(ctx, sub, sender_person(member), [p.id for p in others])
    split = "、".join(
        [f"{member.name} {fmt(pay[member.id])}", *(f"{p.name} {fmt(pay[p.id])}" for p in others)]
    )
    topped = "（已扣除此前级别已得的分）" if pay != shares else ""
    return (
        f"已提交创新申报 #{item_id}：{title}，{fmt(points_x100)} 分。分配：{split}{topped}。"
        f"{waiting_for(approvers)}\n"
        f"10 分钟内发送图片，会作为证明材料附到 #{item_id}。"
    )


# -- 加分 -------------------------------------------------------------------------------------------


def parse_any_indicator(raw: str, ctx: Context) -> Indicator:
    text = raw.strip()
    found = ctx.config.find_indicators(text)
    if len(found) > 1:
        raise FieldError(
            f"「{text}」对应多个指标：{'、'.join(f'{i.code} {i.name}' for i in found[:6])}。请写代码"
        )
    if not found:
        raise FieldError(f"没有「{text}」这个指标，请写指标代码，如 A04 或 K01")
    return found[0]


def parse_amount(raw: str, ctx: Context) -> int:
    value = x100(as_number(raw.replace("+", ""), ctx))
    if abs(value) > 100_00:
        raise FieldError("一次最多 ±100 分")
    return value


def parse_award_member(raw: str, ctx: Context) -> Person:
    return find_person(ctx.session, raw)


def parse_award_date(raw: str, ctx: Context) -> date:
    return parse_claim_date(raw, ctx)


class AwardForm(Form):
    member: Person = Field("成员", example="王芳", parse=parse_award_member, positional=True)  # type: ignore[assignment]
    indicator: Indicator = Field(
        "指标",
        example="A04",
        parse=parse_any_indicator,  # type: ignore[assignment]
        positional=True,
    )
    points: int = Field(
        "分值",
        example="2",
        parse=parse_amount,
        positional=True,  # type: ignore[assignment]
        help="扣分写负数，如 -2",
    )
    description: str = Field(
        "说明",
        example="国庆节假日保产顶岗",
        parse=parse_description,  # type: ignore[assignment]
        positional=True,
        rest=True,
    )
    day: date | None = Field("日期", example="今天", parse=parse_award_date, required=False)  # type: ignore[assignment]

    def check(self, ctx: Any) -> dict[str, str]:
        if self.points == 0 and not self.indicator.veto:
            return {"points": "不能为 0"}
        return {}


@router.command(
    "加分", code="award", aliases=("扣分", "记分"), roles={"secretary", "committee"}, form=AwardForm
)
def award(ctx: Context, member: Sender, form: AwardForm) -> str:
    """直接给成员加分或扣分（留痕可查，可用「撤销 #N 理由」作废）。"""
    who, indicator, points_x100 = form.member, form.indicator, form.points
    day = form.day or ctx.now.date()
    category = ctx.config.points.category_of(indicator.code)
    deductions = ctx.config.points.deductions
    if deductions is not None and category is not None and category.code == deductions.code:
        points_x100 = -abs(points_x100)  # 扣分项 always deduct: "K01 2" and "K01 -2" mean the same
    if who.id == member.id:
        return "不能给自己加分或扣分，请由支部其他书记或党总支记录。"
    if not member.has("committee") and who.branch_id != member.branch_id:
        return f"{who.name}是{who.branch or '其他支部'}的成员，只能由其所在支部书记或党总支记分。"
    if points_x100 > 0:
        refusal = cap_refusal(ctx.session, indicator, who.id, day, points_x100, with_pending=False)
        if refusal:
            return refusal
    item_id = ledger.new_item(ctx.session, "加分", ctx.now)
    sub = Submission(
        id=item_id,
        kind="加分",
        member_id=who.id,
        submitted_by=member.id,
        branch_id=who.branch_id,
        indicator=indicator.code,
        category=category.code if category else "",
        title=f"{indicator.code} {indicator.name}",
        description=form.description,
        day=day,
        points_x100=points_x100,
        status="approved",
        created_at=ctx.now,
        decided_by=member.id,
        decided_at=ctx.now,
    )
    insert_now(ctx.session, sub)
    booked = book(ctx.session, ctx.config, sub, member.id, ctx.now)
    amount = signed(booked[0].points_x100)
    veto = "（一票否决，当季积分清零）" if indicator.veto else ""
    ctx.send(
        who.userid,
        f"{member.name}为你记分 #{item_id}：{sub.title} {amount} 分{veto}。说明：{sub.description}",
    )
    return f"已记 #{item_id}：{who.name} {sub.title} {amount} 分{veto}，已通知本人。"
