"""以技带岗 and 多能工: the three-step training sign-offs (带教, confirmed by the trainee with 确认), direct
level setting (定级), a member's skill row and a team's ILUO matrix (技能, as text and as a picture),
coverage and gaps (技能 缺口, a weekly job), the 多能工训练表 and 带教记录 sheets, and the skill-level
import (`python -m bot skills import FILE`).

The catalogue — posts with their 工段, complexity, ideal qualified count, targets and training points —
is the `skills` section (`handlers/skills_config.py`). A step is an item `#N` of kind 带教 owned by the
coach and decided by the trainee alone; passing step 3, once confirmed, raises the trainee one level
(never above U by training alone) and books the coach's and the trainee's points in the ledger.
"""

from __future__ import annotations

import argparse
import difflib
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.orm import Session

from bot.cli import import_csv, practice_command
from bot.config import Config
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, half_width, near_names, parse_date
from bot.members import ImportReport, import_skills
from bot.replies import Button, Card, Image, ReplaceButton, Reply, Text
from bot.router import Router
from bot.scheduler import JobContext, job
from bot.simulator.demo import demo_file
from handlers import charts
from handlers.approvals import approve_one, digest_section, item_numbers
from handlers.assessment import assessment_component
from handlers.export import Scope, Sheet, workbook_sheet
from handlers.items import ItemKind, ref
from handlers.ledger import Booked, book, reverse_item
from handlers.people import find_person, person, sender_person
from handlers.periods import Period
from handlers.points_config import PointsConfig
from handlers.skills_config import Skill, SkillsConfig
from storage import items as item_store
from storage import people as people_store
from storage import skills as store
from storage.items import Item
from storage.models import utcnow
from storage.queries import insert_now
from storage.skills import TrainingPlan, TrainingStep
from storage.vocabulary import ItemState, Role, SkillLevel

router = Router("skills")
V = TypeVar("V")

STEP_NAMES = {1: "示范", 2: "指导", 3: "考核"}
STEP_TITLES = {1: "第一步 我来做你来看", 2: "第二步 你来做我来看", 3: "第三步 你再做我再看"}
STEP_WORDS = {"1": 1, "一": 1, "示范": 1, "2": 2, "二": 2, "指导": 2, "3": 3, "三": 3, "考核": 3}
PASS_WORDS = {"合格": True, "通过": True, "不合格": False, "未通过": False, "不通过": False}
SYMBOLS = {"0": "○", "I": "◔", "L": "◑", "U": "◕", "O": "●"}
EXPIRED_SYMBOL = "⊘"  # a level that lapsed without re-certification
REMIND_AFTER = timedelta(days=1)
DEMO_LEVELS_AGE = timedelta(days=100)  # the demo cast held its imported levels before the history began
REMINDERS = ("start", "half", "due")  # of a rotation plan, in the order they fall due


_RANKS = {level.value: level.rank for level in SkillLevel}


def rank(level: str) -> int:
    """0 for untrained (or anything unknown) … 4 for O."""
    return _RANKS.get(level, 0)


def skills_of(config: Config) -> SkillsConfig:
    return SkillsConfig.of(config)


# -- parsing what people type -----------------------------------------------------------------------


def parse_skill(raw: str, ctx: Any) -> Skill:
    """A post by name or alias, with a did-you-mean when nothing matches."""
    text = half_width(raw).strip()
    config = skills_of(ctx.config)
    found = config.skill(text)
    if found is not None:
        return found
    near = near_names(config.posts, text)
    if near:
        hint = "、".join(near)
        raise FieldError(f"没有「{text}」这个岗位技能。你是不是想写：{hint}？")
    raise FieldError(f"没有「{text}」这个岗位技能。可选：{'、'.join(p.name for p in config.posts)}")


def parse_member(raw: str, ctx: Any) -> people_store.Person:
    """A member by name or userid, with a did-you-mean when nobody matches."""
    try:
        return find_person(ctx.session, raw)
    except FieldError as unknown:
        word = half_width(raw).strip().lstrip("@")
        if not word or "有 " in str(unknown):
            raise
        near = difflib.get_close_matches(word, store.member_names(ctx.session), n=3, cutoff=0.3)
        if near:
            raise FieldError(f"找不到成员「{word}」。你是不是想写：{'、'.join(near)}？") from None
        raise


def parse_step(raw: str, _ctx: Any) -> int:
    word = half_width(raw).strip().removeprefix("第").removesuffix("步")
    if word not in STEP_WORDS:
        raise FieldError("应写 1、2、3，或 示范、指导、考核")
    return STEP_WORDS[word]


def parse_score(raw: str, ctx: Any) -> float:
    """合格/不合格, or a mark 0–100 (合格 = 100, 不合格 = 0)."""
    word = half_width(raw).strip().replace("分", "")
    if word in PASS_WORDS:
        return 100.0 if PASS_WORDS[word] else 0.0
    try:
        value = float(word)
    except ValueError:
        raise FieldError("应写 合格、不合格，或 0–100 的分数") from None
    if not 0 <= value <= 100:
        raise FieldError("分数应在 0 到 100 之间")
    return value


def parse_comment(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 2:
        raise FieldError("请用一句话写清学员哪里做得不对、怎么改")
    if len(value) > 500:
        raise FieldError("太长了，请控制在 500 字以内")
    return value


def parse_level(raw: str, _ctx: Any) -> str:
    word = half_width(raw).strip().upper()
    if word in ("未培训", "无"):
        word = "0"
    if word not in SkillLevel.__members__.values():
        raise FieldError("应写 I、L、U、O（或 0 表示未培训）")
    return word


# -- the kind: a training step, confirmed by the trainee ---------------------------------------------


class TrainingStepKind(ItemKind):
    """带教: a step the coach recorded; the trainee alone confirms it (确认), nobody rejects it."""

    name = "带教"
    noun = "记录"
    source = "先锋 · 以技带岗"
    approve_label = "确认"
    takes_evidence = False
    # Trainees confirm with 确认 (this module's command), not 通过: 待审/通过/驳回 stay the approvers'.
    decider_roles: ClassVar[frozenset[str]] = frozenset()

    def approvers(
        self, session: Session, config: Config, item: Item, paid: Sequence[int] | None = None
    ) -> list[people_store.Person]:
        step = session.get(TrainingStep, item.id)
        trainee = person(session, step.trainee_id) if step is not None else None
        return [trainee] if trainee is not None else []

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        step = session.get(TrainingStep, item.id)
        if item.status == ItemState.PENDING:
            if step is not None and member.id == step.trainee_id:
                return None
            return f"#{item.id} 是给学员本人确认的带教记录，只能由学员确认。"
        # Voiding a confirmed step is the branch's decision, never the coach's or the trainee's.
        if step is not None and member.id in (step.trainee_id, step.coach_id):
            return f"#{item.id} 是你参与的带教记录，不能由你作废，请联系支部书记。"
        return super().refusal(session, config, member, item)

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        step = session.get(TrainingStep, item.id)
        if step is None:
            return []
        coach = person(session, step.coach_id)
        lines = [
            ("技能", step.skill),
            ("步骤", STEP_TITLES[step.step] + (f"（第 {step.attempt} 次）" if step.attempt > 1 else "")),
            ("师傅", coach.name if coach else "?"),
        ]
        if step.score is not None:
            verdict = "合格" if step.passed else "不合格"
            lines.append(("成绩", f"{step.score:g} 分 {verdict}"))
        return lines

    def description(self, session: Session, item: Item) -> str:
        step = session.get(TrainingStep, item.id)
        return f"点评：{step.comment}" if step is not None and step.comment else ""

    def card(
        self,
        session: Session,
        config: Config,
        item: Item,
        owner: people_store.Person,
        evidence: int = 0,
        *,
        facts: Sequence[tuple[str, str]] | None = None,
        description: str | None = None,
    ) -> Card:
        """One button, 确认, for the trainee (not the approvers' 通过 / 驳回)."""
        assert item.id is not None
        return Card(
            title=f"带教记录 #{item.id} 请确认",
            subtitle=item.title,
            source=self.source,
            facts=tuple(self.facts(session, config, item) if facts is None else facts),
            description=self.description(session, item) if description is None else description,
            buttons=(Button("确认", "confirm", str(item.id)),),
            ref=ref(item.id),
        )

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        step = ctx.session.get(TrainingStep, item.id)
        if step is None or step.step != 3 or not step.passed:
            return []
        return certify(ctx, item, step, approver)

    def void(self, ctx: Context, item: Item, voider: Sender, reason: str) -> list[Booked]:
        """Reverse the points and put the level back where the step found it."""
        assert item.id is not None
        step = ctx.session.get(TrainingStep, item.id)
        if step is not None and step.passed:
            change = next(
                (c for c in store.history(ctx.session, step.trainee_id) if c.skill == step.skill), None
            )
            # Only while this step's raise is still the newest change: a later 定级 or pass stands.
            if change is not None and change.item_id == item.id:
                store.set_level(
                    ctx.session,
                    step.trainee_id,
                    step.skill,
                    change.from_level,
                    ctx.now,
                    by_id=voider.id,
                    source="作废",
                    reason=f"#{item.id} 作废：{reason}",
                    actor=voider.userid,
                )
        return reverse_item(ctx.session, item.id, voider.id, ctx.now, reason)


STEP_KIND = TrainingStepKind().register()


def certify(ctx: Context, item: Item, step: TrainingStep, approver: Sender) -> list[Booked]:
    """A confirmed pass of step 3: one level up (at most U), the coach's points and, for a new level,
    the trainee's."""
    config = skills_of(ctx.config)
    trainee, coach = person(ctx.session, step.trainee_id), person(ctx.session, step.coach_id)
    assert trainee is not None and coach is not None and item.id is not None
    before = store.level(ctx.session, trainee.id, step.skill)
    ceiling = SkillLevel.U.rank
    new = list(SkillLevel)[min(rank(before) + 1, ceiling)].value if rank(before) < ceiling else before
    if new != before:
        store.set_level(
            ctx.session,
            trainee.id,
            step.skill,
            new,
            ctx.now,
            by_id=coach.id,
            source="带教",
            reason=f"#{item.id} 第三步考核合格（{step.score:g} 分）",
            item_id=item.id,
            coach_id=coach.id,
            actor=approver.userid,
            subject=trainee.userid,
        )
    close_plans(ctx, trainee, step.skill, item.id)
    points = PointsConfig.of(ctx.config)
    booked: list[Booked] = []
    pay = [(coach, config.training.indicator, config.training.points, f"带教 {trainee.name} {step.skill}")]
    if new != before and new in config.training.certification_points:
        pay.append(
            (
                trainee,
                config.training.certification_indicator,
                config.training.certification_points[SkillLevel(new)],
                f"{step.skill} 取得 {new} 级",
            )
        )
    for who, code, amount, note in pay:
        category = points.category_of(code) if code else None
        if not code or category is None or not amount:
            continue
        booked.append(
            book(
                ctx.session,
                who,
                round(amount * 100),
                category=category.code,
                indicator=code,
                day=ctx.now.date(),
                at=ctx.now,
                item_id=item.id,
                approver_id=approver.id,
                note=note,
            )
        )
    return booked


# -- 带教 ------------------------------------------------------------------------------------------


class TrainingForm(Form):
    trainee: people_store.Person = Field(
        "学员",
        example="陈静",
        parse=parse_member,  # type: ignore[assignment]
        positional=True,
        aliases=("徒弟", "学徒"),
    )
    skill: Skill = Field(
        "技能",
        example="切丝",
        parse=parse_skill,  # type: ignore[assignment]
        positional=True,
        aliases=("岗位",),
    )
    step: int = Field(
        "步骤",
        example="1",
        parse=parse_step,  # type: ignore[assignment]
        positional=True,
        help="1 示范（我来做你来看）、2 指导（你来做我来看）、3 考核（你再做我再看）",
    )
    comment: str | None = Field(
        "点评",
        example="下刀门压力前没有先确认来料水分",
        parse=parse_comment,  # type: ignore[assignment]
        required=False,
        aliases=("问题", "评语"),
        help="第二步必填：学员哪里做得不对",
    )
    score: float | None = Field(
        "成绩",
        example="合格",
        parse=parse_score,  # type: ignore[assignment]
        required=False,
        aliases=("考核结果", "分数"),
        help="第三步必填：合格、不合格，或 0–100 分",
    )

    def check(self, ctx: Any) -> dict[str, str]:
        if self.step == 2 and not self.comment:
            return {"comment": "第二步（指导）必须写点评：学员哪里做得不对、怎么改"}
        if self.step == 3 and self.score is None:
            return {"score": "第三步（考核）必须写成绩：合格、不合格，或 0–100 分"}
        return {}


def order_refusal(rows: list[store.StepRow], step: int, trainee: str, skill: str) -> tuple[str | None, int]:
    """Why `step` cannot be recorded now (steps go 1 → 2 (repeatable) → 3), and its attempt number."""
    # The current round starts after the last confirmed pass of step 3.
    last_pass = max(
        (i for i, r in enumerate(rows) if r.step == 3 and r.passed and r.status == "approved"), default=-1
    )
    current = rows[last_pass + 1 :]
    waiting = [r for r in current if r.status == ItemState.PENDING]
    if waiting:
        return f"{trainee}的{skill}带教记录 #{waiting[-1].id} 还没有确认，请先让学员确认后再记下一步。", 0
    done = [r for r in current if r.status == ItemState.APPROVED]
    has = {r.step for r in done}
    attempt = sum(1 for r in done if r.step == step) + 1
    if step == 1 and 1 in has:
        return f"{trainee}的{skill}已完成第一步（示范），请记第二步（指导）。", 0
    if step == 2 and 1 not in has:
        return f"{trainee}的{skill}还没有第一步（示范），请先记第一步。", 0
    if step == 3 and 2 not in has:
        first = "第二步（指导）" if 1 in has else "第一步（示范）"
        return f"{trainee}的{skill}还没有完成第二步（指导），不能考核。请先记{first}。", 0
    return None, attempt


@router.command("带教", code="train", aliases=("三步法", "带徒"), form=TrainingForm)
def train(ctx: Context, member: Sender, form: TrainingForm) -> str:
    """记录一次三步法带教（1 示范、2 指导、3 考核）；学员确认后生效，第三步合格提升学员一级。"""
    config = skills_of(ctx.config)
    trainee, skill, step = form.trainee, form.skill, form.step
    if trainee.id == member.id:
        return "不能给自己带教，请由本岗位的师傅（U 或 O 级）为你记录。"
    mine = store.level(ctx.session, member.id, skill.name)
    need = config.iluo.coach_min_level
    if rank(mine) < rank(need):
        return (
            f"带教{skill.name}需要你在该岗位达到 {need} 级（{config.label(need)}），你现在是 "
            f"{mine if mine != '0' else '未培训'}。请找该岗位 {need}/O 级的师傅带教。"
        )
    theirs = store.level(ctx.session, trainee.id, skill.name)
    if rank(theirs) >= SkillLevel.U.rank:
        return (
            f"{trainee.name}的{skill.name}已是 {theirs} 级，三步法带教最高到 U 级。"
            "认定岗位教练（O 级）请由班组长或支部书记用「定级」。"
        )
    refusal, attempt = order_refusal(
        store.steps(ctx.session, trainee.id, skill.name), step, trainee.name, skill.name
    )
    if refusal:
        return refusal
    passed = None if step != 3 else (form.score or 0) >= config.training.pass_score
    title = f"{trainee.name} {skill.name} {STEP_TITLES[step]}"
    item_id = item_store.new_item(
        ctx.session,
        STEP_KIND.name,
        ctx.now,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=trainee.branch_id,
        title=title,
    )
    insert_now(
        ctx.session,
        TrainingStep(
            id=item_id,
            trainee_id=trainee.id,
            coach_id=member.id,
            skill=skill.name,
            step=step,
            attempt=attempt,
            comment=form.comment or "",
            score=form.score if step == 3 else None,
            passed=passed,
        ),
    )
    item = Item.model_construct(
        id=item_id,
        kind=STEP_KIND.name,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=trainee.branch_id,
        title=title,
        created_at=ctx.now,
    )
    # The card goes to the trainee without recording them as an approver: the workday 待审 digest speaks
    # of 申报 to review, while a trainee gets this practice's own reminder after a day.
    ctx.send(trainee.userid, STEP_KIND.card(ctx.session, ctx.config, item, sender_person(member)))
    result = ""
    if step == 3:
        result = "，考核合格，学员确认后提升一级" if passed else "，考核未通过，可继续第二步指导后再考核"
    times = f"（第 {attempt} 次）" if attempt > 1 else ""
    return f"已记录带教 #{item_id}：{title}{times}{result}。已发给{trainee.name}确认，确认后生效。"


# -- 确认 ------------------------------------------------------------------------------------------


def parse_confirm(raw: str, _ctx: object) -> list[int]:
    numbers = item_numbers(raw)
    if not numbers:
        raise FieldError("应写编号，如 #12")
    return numbers


@router.command("确认", code="confirm", aliases=("签认",), args=parse_confirm)
def confirm(ctx: Context, member: Sender, args: str) -> list[Reply]:
    """学员确认师傅为自己记录的带教步骤，例：确认 #12（也可点卡片上的「确认」）。"""
    numbers = item_numbers(args)
    if not numbers:
        return [Text("请写明编号，例：确认 #12。")]
    answers = []
    for n in dict.fromkeys(numbers):
        item = ctx.session.get(Item, n)
        if item is None or item.kind != STEP_KIND.name:
            answers.append((f"没有等你确认的带教记录 #{n}。", ""))
            continue
        text, label = approve_one(ctx, member, n)
        answers.append((text.replace("已通过", "已确认", 1), label.replace("已通过", "已确认", 1)))
    reply = Text("\n".join(a for a, _ in answers))
    label = answers[0][1]
    if ctx.by_click and label:
        return [ReplaceButton(label), reply]
    return [reply]


# -- 定级 ------------------------------------------------------------------------------------------


class RatingForm(Form):
    member: people_store.Person = Field(
        "成员",
        example="王芳",
        parse=parse_member,  # type: ignore[assignment]
        positional=True,
    )
    skill: Skill = Field("技能", example="烘丝", parse=parse_skill, positional=True)  # type: ignore[assignment]
    level: str = Field("等级", example="U", parse=parse_level, positional=True)  # type: ignore[assignment]
    reason: str | None = Field(
        "理由",
        example="多年薄板烘丝主操，经车间考核认定",
        positional=True,
        rest=True,
        required=False,  # type: ignore[assignment]
        aliases=("说明",),
    )


def scope_refusal(ctx: Context, member: Sender, who: people_store.Person) -> str | None:
    """Team leaders rate their own team, secretaries their branch, the committee everyone."""
    if member.has(Role.COMMITTEE):
        return None
    if member.has(Role.SECRETARY) and who.branch_id == member.branch_id:
        return None
    if member.has(Role.TEAM_LEADER) and who.team_id is not None and who.team_id == member.team_id:
        return None
    if member.has(Role.SECRETARY):
        return f"{who.name}是{who.branch or '其他支部'}的成员，只能由其所在支部书记或班组长定级。"
    return f"{who.name}不在你的班组，只能由其班组长或支部书记定级。"


@router.command(
    "定级",
    code="rate",
    aliases=("技能定级",),
    roles={Role.TEAM_LEADER, Role.SECRETARY, Role.COMMITTEE},
    form=RatingForm,
)
def rate(ctx: Context, member: Sender, form: RatingForm) -> str:
    """直接认定成员的技能等级（留痕：谁、何时、从几级到几级、理由），例：定级 王芳 烘丝 U 多年主操。"""
    config = skills_of(ctx.config)
    who, skill, new = form.member, form.skill, form.level
    if who.id == member.id:
        return "不能给自己定级，请由你的班组长、支部书记或党总支认定。"
    refusal = scope_refusal(ctx, member, who)
    if refusal:
        return refusal
    before = store.level(ctx.session, who.id, skill.name)
    if before == new and not skill.recert_days:
        return f"{who.name}的{skill.name}已经是 {new} 级（{config.label(new)}），无需更改。"
    store.set_level(
        ctx.session,
        who.id,
        skill.name,
        new,
        ctx.now,
        by_id=member.id,
        source="定级",
        reason=form.reason or "",
        actor=member.userid,
        subject=who.userid,
    )
    change = f"{skill.name} {before} → {new}（{config.label(new)}）"
    if before == new:  # a post with re-certification: the same level again restarts its interval
        change = f"{skill.name} {new} 级重新认定，有效期 {skill.recert_days} 天"
    ctx.send(who.userid, f"{member.name}将你的{change}。" + (f"理由：{form.reason}" if form.reason else ""))
    return f"已定级：{who.name} {change}，已通知本人。发送「技能 {who.name}」查看记录。"


# -- 技能 -------------------------------------------------------------------------------------------


def local_date(ctx: Context, at: Any) -> str:
    return f"{at.astimezone(ctx.config.tz):%Y-%m-%d}"


def member_row(ctx: Context, who: people_store.Person, *, with_history: bool) -> str:
    """Every post where the member holds a level (current first as I/L/U/O with its label), date, coach."""
    config = skills_of(ctx.config)
    levels = store.levels_of(ctx.session, who.id)
    changes = store.history(ctx.session, who.id)
    own = people_store_post(ctx, who.id)
    order = {p.name: i for i, p in enumerate(config.posts)}
    held = sorted(((s, lv) for s, lv in levels.items() if lv[0] != "0"), key=lambda x: order.get(x[0], 99))
    head = f"{who.name}的技能" + (f"（本岗位：{own}）" if own else "")
    if not held:
        lines = [f"{head}：还没有任何岗位等级。"]
    else:
        lines = [f"{head}："]
        for skill, (lvl, since) in held:
            coach = next((c.coach_id for c in changes if c.skill == skill and c.coach_id), None)
            coach_name = person(ctx.session, coach).name if coach and person(ctx.session, coach) else ""
            target = config.target(own or None, skill)
            gap = " · 未达目标 " + target if rank(lvl) < rank(target) else ""
            lapses = lapses_at(config, skill, since)
            if lapses is not None and lapses < ctx.now:
                gap = f" · {EXPIRED_SYMBOL} 已于 {local_date(ctx, lapses)} 过期，需重新定级或考核"
            elif lapses is not None:
                gap += f" · 有效期至 {local_date(ctx, lapses)}"
            lines.append(
                f"{SYMBOLS.get(lvl, '')} {skill} {lvl} {config.label(lvl)} · {local_date(ctx, since)}"
                + (f" · 师傅 {coach_name}" if coach_name else "")
                + gap
            )
    if with_history and changes:
        lines.append("变更记录（最近的在前）：")
        for c in changes[:10]:
            setter = person(ctx.session, c.by_id) if c.by_id else None
            by = f" · {setter.name}" if setter else ""
            lines.append(
                f"{local_date(ctx, c.at)} {c.skill} {c.from_level} → {c.to_level} {c.source}{by}"
                + (f" · {c.reason}" if c.reason else "")
            )
    return "\n".join(lines)


def people_store_post(ctx: Context, member_id: int) -> str:
    """The member's own post (configured name), "" when none was imported."""
    post = store.member_post(ctx.session, member_id)
    found = skills_of(ctx.config).skill(post) if post else None
    return found.name if found else ""


@dataclass(frozen=True)
class Coverage:
    """One post's coverage in a group of people."""

    post: Skill
    qualified: list[str]  # names at U or above
    teachers: list[str]  # names at O


def lapses_at(config: SkillsConfig, skill: str, since: datetime) -> datetime | None:
    """When a level set at `since` lapses without re-certification (None: the post has no interval)."""
    post = config.skill(skill)
    return since + timedelta(days=post.recert_days) if post is not None and post.recert_days else None


def rows_of(
    ctx: Context | JobContext, *, team_id: int | None = None, branch_id: int | None = None
) -> tuple[store.Row, ...]:
    """The matrix rows of a team or branch as they count now (lapsed levels set apart)."""
    rows = store.matrix(ctx.session, team_id=team_id, branch_id=branch_id)
    return effective(skills_of(ctx.config), rows, ctx.now)


class _Latest(Generic[V]):
    """The last `size` answers computed from shared inputs that never change (a kept matrix, the
    configuration), found by the inputs' identity: comparing a 200-person matrix by what it holds
    costs about as much as the answer. Each entry holds its inputs, so their ids are not reused while
    it is kept. Shared by the writer and the reader threads."""

    def __init__(self, size: int):
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[tuple[object, ...], V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, inputs: tuple[object, ...], also: Hashable, fresh: Callable[[V], bool], compute: Callable[[], V]
    ) -> V:
        """`compute()`, or what it returned before for the same `inputs` (by identity) and `also` (by
        value) while `fresh` of it holds."""
        key = (tuple(map(id, inputs)), also)
        with self._lock:
            found = self._kept.get(key)
            if found is not None and fresh(found[1]):
                self._kept.move_to_end(key)
                return found[1]
        value = compute()
        with self._lock:
            self._kept[key] = (inputs, value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return value


@dataclass(frozen=True)
class _Counted:
    """A matrix's rows as they count, and the moments they count so for: after `after` (the latest
    lapse among them) and up to `until` (the next one), None where nothing bounds them."""

    rows: tuple[store.Row, ...]
    after: datetime | None
    until: datetime | None

    def holds_at(self, now: datetime) -> bool:
        return (self.after is None or now > self.after) and (self.until is None or now <= self.until)


_COUNTED: _Latest[_Counted] = _Latest(64)  # a workshop's teams, and its branches


def effective(config: SkillsConfig, rows: Sequence[store.Row], now: datetime) -> tuple[store.Row, ...]:
    """The rows with lapsed levels moved from `levels` to `expired`: they no longer count anywhere.

    A kept matrix (the tuple `store.matrix` returns, the same until the skills change) is asked about
    again and again, and looking at each of 200 people's levels took a millisecond per ask: its answer
    is kept for as long as no level lapses (`_Counted`)."""
    if not isinstance(rows, tuple):  # a caller's list could change under a kept answer
        return _count(config, rows, now).rows
    return _COUNTED.get(
        (config, rows), None, lambda c: c.holds_at(now), lambda: _count(config, rows, now)
    ).rows


def _count(config: SkillsConfig, rows: Sequence[store.Row], now: datetime) -> _Counted:
    # A level set at `since` lasts until since + its post's days, and has lapsed after that moment.
    spans = {p.name: timedelta(days=p.recert_days) for p in config.posts if p.recert_days}
    after: datetime | None = None
    until: datetime | None = None
    out = []
    for r in rows:
        gone = {}
        for s, span in spans.items():
            if (lvl := r.levels.get(s, "0")) == "0" or s not in r.since:
                continue
            lapses = r.since[s] + span
            if lapses < now:
                gone[s] = lvl
                after = lapses if after is None else max(after, lapses)
            else:
                until = lapses if until is None else min(until, lapses)
        if gone:
            kept = {s: lvl for s, lvl in r.levels.items() if s not in gone}
            r = replace(r, levels=kept, expired=gone)
        out.append(r)
    return _Counted(tuple(out), after, until)


def coverage(config: SkillsConfig, rows: Sequence[store.Row]) -> list[Coverage]:
    """Who counts towards each post (at `coverage_min_level` or above) and who can teach it (O), in
    the order of `rows`: one pass over the levels each person holds (a 200-person team holds about a
    thousand), not one over everyone per post."""
    floor = rank(config.iluo.coverage_min_level)
    qualified: dict[str, list[str]] = {p.name: [] for p in config.posts}
    teachers: dict[str, list[str]] = {p.name: [] for p in config.posts}
    for r in rows:
        for post, level in r.levels.items():
            if post in qualified:
                if _RANKS.get(level, 0) >= floor > 0:
                    qualified[post].append(r.name)
                if level == SkillLevel.O:
                    teachers[post].append(r.name)
    if floor <= 0:  # configured so that everyone counts, untrained or not
        qualified = {p.name: [r.name for r in rows] for p in config.posts}
    return [Coverage(p, qualified[p.name], teachers[p.name]) for p in config.posts]


def own_post(config: SkillsConfig, row: store.Row) -> Skill | None:
    return config.skill(row.post) if row.post else None


def below_target(config: SkillsConfig, row: store.Row) -> list[tuple[str, str, str]]:
    """(post, level, target) where the member is below target in their own or a related post.

    一般岗位 (other 工段) are trained when a gap appears, so they are not listed as the member's gaps."""
    mine = own_post(config, row)
    if mine is None:
        return []
    out = []
    for post in config.posts:
        if post.section != mine.section:
            continue
        target = config.target(mine.name, post.name)
        held = row.levels.get(post.name, "0")
        if rank(held) < rank(target):
            out.append((post.name, held, target))
    return out


def target_ranks(config: SkillsConfig, row: store.Row) -> dict[str, int] | None:
    """The rank of the target level in each post of the member's own 工段 (their own post and the
    related ones), or None without an own post. Posts of other 工段 (一般岗位) are trained when a gap
    appears, so, as in 技能 缺口, they are not marked as the member's shortfall.

    Computed once per row: the matrix asks it for every cell, and looking posts up by name is not free."""
    mine = own_post(config, row)
    if mine is None:
        return None
    targets = config.iluo.targets
    return {
        p.name: rank(targets.own if p.name == mine.name else targets.related)
        for p in config.posts
        if p.section == mine.section
    }


def matrix_image(config: SkillsConfig, title: str, rows: Sequence[store.Row]) -> bytes:
    return charts.iluo_matrix(matrix_of(config, title, rows))


def matrix_of(config: SkillsConfig, title: str, rows: Sequence[store.Row]) -> charts.Matrix:
    """What the 多能工训练表 shows, as plain data (drawn later, by the outbox, with `iluo_matrix`)."""
    cov = coverage(config, rows)
    names = [p.name for p in config.posts]
    untrained = [False] * len(names)
    levels, expired, below = [], [], []
    for r in rows:  # a person's list is built once per list, with no look-up of a post by name
        held = [_RANKS.get(r.levels.get(n, "0"), 0) for n in names]
        pairs = list(zip(names, held, strict=True))
        if r.expired:
            levels.append([_RANKS.get(r.expired[n], 0) if n in r.expired else h for n, h in pairs])
            expired.append([n in r.expired for n in names])
        else:
            levels.append(held)
            expired.append(untrained)
        target = target_ranks(config, r)
        below.append([h < target.get(n, 0) for n, h in pairs] if target is not None else untrained)
    return charts.Matrix(
        title=title,
        people=[r.name for r in rows],
        posts=[n.removesuffix("岗") for n in names],
        levels=levels,
        expired=expired,
        below_target=below,
        coverage=[f"{len(c.qualified)}/{c.post.ideal_qualified}" for c in cov],
        short=[len(c.qualified) < c.post.ideal_qualified for c in cov],
    )


NAMES_UP_TO = 30  # people in a group whose 技能 table names everyone; a bigger one gets counts


def matrix_text(config: SkillsConfig, title: str, rows: Sequence[store.Row]) -> str:
    """The compact table for chat, one line per post (a phone cannot align a people × posts grid):
    qualified/ideal, then everyone holding a level there with its symbol, highest first. A group of
    more than `NAMES_UP_TO` would make a page of names: it gets how many hold each level, and the
    names are in the picture that follows."""
    if len(rows) > NAMES_UP_TO:
        return _counts_text(config, title, rows)
    lines = [f"{title}（●O ◕U ◑L ◔I ⊘过期；合格/理想人数，U/O 计入）："]
    for c in coverage(config, rows):
        holders = sorted(
            ((r.name, r.levels[c.post.name]) for r in rows if rank(r.levels.get(c.post.name, "0")) > 0),
            key=lambda h: -rank(h[1]),
        )
        lapsed = [(r.name, EXPIRED_SYMBOL) for r in rows if c.post.name in r.expired]
        shown = " ".join(f"{name}{SYMBOLS[lvl]}" for name, lvl in holders)
        shown += "".join(f" {name}{mark}" for name, mark in lapsed)
        flag = " ⚠" if len(c.qualified) < c.post.ideal_qualified else ""
        lines.append(
            f"{c.post.name} {len(c.qualified)}/{c.post.ideal_qualified}{flag}：{shown.strip() or '无人'}"
        )
    return "\n".join(lines)


def _counts_text(config: SkillsConfig, title: str, rows: Sequence[store.Row]) -> str:
    """`matrix_text` for a big group: per post, qualified/ideal and how many hold each level."""
    lines = [f"{title}（{len(rows)} 人，名单见下图；合格/理想人数，U/O 计入）："]
    held: dict[str, Counter[str]] = {p.name: Counter() for p in config.posts}
    lapsed: Counter[str] = Counter()
    for r in rows:  # one pass over the levels people hold, not one over everyone per post
        for post, level in r.levels.items():
            if post in held:
                held[post][level] += 1
        lapsed.update(r.expired.keys())  # (a mapping would be taken as counts)
    for c in coverage(config, rows):
        counts = [f"{SYMBOLS[lvl]}{lvl} {n}" for lvl in ("O", "U", "L", "I") if (n := held[c.post.name][lvl])]
        counts += [f"{EXPIRED_SYMBOL}过期 {lapsed[c.post.name]}"] if lapsed[c.post.name] else []
        flag = " ⚠" if len(c.qualified) < c.post.ideal_qualified else ""
        lines.append(
            f"{c.post.name} {len(c.qualified)}/{c.post.ideal_qualified}{flag}：{' · '.join(counts) or '无人'}"
        )
    return "\n".join(lines)


_ANSWERS: _Latest[tuple[str, dict[str, Any]]] = _Latest(64)


def matrix_answer(
    config: SkillsConfig, heading: str, rows: Sequence[store.Row]
) -> tuple[str, dict[str, Any]]:
    """The matrix's text and its picture's data. For a 200-person team they take a few milliseconds to
    write out and are asked for again and again (a team leader, eight at a morning meeting), so they
    are kept for the rows `effective` keeps."""

    def compute() -> tuple[str, dict[str, Any]]:
        return matrix_text(config, heading, rows), matrix_of(config, heading, rows).data()

    if not isinstance(rows, tuple):
        return compute()
    return _ANSWERS.get((config, rows), heading, lambda _: True, compute)


def gaps_text(config: SkillsConfig, title: str, rows: Sequence[store.Row]) -> str:
    """技能 缺口: posts short of their ideal count, one-person posts, teachers, who is below target."""
    cov = coverage(config, rows)
    lines = [f"{title}技能缺口（U/O 计入覆盖）："]
    short = [c for c in cov if len(c.qualified) < c.post.ideal_qualified]
    if short:
        lines.append("覆盖不足的岗位：")
        for c in short:
            teach = "、".join(c.teachers) if c.teachers else "无 O 级师傅"
            single = " · 单点风险" if len(c.qualified) == 1 else ""
            lines.append(
                f"· {c.post.name} {len(c.qualified)}/{c.post.ideal_qualified}{single} · 可带教：{teach}"
            )
    else:
        lines.append("所有岗位都达到理想人数。")
    people = [(r, gaps) for r in rows if (gaps := below_target(config, r))]
    if people:
        lines.append("低于目标的成员（本岗位 / 相关岗位）：")
        for r, gaps in people:
            lines.append(
                f"· {r.name}：" + "、".join(f"{p} {lv if lv != '0' else '未培训'}→{t}" for p, lv, t in gaps)
            )
    missing = [r.name for r in rows if own_post(config, r) is None]
    if missing:
        lines.append(f"未登记本岗位（无法判断目标）：{'、'.join(missing)}")
    return "\n".join(lines)


def group_for(ctx: Context, member: Sender, word: str) -> tuple[str, tuple[store.Row, ...]] | str | None:
    """The team or branch a word names and the sender may see, or a refusal, or None (not a group)."""
    if word in ("班组", "本班组", "我的班组"):
        if member.team_id is None:
            return "你还没有登记班组。"
        word = member.team
    if word in ("支部", "本支部"):
        if not member.has(Role.SECRETARY, Role.COMMITTEE):
            return "查看支部的技能矩阵需要支部书记或党总支。"
        return f"{member.branch}", rows_of(ctx, branch_id=member.branch_id)
    team = store.team_id(ctx.session, word)
    if team is None:
        return None
    rows = rows_of(ctx, team_id=team)
    if member.has(Role.COMMITTEE):
        return word, rows
    if member.has(Role.TEAM_LEADER) and member.team_id == team:
        return word, rows
    if member.has(Role.SECRETARY) and member.branch_id is not None:
        mine = rows_of(ctx, team_id=team, branch_id=member.branch_id)
        if mine:
            return word, mine
    return f"查看{word}的技能矩阵需要是该班组的班组长，或其支部书记。"


def branch_people(ctx: Context, branch_id: int | None) -> tuple[store.Row, ...]:
    return rows_of(ctx, branch_id=branch_id) if branch_id is not None else ()


@router.command("技能", code="skills", aliases=("技能矩阵", "多能工"), reads=True)
def skills(ctx: Context, member: Sender, args: str) -> list[Reply] | str:
    """查看技能：「技能」我的，「技能 王芳」某人及记录，「技能 甲班」「技能 班组」矩阵图，「技能 缺口」。"""
    config = skills_of(ctx.config)
    word = half_width(args).strip()
    if not word:
        return member_row(ctx, sender_person(member), with_history=False)
    if word in ("缺口", "覆盖"):
        if member.has(Role.SECRETARY, Role.COMMITTEE):
            rows, title = branch_people(ctx, member.branch_id), member.branch
        elif member.has(Role.TEAM_LEADER) and member.team_id is not None:
            rows, title = rows_of(ctx, team_id=member.team_id), member.team
        else:
            return "「技能 缺口」供班组长（本班组）和支部书记（本支部）查看。发送「技能」查看你自己的。"
        return gaps_text(config, title, rows)
    group = group_for(ctx, member, word)
    if isinstance(group, str):
        return group
    if group is not None:
        title, rows = group
        if not rows:
            return f"{title}还没有成员。"
        heading = f"{title}多能工训练表"
        try:
            charts.font_file()  # said now, with the table, rather than in the picture's place later
        except charts.ChartError as problem:
            return [Text(matrix_text(config, heading, rows)), Text(str(problem))]
        text, data = matrix_answer(config, heading, rows)
        # Drawn by the outbox as it sends it: the handler's transaction does not wait for the picture.
        return [Text(text), Image.drawn(f"{heading}.png", "iluo_matrix", data)]
    try:
        who = parse_member(word, ctx)
    except FieldError as problem:
        teams = "、".join(store.team_names(ctx.session)[:3])
        return f"{problem}（可写成员姓名，或班组名如 {teams}，或「缺口」）"
    return member_row(ctx, who, with_history=True)


# -- 轮训 ------------------------------------------------------------------------------------------


class PlanKind(ItemKind):
    """轮训: a rotation plan. Nobody approves it: passing step 3 of the skill closes it, the team leader
    who opened it withdraws it with 撤销, a secretary voids a closed one."""

    name = "轮训"
    noun = "计划"
    source = "先锋 · 多能工轮训"
    takes_evidence = False
    decider_roles: ClassVar[frozenset[str]] = frozenset()

    def approvers(
        self, session: Session, config: Config, item: Item, paid: Sequence[int] | None = None
    ) -> list[people_store.Person]:
        return []

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        if item.status == ItemState.PENDING:
            return f"轮训计划 #{item.id} 在学员通过该技能第三步考核后自动关闭，无需审核。"
        return super().refusal(session, config, member, item)

    def value(self, session: Session, item: Item) -> str:
        plan = session.get(TrainingPlan, item.id)
        return f"{plan.due:%m-%d} 到期" if plan is not None else ""


PLAN_KIND = PlanKind().register()


def parse_plan_start(raw: str, ctx: Any) -> date:
    day = parse_date(raw, ctx.now.date())
    if day < ctx.now.date() - timedelta(days=30):
        raise FieldError("开始日期不能早于 30 天前")
    return day


def parse_cycle(raw: str, _ctx: Any) -> int:
    word = half_width(raw).strip().removesuffix("天")
    if not word.isdigit() or not 1 <= int(word) <= 365:
        raise FieldError("应写 1 到 365 之间的天数，如 30")
    return int(word)


class PlanForm(Form):
    trainee: people_store.Person = Field(
        "学员",
        example="陈静",
        parse=parse_member,  # type: ignore[assignment]
        positional=True,
    )
    skill: Skill = Field("技能", example="烘丝", parse=parse_skill, positional=True)  # type: ignore[assignment]
    coach: people_store.Person | None = Field(
        "师傅",
        example="王芳",
        parse=parse_member,  # type: ignore[assignment]
        required=False,
        aliases=("带教师傅", "教练"),
    )
    start: date | None = Field(
        "开始", example="今天", parse=parse_plan_start, required=False, aliases=("开始日期",)
    )  # type: ignore[assignment]
    cycle: int | None = Field(
        "周期",
        example="60",
        parse=parse_cycle,  # type: ignore[assignment]
        required=False,
        help="天数；不写按岗位复杂度的默认周期",
    )


@router.command(
    "轮训", code="rotate", aliases=("轮岗培训", "多能工轮训"), roles={Role.TEAM_LEADER}, form=PlanForm
)
def rotate(ctx: Context, member: Sender, form: PlanForm) -> str:
    """为本班组成员安排轮训：学员、技能，可写师傅、开始日期、周期（默认按岗位复杂度）。"""
    config = skills_of(ctx.config)
    trainee, skill, coach = form.trainee, form.skill, form.coach
    if trainee.team_id is None or trainee.team_id != member.team_id:
        return f"{trainee.name}不在你的班组，只能由其班组长安排轮训。"
    if rank(store.level(ctx.session, trainee.id, skill.name)) >= SkillLevel.U.rank:
        return f"{trainee.name}的{skill.name}已能独立上岗（U 级及以上），无需轮训。"
    if coach is not None:
        if coach.id == trainee.id:
            return "师傅不能是学员本人。"
        need = config.iluo.coach_min_level
        held = store.level(ctx.session, coach.id, skill.name)
        if rank(held) < rank(need):
            shown = held if held != "0" else "未培训"
            return f"{coach.name}的{skill.name}是 {shown}，带教需要 {need} 级或以上，请换一位师傅。"
    already = store.open_plans(ctx.session, trainee_id=trainee.id, skill=skill.name)
    if already:
        return (
            f"{trainee.name}已有{skill.name}的轮训计划 #{already[0][1].id}，到期 {already[0][0].due:%m-%d}。"
        )
    start = form.start or ctx.now.date()
    cycle = form.cycle or skill.cycle_days or config.complexity_cycle_days[skill.complexity]
    due = start + timedelta(days=cycle)
    title = f"{trainee.name} {skill.name} 轮训"
    item_id = item_store.new_item(
        ctx.session,
        PLAN_KIND.name,
        ctx.now,
        member_id=None,
        submitted_by=member.id,
        branch_id=trainee.branch_id,
        title=title,
    )
    insert_now(
        ctx.session,
        TrainingPlan(
            id=item_id,
            trainee_id=trainee.id,
            coach_id=coach.id if coach else None,
            skill=skill.name,
            start=start,
            due=due,
            cycle_days=cycle,
        ),
    )
    with_coach = f"，师傅 {coach.name}" if coach else ""
    notice = (
        f"{member.name}为你安排了轮训 #{item_id}：{skill.name}{with_coach}，{start:%m-%d} 开始，"
        f"{due:%m-%d} 前完成三步法考核。"
    )
    ctx.send(trainee.userid, notice)
    if coach is not None and coach.id != member.id:
        ctx.send(
            coach.userid,
            f"{member.name}请你带教 {trainee.name}的{skill.name}（轮训 #{item_id}），"
            f"{start:%m-%d} 开始，{due:%m-%d} 到期。",
        )
    return (
        f"已安排轮训 #{item_id}：{title}{with_coach}，{start:%m-%d} 至 {due:%m-%d}（{cycle} 天）。"
        "学员通过第三步考核后自动关闭。"
    )


def close_plans(ctx: Context, trainee: people_store.Person, skill: str, step_id: int) -> None:
    """Passing step 3 (confirmed) closes the trainee's open plans of that skill and tells who opened them."""
    for plan, item in store.open_plans(ctx.session, trainee_id=trainee.id, skill=skill):
        if not item_store.decide(
            ctx.session, plan.id, ItemState.APPROVED, trainee.id, ctx.now, f"#{step_id}"
        ):
            continue
        leader = person(ctx.session, item.submitted_by) if item.submitted_by else None
        if leader is not None:
            ctx.send(
                leader.userid,
                f"轮训 #{plan.id}（{item.title}）已完成：{trainee.name}通过第三步考核（#{step_id}）。",
            )


def plan_reminders(today: date, plan: TrainingPlan) -> list[str]:
    """Which of start, half and due are due for this plan today and not yet sent."""
    sent = set(filter(None, plan.reminded.split(",")))
    half = plan.start + timedelta(days=plan.cycle_days // 2)
    due_soon = plan.due - timedelta(days=2)
    wanted = list(zip(REMINDERS, (plan.start, half, due_soon), strict=True))
    # Only the latest one that applies: a plan opened late does not get three reminders at once.
    applicable = [name for name, day in wanted if today >= day and name not in sent]
    return applicable[-1:] if applicable else []


@job("training_plans")
def training_plans(ctx: JobContext) -> str:
    """Daily: remind coach and trainee of a plan at its start, halfway and two days before it is due.
    Overdue plans are not here: they go to the secretaries in the working-day digest (`overdue_plans`)."""
    today = ctx.now.date()
    reminded = 0
    for plan, _item in store.open_plans(ctx.session):
        if plan.due < today:
            continue
        trainee = person(ctx.session, plan.trainee_id)
        coach = person(ctx.session, plan.coach_id) if plan.coach_id else None
        if trainee is None:
            continue
        for which in plan_reminders(today, plan):
            words = {"start": "今天开始", "half": "已过一半", "due": f"{plan.due:%m-%d} 到期，还剩 2 天"}
            said = words[which]
            text = (
                f"轮训提醒 #{plan.id}：{trainee.name} {plan.skill} {said}。"
                "师傅用「带教」记录三步法，学员确认后生效，第三步考核合格即完成。"
            )
            for who in dict.fromkeys([trainee.userid, *([coach.userid] if coach else [])]):
                ctx.send(who, text)
            # Every earlier reminder counts as given: a plan opened late is not told "today it starts".
            plan.reminded = ",".join(REMINDERS[: REMINDERS.index(which) + 1])
            reminded += 1
    return f"轮训提醒 {reminded} 条。"


@digest_section
def overdue_plans(session: Session, config: Config, now: datetime) -> dict[str, list[str]]:
    """For the secretaries of each trainee's branch: the open 轮训 plans past their due date."""
    today = now.astimezone(config.tz).date()
    by_branch: dict[int, list[str]] = {}
    for plan, branch_id, trainee in store.overdue_plans(session, today):
        if branch_id is None:
            continue
        late = (today - plan.due).days
        by_branch.setdefault(branch_id, []).append(
            f"轮训 #{plan.id} {trainee} 学 {plan.skill}，已逾期 {late} 天（到期 {plan.due:%m-%d}）"
        )
    out: dict[str, list[str]] = {}
    for branch_id, lines in by_branch.items():
        for secretary in people_store.with_role(session, Role.SECRETARY, branch_id):
            out.setdefault(secretary.userid, []).extend(lines)
    return out


# -- 我的 -------------------------------------------------------------------------------------------


@router.profile_section
def my_skills(ctx: Context) -> str:
    """My levels in a line, and the training steps waiting for my confirmation."""
    assert ctx.member is not None
    levels = store.levels_of(ctx.session, ctx.member.id)
    order = {p.name: i for i, p in enumerate(skills_of(ctx.config).posts)}
    held = [
        f"{s.removesuffix('岗')} {lv}"
        for s, (lv, _at) in sorted(levels.items(), key=lambda x: order.get(x[0], 99))
        if lv != "0"
    ]
    lines = ["技能：" + ("、".join(held) if held else "暂无等级")] if held or levels else []
    plans = (
        store.open_plans(ctx.session, trainee_id=ctx.member.id)
        if store.has_open_plan(ctx.session, ctx.member.id)
        else []
    )
    for plan, item in plans:
        rows = store.steps(ctx.session, ctx.member.id, plan.skill)
        done = sorted({r.step for r in rows if r.status == ItemState.APPROVED and r.id > item.id})
        progress = "、".join(STEP_NAMES[s] for s in done) if done else "尚未开始"
        lines.append(f"轮训 #{plan.id}：{plan.skill}，{plan.due:%m-%d} 到期，已完成：{progress}")
    mine = store.unconfirmed_for(ctx.session, ctx.member.id)
    if mine:
        lines.append(
            "待确认的带教：" + "；".join(f"#{n} {title}" for n, title in mine) + "（回复「确认 #编号」）"
        )
    return "\n".join(lines)


# -- jobs -------------------------------------------------------------------------------------------


@job("training_reminders", calendar="workdays")
def training_reminders(ctx: JobContext) -> str:
    """A step still unconfirmed after a day: remind the trainee once, with the card to click."""
    due = store.unconfirmed_steps(ctx.session, ctx.now - REMIND_AFTER)
    for item_id, trainee_id, skill, step in due:
        trainee = person(ctx.session, trainee_id)
        item = ctx.session.get(Item, item_id)
        if trainee is None or item is None:
            continue
        ctx.send(
            trainee.userid,
            f"提醒：师傅为你记录的带教 #{item_id}（{skill} {STEP_TITLES[step]}）还没有确认，"
            "确认后才计入培训记录。"
            f"回复「确认 #{item_id}」或点卡片上的「确认」。",
        )
    store.mark_reminded(ctx.session, [d[0] for d in due], ctx.now)
    return f"已提醒 {len(due)} 条未确认的带教记录。" if due else "没有超过一天未确认的带教记录。"


RECERT_NOTICE_DAYS = (30, 7)  # days before a level lapses when its holder and team leader are told


@job("recertification")
def recertification(ctx: JobContext) -> str:
    """Daily: a level that lapses in 30 or 7 days (posts with `recert_days`) is announced to its holder
    and their team leader, so that a 定级 or a step 3 renews it in time."""
    config = skills_of(ctx.config)
    posts = [p.name for p in config.posts if p.recert_days]
    today = ctx.now.date()
    told = 0
    for member_id, skill, level, since in store.levels_in(ctx.session, posts):
        lapses = lapses_at(config, skill, since)
        if lapses is None:
            continue
        left = (lapses.astimezone(ctx.config.tz).date() - today).days
        if left not in RECERT_NOTICE_DAYS:
            continue
        holder = person(ctx.session, member_id)
        if holder is None:
            continue
        when = f"{lapses.astimezone(ctx.config.tz):%Y-%m-%d}"
        ctx.send(
            holder.userid,
            f"复训提醒：你的{skill} {level} 级将于 {when} 到期（还剩 {left} 天），到期后不再计入岗位覆盖。"
            "请联系班组长重新定级或安排考核。",
        )
        leaders = [
            p
            for p in people_store.with_role(ctx.session, Role.TEAM_LEADER, holder.branch_id)
            if p.team_id is not None and p.team_id == holder.team_id and p.id != holder.id
        ]
        for leader in leaders:
            ctx.send(
                leader.userid,
                f"复训提醒：{holder.name}的{skill} {level} 级将于 {when} 到期（还剩 {left} 天）。"
                f"可用「定级 {holder.name} {skill} {level} 复训合格」重新认定。",
            )
        told += 1
    return f"已提醒 {told} 个即将到期的岗位等级。" if told else "没有 30 天或 7 天后到期的岗位等级。"


@job("skill_gaps", calendar="workdays")
def skill_gaps(ctx: JobContext) -> str:
    """Weekly: each team leader gets their team's coverage gaps."""
    config = skills_of(ctx.config)
    told = 0
    for leader in people_store.with_role(ctx.session, Role.TEAM_LEADER):
        if leader.team_id is None:
            continue
        rows = rows_of(ctx, team_id=leader.team_id)
        team = rows[0].team if rows else ""
        ctx.send(leader.userid, gaps_text(config, team, rows) + "\n发送「技能 班组」查看矩阵图。")
        told += 1
    return f"已向 {told} 位班组长发送本班组技能缺口。" if told else "没有登记班组的班组长，没有发送。"


# -- the workbook ---------------------------------------------------------------------------------


@workbook_sheet(60)
def matrix_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """多能工训练表: everyone (of the branch) × posts with symbols, then each post's coverage."""
    skills_config = SkillsConfig.of(config)
    # As the matrix stood at the end of the period (or now, for the running one).
    rows = effective(skills_config, store.matrix(session, branch_id=scope.branch_id), min(scope.hi, utcnow()))
    posts = skills_config.posts
    body: list[list[Any]] = []
    for r in rows:
        target = target_ranks(skills_config, r) or {}
        cells = []
        for p in posts:
            held = r.levels.get(p.name, "0")
            below = " ↓" if rank(held) < target.get(p.name, 0) else ""  # under target in the own 工段
            if p.name in r.expired:
                cells.append(f"{EXPIRED_SYMBOL} {r.expired[p.name]} 已过期")
            else:
                cells.append(f"{SYMBOLS.get(held, '○')} {held}{below}")
        body.append([r.name, r.team, r.post, *cells])
    cov = coverage(skills_config, rows)
    body.append(["合格/理想", "", "", *(f"{len(c.qualified)}/{c.post.ideal_qualified}" for c in cov)])
    body.append(["可带教（O）", "", "", *("、".join(c.teachers) for c in cov)])
    return Sheet("多能工训练表", ["姓名", "班组", "本岗位", *(p.name for p in posts)], body)


@workbook_sheet(61)
def training_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """带教记录: every training step recorded in the period, with its confirmation."""
    rows = []
    for s in store.step_records(session, scope.lo, scope.hi, scope.branch_id):
        verdict = "" if s.passed is None else ("合格" if s.passed else "不合格")
        rows.append(
            [
                s.id,
                s.created_at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M"),
                s.coach,
                s.trainee,
                s.skill,
                f"{s.step} {STEP_NAMES[s.step]}",
                s.attempt,
                s.comment,
                s.score if s.score is not None else "",
                verdict,
                ItemState(s.status).label if s.status != ItemState.APPROVED else "已确认",
                s.decided_at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if s.decided_at else "",
            ]
        )
    header = [
        "编号",
        "时间",
        "师傅",
        "学员",
        "技能",
        "步骤",
        "次数",
        "点评",
        "成绩",
        "结果",
        "状态",
        "确认时间",
    ]
    return Sheet("带教记录", header, rows)


# -- the skill-level import ---------------------------------------------------------------------------


def import_levels(
    session: Session, config: Config, text: str, actor: str = "cli", at: datetime | None = None
) -> ImportReport:
    """Import `userid,skill,level` rows, skills named by post name or alias."""
    return import_skills(session, text, SkillsConfig.of(config).skill, actor=actor, at=at)


@practice_command("skills", "import", help="import skill levels from CSV", arguments=((("file",), {}),))
def skills_import(args: argparse.Namespace, config: Config) -> int:
    return import_csv(args, config, lambda session, text: import_levels(session, config, text))


@demo_file("skills.csv")
def demo_levels(session: Session, config: Config, text: str) -> ImportReport:
    """The demo cast's starting levels, in local mode. Imported at every start, so only levels nobody
    has yet are filled in: what the demo history (or a person trying it out) trained or rated stays."""
    lines = text.lstrip("\ufeff").splitlines()
    held = store.recorded_pairs(session)
    kept = [line for line in lines[1:] if tuple(line.split(",")[:2]) not in held]
    # Dated before the demo's ten weeks of history, so that 技能 成员 reads in the order things happened.
    held_since = utcnow() - DEMO_LEVELS_AGE
    return import_levels(
        session, config, "\n".join([*lines[:1], *kept]) + "\n", actor="local-mode", at=held_since
    )


# -- the quarterly 党建考评 --------------------------------------------------------------------------


@assessment_component("training_coverage", "以技带岗覆盖率", unit="%")
def coverage_for_assessment(session: Session, config: Config, period: Period) -> dict[int, float]:
    """Share (0–1) of the catalogue's posts in which the branch has at least the ideal number of
    people at `coverage_min_level` or above, levels lapsed by the end of the quarter not counting."""
    skills = SkillsConfig.of(config)
    _, end = period.bounds(config.tz)
    found = store.training_coverage(
        session,
        {p.name: p.ideal_qualified for p in skills.posts},
        skills.iluo.targets.own,
        skills.iluo.coverage_min_level,
        lapse_days={p.name: p.recert_days for p in skills.posts if p.recert_days},
        at=end,
    )
    return {branch: c.coverage for branch, c in found.items()}
