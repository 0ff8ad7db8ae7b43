"""我的岗位我尽责 and 创新积分: claiming points (尽责, 创新), awarding them directly (加分), and the three
item kinds that book them into the ledger when approved.

A claim becomes a pending item `#N` and reaches its approvers as a card; deciding it is generic
(`handlers/approvals.py`) and comes back here through the kinds registered at the bottom of this
module. Points are whole hundredths in storage (`x100`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Config, NamedEntry, comparison_key, names_of
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, as_number, half_width, parse_date
from bot.router import Router
from handlers import items
from handlers.items import ItemKind
from handlers.ledger import Booked, book, fmt, short, signed, x100
from handlers.people import Person, find_person, person, sender_person
from handlers.periods import KIND_NAMES, period_of
from handlers.points_config import Indicator, InnovationConfig, InnovationType, PointsConfig
from storage import items as item_store
from storage import points as ledger
from storage.items import Item
from storage.points import INNOVATION, Innovation, InnovationMember, Submission
from storage.queries import insert_now, insert_rows
from storage.vocabulary import ItemState, Role

router = Router("points")

NEXT = {"week": "下周", "month": "下个月", "quarter": "下个季度", "year": "明年"}


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


# -- the kinds: how each is decided and booked ----------------------------------------------------


class ClaimKind(ItemKind):
    """尽责: one indicator claimed by a party member, decided by the branch secretary."""

    name = "尽责"

    def approver_roles(self, config: Config) -> list[str]:
        return list(PointsConfig.of(config).approval.roles)

    def value(self, session: Session, item: Item) -> str:
        sub = session.get(Submission, item.id)
        return f"{fmt(sub.points_x100)} 分" if sub is not None else ""

    def values(self, session: Session, item_ids: Sequence[int]) -> dict[int, str]:
        return {i: f"{fmt(p)} 分" for i, p in ledger.points_of_items(session, item_ids).items()}

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        sub = session.get(Submission, item.id)
        return claim_facts(item.title, sub.day, sub.points_x100) if sub is not None else []

    def description(self, session: Session, item: Item) -> str:
        sub = session.get(Submission, item.id)
        return sub.description if sub is not None else ""

    def blocker(self, ctx: Context, item: Item) -> str | None:
        """A claim that fitted its cap when filed may not fit now (e.g. after a direct 加分)."""
        sub = ctx.session.get(Submission, item.id)
        indicator = (
            PointsConfig.of(ctx.config).indicator(sub.indicator)
            if sub is not None and sub.indicator
            else None
        )
        if sub is None or indicator is None or item.member_id is None:
            return None
        return cap_refusal(
            ctx.session,
            indicator,
            item.member_id,
            sub.day,
            sub.points_x100,
            with_pending=False,
            exclude_item=sub.id,
        )

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        return book_submission(ctx.session, ctx.config, item, approver.id, ctx.now)


def claim_facts(title: str, day: date, points_x100: int) -> list[tuple[str, str]]:
    return [("指标", title), ("日期", f"{day:%m-%d}"), ("分值", f"{fmt(points_x100)} 分")]


class AwardKind(ClaimKind):
    """加分 / 扣分: booked by a secretary directly; never pending, but voidable like any approved item."""

    name = "加分"


def innovation_facts(
    kind: str, total_x100: int, split: Sequence[tuple[str, str, int]]
) -> list[tuple[str, str]]:
    """类型, 合计, then one line per member: (name, "组长 8 分")."""
    lines = [("类型", kind), ("合计", f"{fmt(total_x100)} 分")]
    return lines + [(name, f"{role} {fmt(paid)} 分") for name, role, paid in split]


class InnovationKind(ItemKind):
    """创新: a result claimed by its team leader, paying every team member their share."""

    name = "创新"

    def approver_roles(self, config: Config) -> list[str]:
        return list(InnovationConfig.of(config).approval_roles)

    def beneficiaries(self, session: Session, item: Item) -> list[int]:
        return [m for m, *_ in ledger.shares(session, item.id or 0)] or super().beneficiaries(session, item)

    def value(self, session: Session, item: Item) -> str:
        sub = session.get(Submission, item.id)
        return f"{fmt(sub.points_x100)} 分" if sub is not None else ""

    values = ClaimKind.values

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        """The type and each member's share: the approver sees how the points are split."""
        innovation = session.get(Innovation, item.id)
        sub = session.get(Submission, item.id)
        if innovation is None or sub is None:
            return []
        lines = [("类型", f"{innovation.type} · {innovation.level}{innovation.grade}")]
        lines.append(("合计", f"{fmt(sub.points_x100)} 分"))
        names = {
            p.id: p.name for p in (person(session, m) for m, *_ in ledger.shares(session, item.id or 0)) if p
        }
        for member_id, _share, paid, role in ledger.shares(session, item.id or 0):
            lines.append((names.get(member_id, "?"), f"{role} {fmt(paid)} 分"))
        return lines

    def description(self, session: Session, item: Item) -> str:
        sub = session.get(Submission, item.id)
        return sub.description if sub is not None else ""

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        return book_submission(ctx.session, ctx.config, item, approver.id, ctx.now)


CLAIM, AWARD, INNOVATION_KIND = ClaimKind().register(), AwardKind().register(), InnovationKind().register()


# -- booking: approved items into the ledger --------------------------------------------------------


def veto_points(session: Session, member_id: int, day: date) -> int:
    """一票否决: the entry that brings the member's total for the quarter of `day` to zero."""
    quarter = period_of("quarter", day).key
    total = session.get(ledger.MemberTotal, (member_id, quarter, ledger.TOTAL))
    return -max(0, total.points_x100) if total is not None else 0


def book_submission(
    session: Session, config: Config, item: Item, approver_id: int, at: datetime
) -> list[Booked]:
    """Write the ledger lines of an approved 尽责, 创新 or 加分 (one per member it pays)."""
    sub = session.get(Submission, item.id)
    assert sub is not None and item.id is not None
    line: dict[str, Any] = {
        "category": sub.category,
        "indicator": sub.indicator,
        "day": sub.day,
        "item_id": item.id,
    }
    if item.kind == INNOVATION_KIND.name:
        innovation = session.get(Innovation, item.id)
        assert innovation is not None
        shares = {m: share for m, share, _paid, _role in ledger.shares(session, item.id)}
        pay = top_up(shares, ledger.already_paid(session, innovation.result_key, exclude=item.id))
        ledger.set_paid(session, item.id, pay)
        booked = []
        for member_id, amount in pay.items():
            who = person(session, member_id)
            if amount and who is not None:
                booked.append(
                    book(session, who, amount, at=at, approver_id=approver_id, note=innovation.name, **line)
                )
        sub.points_x100 = sum(pay.values())
        return booked
    who = person(session, item.member_id or 0)
    assert who is not None
    indicator = PointsConfig.of(config).indicator(sub.indicator)
    amount = sub.points_x100
    if indicator is not None and indicator.veto:
        amount = sub.points_x100 = veto_points(session, who.id, sub.day)
    return [
        book(session, who, amount, at=at, approver_id=approver_id, note=short(sub.description, 60), **line)
    ]


# -- 尽责 -------------------------------------------------------------------------------------------


def claimable_list(config: Config) -> str:
    return "、".join(
        f"{i.code} {i.name}" for c in PointsConfig.of(config).categories for i in c.indicators if i.claimable
    )


def parse_indicator(raw: str, ctx: Context) -> Indicator:
    """指标 by code, name or alias, or a part of a name when only one indicator fits."""
    text = raw.strip()
    found = PointsConfig.of(ctx.config).find_indicators(text, include_deductions=False)
    if len(found) > 1:
        listed = "、".join(f"{i.code} {i.name}" for i in found[:6])
        raise FieldError(f"「{text}」对应多个指标：{listed}。请写其中一个的代码")
    if not found:
        deductions = PointsConfig.of(ctx.config).find_indicators(text)
        if deductions:
            raise FieldError(
                f"「{deductions[0].code} {deductions[0].name}」是扣分项，只能由支部书记用「加分」记录"
            )
        names = {
            w: i for i in PointsConfig.of(ctx.config).indicators if i.claimable for w in (i.name, *i.aliases)
        }
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
    if day < quarter.start and not PointsConfig.of(ctx.config).claim_backdate:
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
    category = PointsConfig.of(ctx.config).category_of(indicator.code)
    title = f"{indicator.code} {indicator.name}" + (f"（{variant.name}）" if variant else "")
    item = new_item(ctx, CLAIM, member.id, member.id, member.branch_id, title)
    sub = Submission.model_construct(
        id=item.id,
        indicator=indicator.code,
        variant=variant.name if variant else "",
        category=category.code if category else "",
        description=form.description,
        day=day,
        points_x100=points_x100,
    )
    insert_now(ctx.session, sub)
    approvers = items.submit(
        ctx,
        item,
        sender_person(member),
        paid=[member.id],
        facts=claim_facts(title, day, points_x100),
        description=form.description,
    )
    return (
        f"已提交尽责申报 #{item.id}：{title}，{fmt(points_x100)} 分，日期 {day:%m-%d}。"
        f"{items.waiting_for(approvers)}\n"
        f"10 分钟内发送图片，会作为证明材料附到 #{item.id}。"
    )


def new_item(
    ctx: Context,
    kind: ItemKind,
    owner: int,
    by: int,
    branch_id: int | None,
    title: str,
    *,
    decided: bool = False,
) -> Item:
    """Take the next `#N` for a claim (pending) or a direct award (decided by `by` now).

    The `Item` returned is for reading (cards, replies), never added to a Session, so it is built with
    `model_construct`: the values are ours, and pydantic's validation of a table model costs ~90 µs
    (docs/PERFORMANCE.md); the claims' `Submission` rows are built the same way."""
    status = ItemState.APPROVED if decided else ItemState.PENDING
    item_id = item_store.new_item(
        ctx.session,
        kind.name,
        ctx.now,
        member_id=owner,
        submitted_by=by,
        branch_id=branch_id,
        title=title,
        status=status,
        decided_by=by if decided else None,
    )
    return Item.model_construct(
        id=item_id,
        kind=kind.name,
        member_id=owner,
        submitted_by=by,
        branch_id=branch_id,
        title=title,
        status=status,
        created_at=ctx.now,
        decided_by=by if decided else None,
        decided_at=ctx.now if decided else None,
    )


# -- 创新 -------------------------------------------------------------------------------------------


_QUOTES = re.compile(r"[《》<>「」“”\"'()（）]")


def result_key(type_name: str, name: str) -> str:
    """Identifies "the same result" across claims at different levels: type and name, normalised."""
    return comparison_key(type_name) + "|" + _QUOTES.sub("", comparison_key(name))


def top_up(shares: dict[int, int], paid: dict[int, int]) -> dict[int, int]:
    """What a claim pays each member: their share less what earlier claims of the result paid them."""
    return {m: max(0, share - paid.get(m, 0)) for m, share in shares.items()}


def payouts(session: Session, key: str, shares: dict[int, int], exclude: int | None = None) -> dict[int, int]:
    return top_up(shares, ledger.already_paid(session, key, exclude))


def earlier_claim_refusal(
    session: Session, key: str, label: str, level_rank: int, points_x100: int
) -> str | None:
    """One result counts once, at its highest level: refuse a claim that is not higher than an earlier one."""
    rows = ledger.earlier_claims(session, key)
    for r in rows:
        if r.status == ItemState.PENDING:
            return f"{label}已有待审的申报 #{r.id}，请等它审核后再申报。"
    best = max(rows, key=lambda r: (r.points_x100, r.level_rank), default=None)
    if best is not None and (level_rank < best.level_rank or points_x100 <= best.points_x100):
        return (
            f"{label}已按 {best.level}{best.grade} 计 {fmt(best.points_x100)} 分（#{best.id}）。"
            "同一成果只按最高级别计一次：获得更高级别后再申报，只补差额。"
        )
    return None


def parse_type(raw: str, ctx: Context) -> InnovationType:
    found = InnovationConfig.of(ctx.config).type(raw)
    if found is None:
        raise FieldError(
            f"没有「{raw.strip()}」这个类型，可选：{names_of(InnovationConfig.of(ctx.config).types, '、')}"
        )
    return found


def parse_level(raw: str, ctx: Context) -> NamedEntry:
    found = InnovationConfig.of(ctx.config).level(raw)
    if found is None:
        raise FieldError(
            f"没有「{raw.strip()}」这个级别，可选：{names_of(InnovationConfig.of(ctx.config).levels, '、')}"
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
    words = [w for w in re.split(r"[\s,，、;；]+", half_width(raw)) if w]
    people: dict[int, Person] = {}
    for word in words:
        p = find_person(ctx.session, word)
        people.setdefault(p.id, p)
    return list(people.values())


def _grade_choices(config: Config, kind: InnovationType) -> str:
    words = [a.name for a in kind.awards] + (
        [g.name for g in InnovationConfig.of(config).grades] if kind.use_table else []
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
        if InnovationConfig.of(ctx.config).points(kind.name, level.name, grade) is None:
            choices = _grade_choices(ctx.config, kind)
            if not grade:
                return {"grade": f"「{kind.name}」需要写等次，可选：{choices}"}
            return {"grade": f"「{kind.name}」没有「{grade}」这个等次，可选：{choices}"}
        return {}


@router.command("创新", code="innovate", aliases=("创新成果", "创新申报"), form=InnovationForm)
def innovate(ctx: Context, member: Sender, form: InnovationForm) -> str:
    """申报一项创新成果（QC、六西格玛、小改小革、合理化建议、专利）；你是组长，积分按规则分给成员。"""
    config = InnovationConfig.of(ctx.config)
    kind, level, grade_text = form.type, form.level, form.grade
    award = kind.award(grade_text) if grade_text else None
    found_grade = config.grade(grade_text or config.default_grade or "")
    grade = award.name if award else (found_grade.name if found_grade else "")
    points_x100 = x100(InnovationConfig.of(ctx.config).points(kind.name, level.name, grade_text) or 0)
    name = form.name
    key = result_key(kind.name, name)
    label = f"{kind.name}《{name}》"
    level_rank = config.level_rank(level.name) or 0
    # Most results are claimed for the first time: one look decides whether earlier claims matter.
    claimed_before = ledger.result_claimed(ctx.session, key)
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
    indicator = PointsConfig.of(ctx.config).indicator(config.indicator) if config.indicator else None
    category = PointsConfig.of(ctx.config).category_of(indicator.code) if indicator else None
    title = f"{label}{level.name}{grade}"
    item = new_item(ctx, INNOVATION_KIND, member.id, member.id, member.branch_id, title)
    item_id = item.id
    sub = Submission.model_construct(
        id=item_id,
        indicator=indicator.code if indicator else "",
        category=category.code if category else INNOVATION,
        description=form.description or "",
        day=ctx.now.date(),
        points_x100=sum(pay.values()),
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
    split_facts = [(member.name, "组长", pay[member.id]), *((p.name, "成员", pay[p.id]) for p in others)]
    approvers = items.submit(
        ctx,
        item,
        sender_person(member),
        paid=list(shares),
        facts=innovation_facts(f"{kind.name} · {level.name}{grade}", sum(pay.values()), split_facts),
        description=form.description or "",
    )
    split = "、".join(
        [f"{member.name} {fmt(pay[member.id])}", *(f"{p.name} {fmt(pay[p.id])}" for p in others)]
    )
    topped = "（已扣除此前级别已得的分）" if pay != shares else ""
    return (
        f"已提交创新申报 #{item_id}：{title}，{fmt(points_x100)} 分。分配：{split}{topped}。"
        f"{items.waiting_for(approvers)}\n"
        f"10 分钟内发送图片，会作为证明材料附到 #{item_id}。"
    )


# -- 加分 -------------------------------------------------------------------------------------------


def parse_any_indicator(raw: str, ctx: Context) -> Indicator:
    text = raw.strip()
    found = PointsConfig.of(ctx.config).find_indicators(text)
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
    "加分", code="award", aliases=("扣分", "记分"), roles={Role.SECRETARY, Role.COMMITTEE}, form=AwardForm
)
def award(ctx: Context, member: Sender, form: AwardForm) -> str:
    """直接给成员加分或扣分（留痕可查，可用「撤销 #N 理由」作废）。"""
    who, indicator, points_x100 = form.member, form.indicator, form.points
    day = form.day or ctx.now.date()
    category = PointsConfig.of(ctx.config).category_of(indicator.code)
    deductions = PointsConfig.of(ctx.config).deductions
    if deductions is not None and category is not None and category.code == deductions.code:
        points_x100 = -abs(points_x100)  # 扣分项 always deduct: "K01 2" and "K01 -2" mean the same
    if who.id == member.id:
        return "不能给自己加分或扣分，请由支部其他书记或党总支记录。"
    if not member.has(Role.COMMITTEE) and who.branch_id != member.branch_id:
        return f"{who.name}是{who.branch or '其他支部'}的成员，只能由其所在支部书记或党总支记分。"
    if points_x100 > 0:
        refusal = cap_refusal(ctx.session, indicator, who.id, day, points_x100, with_pending=False)
        if refusal:
            return refusal
    title = f"{indicator.code} {indicator.name}"
    item = new_item(ctx, AWARD, who.id, member.id, who.branch_id, title, decided=True)
    item_id = item.id
    sub = Submission.model_construct(
        id=item_id,
        indicator=indicator.code,
        category=category.code if category else "",
        description=form.description,
        day=day,
        points_x100=points_x100,
    )
    insert_now(ctx.session, sub)
    booked = book_submission(ctx.session, ctx.config, item, member.id, ctx.now)
    amount = signed(booked[0].points_x100)
    veto = "（一票否决，当季积分清零）" if indicator.veto else ""
    ctx.send(
        who.userid,
        f"{member.name}为你记分 #{item_id}：{title} {amount} 分{veto}。说明：{sub.description}",
    )
    return f"已记 #{item_id}：{who.name} {title} {amount} 分{veto}，已通知本人。"
