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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from bot.cli import import_csv, practice_command
from bot.config import Config
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, half_width
from bot.members import ImportReport, import_skills
from bot.replies import Button, Card, Image, ReplaceButton, Reply, Text
from bot.router import Router
from bot.scheduler import JobContext, job
from bot.simulator.local import demo_file
from handlers import charts, items
from handlers.approvals import approve_one, item_numbers
from handlers.export import Scope, Sheet, workbook_sheet
from handlers.items import ItemKind, ref
from handlers.ledger import Booked, book, reverse_item
from handlers.people import find_person, person, sender_person
from handlers.points_config import PointsConfig
from handlers.skills_config import Skill, SkillsConfig
from storage import items as item_store
from storage import people as people_store
from storage import skills as store
from storage.items import Item
from storage.queries import insert_now
from storage.skills import TrainingStep
from storage.vocabulary import ItemState, Role, SkillLevel

router = Router("skills")

STEP_NAMES = {1: "示范", 2: "指导", 3: "考核"}
STEP_TITLES = {1: "第一步 我来做你来看", 2: "第二步 你来做我来看", 3: "第三步 你再做我再看"}
STEP_WORDS = {"1": 1, "一": 1, "示范": 1, "2": 2, "二": 2, "指导": 2, "3": 3, "三": 3, "考核": 3}
PASS_WORDS = {"合格": True, "通过": True, "不合格": False, "未通过": False, "不通过": False}
SYMBOLS = {"0": "○", "I": "◔", "L": "◑", "U": "◕", "O": "●"}
REMIND_AFTER = timedelta(days=1)


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
    words = {w: p for p in config.posts for w in (p.name, *p.aliases)}
    near = [words[w] for w in difflib.get_close_matches(text, list(words), n=3, cutoff=0.3)]
    if near:
        hint = "、".join(dict.fromkeys(p.name for p in near))
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
        self, session: Session, config: Config, item: Item, exclude: Sequence[int] = ()
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
        self, session: Session, config: Config, item: Item, owner: people_store.Person, evidence: int = 0
    ) -> Card:
        assert item.id is not None
        return Card(
            title=f"带教记录 #{item.id} 请确认",
            subtitle=item.title,
            source=self.source,
            facts=tuple(self.facts(session, config, item)),
            description=self.description(session, item),
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
            if change is not None and change.source == "带教":
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
    item = Item(
        id=item_id,
        kind=STEP_KIND.name,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=trainee.branch_id,
        title=title,
        created_at=ctx.now,
    )
    items.submit(ctx, item, sender_person(member))
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
    if before == new:
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
            lines.append(
                f"{SYMBOLS.get(lvl, '')} {skill} {lvl} {config.label(lvl)} · {local_date(ctx, since)}"
                + (f" · 师傅 {coach_name}" if coach_name else "")
                + gap
            )
    if with_history and changes:
        lines.append("变更记录（最近的在前）：")
        for c in changes[:10]:
            by = person(ctx.session, c.by_id).name if c.by_id and person(ctx.session, c.by_id) else "导入"
            lines.append(
                f"{local_date(ctx, c.at)} {c.skill} {c.from_level} → {c.to_level} {c.source} · {by}"
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


def coverage(config: SkillsConfig, rows: list[store.Row]) -> list[Coverage]:
    floor = rank(config.iluo.coverage_min_level)
    return [
        Coverage(
            post,
            [r.name for r in rows if rank(r.levels.get(post.name, "0")) >= floor],
            [r.name for r in rows if r.levels.get(post.name) == SkillLevel.O],
        )
        for post in config.posts
    ]


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


def matrix_image(config: SkillsConfig, title: str, rows: list[store.Row]) -> bytes:
    cov = coverage(config, rows)
    below = []
    for r in rows:
        target = target_ranks(config, r)
        below.append(
            [
                target is not None and rank(r.levels.get(p.name, "0")) < target.get(p.name, 0)
                for p in config.posts
            ]
        )
    return charts.iluo_matrix(
        charts.Matrix(
            title=title,
            people=[r.name for r in rows],
            posts=[p.name.removesuffix("岗") for p in config.posts],
            levels=[[rank(r.levels.get(p.name, "0")) for p in config.posts] for r in rows],
            below_target=below,
            coverage=[f"{len(c.qualified)}/{c.post.ideal_qualified}" for c in cov],
            short=[len(c.qualified) < c.post.ideal_qualified for c in cov],
        )
    )


def matrix_text(config: SkillsConfig, title: str, rows: list[store.Row]) -> str:
    """The compact table for chat: one line per person with a symbol per post, then coverage."""
    cov = coverage(config, rows)
    heads = " ".join(p.aliases[0][:2] if p.aliases else p.name[:2] for p in config.posts)
    lines = [f"{title}（○未培训 ◔I ◑L ◕U ●O）", f"{'':4}{heads}"]
    for r in rows:
        lines.append(
            f"{r.name:<4}" + "  ".join(SYMBOLS.get(r.levels.get(p.name, "0"), "○") for p in config.posts)
        )
    short = [
        f"{c.post.name} {len(c.qualified)}/{c.post.ideal_qualified}"
        for c in cov
        if len(c.qualified) < c.post.ideal_qualified
    ]
    lines.append("覆盖不足：" + ("、".join(short) if short else "无"))
    return "\n".join(lines)


def gaps_text(config: SkillsConfig, title: str, rows: list[store.Row]) -> str:
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


def group_for(ctx: Context, member: Sender, word: str) -> tuple[str, list[store.Row]] | str | None:
    """The team or branch a word names and the sender may see, or a refusal, or None (not a group)."""
    if word in ("班组", "本班组", "我的班组"):
        if member.team_id is None:
            return "你还没有登记班组。"
        word = member.team
    if word in ("支部", "本支部"):
        if not member.has(Role.SECRETARY, Role.COMMITTEE):
            return "查看支部的技能矩阵需要支部书记或党总支。"
        return f"{member.branch}", store.matrix(ctx.session, branch_id=member.branch_id)
    team = store.team_id(ctx.session, word)
    if team is None:
        return None
    rows = store.matrix(ctx.session, team_id=team)
    if member.has(Role.COMMITTEE):
        return word, rows
    if member.has(Role.TEAM_LEADER) and member.team_id == team:
        return word, rows
    if member.has(Role.SECRETARY) and member.branch_id is not None:
        mine = store.matrix(ctx.session, team_id=team, branch_id=member.branch_id)
        if mine:
            return word, mine
    return f"查看{word}的技能矩阵需要是该班组的班组长，或其支部书记。"


def branch_people(ctx: Context, branch_id: int | None) -> list[store.Row]:
    return store.matrix(ctx.session, branch_id=branch_id) if branch_id is not None else []


@router.command("技能", code="skills", aliases=("技能矩阵", "多能工"))
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
            rows, title = store.matrix(ctx.session, team_id=member.team_id), member.team
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
            picture = matrix_image(config, heading, rows)
        except charts.ChartError as problem:
            return [Text(matrix_text(config, heading, rows)), Text(str(problem))]
        return [Text(matrix_text(config, heading, rows)), Image(f"{heading}.png", picture)]
    try:
        who = parse_member(word, ctx)
    except FieldError as problem:
        teams = "、".join(store.team_names(ctx.session)[:3])
        return f"{problem}（可写成员姓名，或班组名如 {teams}，或「缺口」）"
    return member_row(ctx, who, with_history=True)


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
    waiting = item_store.waiting_for(ctx.session, ctx.member.id, 5)
    mine = [x for x in waiting.items if x.kind == STEP_KIND.name]
    if mine:
        lines.append(
            "待确认的带教：" + "；".join(f"#{x.id} {x.title}" for x in mine) + "（回复「确认 #编号」）"
        )
    return "\n".join(lines)


# -- jobs -------------------------------------------------------------------------------------------


@job("training_reminders")
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


@job("skill_gaps")
def skill_gaps(ctx: JobContext) -> str:
    """Weekly: each team leader gets their team's coverage gaps."""
    config = skills_of(ctx.config)
    told = 0
    for leader in people_store.with_role(ctx.session, Role.TEAM_LEADER):
        if leader.team_id is None:
            continue
        rows = store.matrix(ctx.session, team_id=leader.team_id)
        team = rows[0].team if rows else ""
        ctx.send(leader.userid, gaps_text(config, team, rows) + "\n发送「技能 班组」查看矩阵图。")
        told += 1
    return f"已向 {told} 位班组长发送本班组技能缺口。" if told else "没有登记班组的班组长，没有发送。"


# -- the workbook ---------------------------------------------------------------------------------


@workbook_sheet(60)
def matrix_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """多能工训练表: everyone (of the branch) × posts with symbols, then each post's coverage."""
    skills_config = SkillsConfig.of(config)
    rows = store.matrix(session, branch_id=scope.branch_id)
    posts = skills_config.posts
    body: list[list[Any]] = []
    for r in rows:
        target = target_ranks(skills_config, r) or {}
        cells = []
        for p in posts:
            held = r.levels.get(p.name, "0")
            below = " ↓" if rank(held) < target.get(p.name, 0) else ""  # under target in the own 工段
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


def import_levels(session: Session, config: Config, text: str, actor: str = "cli") -> ImportReport:
    """Import `userid,skill,level` rows, skills named by post name or alias."""
    return import_skills(session, text, SkillsConfig.of(config).skill, actor=actor)


@practice_command("skills", "import", help="import skill levels from CSV", arguments=((("file",), {}),))
def skills_import(args: argparse.Namespace, config: Config) -> int:
    return import_csv(args, config, lambda session, text: import_levels(session, config, text))


@demo_file("skills.csv")
def demo_levels(session: Session, config: Config, text: str) -> ImportReport:
    """The demo cast's levels, in local mode."""
    return import_levels(session, config, text, actor="local-mode")
