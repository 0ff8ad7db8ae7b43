"""书记项目 from topic to acceptance: the committee sets topics (出题), branch secretaries take them
(选题) and lead a team that answers them (项目, 进展, 完成), and the committee accepts the outcome
(结题 → 验收 通过 / 退回), which books the project's points to the team.

Topics, projects and closings are items, numbered in the one `#N` space. A closing is decided through
the generic approvals (`handlers/approvals.py`) by the kind registered here; a project's state is read
from its closings, so 退回 (or voiding an accepted closing) reopens it. Accepted projects are also a
component of the quarterly 党建考评 (`handlers/assessment.py`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Sender, tone
from bot.forms import Field, FieldError, Form, as_number, half_width, parse_date
from bot.replies import Markdown
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers import items
from handlers.approvals import item_numbers, split_number
from handlers.assessment import assessment_component
from handlers.export import Scope, Sheet, workbook_sheet
from handlers.items import ItemKind
from handlers.ledger import Booked, book, fmt, short, x100
from handlers.people import Person, find_person, person, sender_person
from handlers.periods import Period
from handlers.points import new_item, parse_description
from handlers.points_config import PointsConfig
from handlers.projects_config import ProjectsConfig
from storage import people
from storage import projects as store
from storage.items import Item
from storage.projects import Closing, ClosingShare, Milestone, Progress, Project, Topic
from storage.queries import insert_now, insert_rows
from storage.vocabulary import ItemState, Role

router = Router("projects")
EVIDENCE_WINDOW = timedelta(minutes=10)
LEADER, MEMBER = "第一责任人", "成员"


# -- the kinds --------------------------------------------------------------------------------------


class RecordKind(ItemKind):
    """A numbered record that nobody decides: a topic or a project."""

    decider_roles = frozenset()
    takes_evidence = False

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        return f"#{item.id} 是{self.name}，不需要审核，也不能撤销。发送「项目 #{item.id}」或「课题」查看。"


class TopicKind(RecordKind):
    name = "课题"


class ProjectKind(RecordKind):
    name = "书记项目"


class ClosingKind(ItemKind):
    """结题: the outcome of a project, accepted (验收) by the committee; pays the whole team."""

    name = "结题"
    noun = "验收"
    source = "先锋 · 书记项目验收"
    approve_label = "验收通过"
    reject_label = "退回"
    decider_roles = frozenset({Role.COMMITTEE})

    def approver_roles(self, config: Config) -> list[str]:
        return [Role.COMMITTEE]

    def beneficiaries(self, session: Session, item: Item) -> list[int]:
        return [s.member_id for s in store.shares(session, item.id or 0)] or super().beneficiaries(
            session, item
        )

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        if member.id in self.beneficiaries(session, item):
            return f"#{item.id} 是你所在项目组的结题，不能由你验收，已交给党总支其他委员。"
        if member.has(Role.COMMITTEE):
            return None
        return f"#{item.id} 是书记项目结题，只能由党总支验收。"

    def value(self, session: Session, item: Item) -> str:
        return f"{fmt(sum(s.share_x100 for s in store.shares(session, item.id or 0)))} 分"

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        closing = session.get(Closing, item.id)
        if closing is None:
            return []
        project = session.get(Project, closing.project_id)
        lines = [("项目", f"#{closing.project_id}"), ("成果", short(closing.outcome, 60))]
        if project is not None:
            done = [m for m in store.milestones(session, project.id) if m.done_at is not None]
            lines.append(("里程碑", f"完成 {len(done)}/{len(store.milestones(session, project.id))}"))
        for s in store.shares(session, item.id or 0):
            who = person(session, s.member_id)
            lines.append((who.name if who else "?", f"{s.role} {fmt(s.share_x100)} 分"))
        return lines

    def description(self, session: Session, item: Item) -> str:
        closing = session.get(Closing, item.id)
        return f"{closing.outcome}\n{closing.description}".strip() if closing else ""

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        config = ProjectsConfig.of(ctx.config)
        points = PointsConfig.of(ctx.config)
        category = points.category_of(config.indicator) if config.indicator else None
        closing = ctx.session.get(Closing, item.id)
        note = short(closing.outcome, 60) if closing else ""
        booked = []
        for s in store.shares(ctx.session, item.id or 0):
            who = person(ctx.session, s.member_id)
            if who is not None and s.share_x100:
                booked.append(
                    book(
                        ctx.session,
                        who,
                        s.share_x100,
                        category=category.code if category else "A",
                        indicator=config.indicator or "",
                        day=ctx.now.date(),
                        at=ctx.now,
                        item_id=item.id,
                        approver_id=approver.id,
                        note=note,
                    )
                )
        return booked


TOPIC, PROJECT, CLOSING = TopicKind().register(), ProjectKind().register(), ClosingKind().register()


# -- shared look-ups --------------------------------------------------------------------------------


def state_of(session: Session, project_id: int) -> tuple[str, Item | None]:
    """进行中 / 待验收 / 已验收, with the closing that decides it."""
    for c in store.closings(session, project_id):
        if c.status == ItemState.PENDING:
            return "待验收", c
        if c.status == ItemState.APPROVED:
            return "已验收", c
    return "进行中", None


def project_or_refusal(session: Session, text: str, usage: str) -> tuple[Project | None, str, str]:
    """(the project named by the first `#N` of `text`, the rest of the text, a refusal)."""
    number, rest = split_number(text)
    if number is None:
        return None, rest, f"请写项目编号，例：{usage}。发送「课题」查看课题和项目。"
    found = session.get(Project, number)
    if found is None:
        topic = session.get(Topic, number)
        hint = (
            f"#{number} 是课题，选题后才有项目编号。"
            if topic is not None
            else f"没有编号为 #{number} 的书记项目。"
        )
        return None, rest, hint + "发送「课题」查看课题和项目。"
    return found, rest, ""


def topic_name(session: Session, project: Project) -> str:
    topic = session.get(Topic, project.topic_id)
    return topic.name if topic else "?"


def near_names(session: Session, word: str) -> list[str]:
    return difflib.get_close_matches(word, store.active_names(session), n=3, cutoff=0.5)


def find_member(session: Session, word: str) -> Person:
    """A member by name or userid, with a did-you-mean when nobody matches."""
    try:
        return find_person(session, word)
    except FieldError as exc:
        near = near_names(session, half_width(word).strip())
        if near and "找不到" in str(exc):
            raise FieldError(f"找不到成员「{word.strip()}」。你是不是想写：{'、'.join(near)}？") from None
        raise


# -- 出题 / 课题 ------------------------------------------------------------------------------------


def parse_topic_name(raw: str, _ctx: object) -> str:
    value = raw.strip().strip("《》")
    if len(value) < 4:
        raise FieldError("请写完整的课题名称，如 提高切丝宽度合格率")
    if len(value) > 60:
        raise FieldError("太长了，请控制在 60 字以内")
    return value


_DAYS_LATER = re.compile(r"(\d{1,3})\s*天(?:后|以后)")


def parse_day(raw: str, today: date) -> date:
    """A date as people write it (2026-12-20, 12月20日, 今天) or counted from today (20天后)."""
    m = _DAYS_LATER.fullmatch(half_width(raw).strip())
    if m:
        return today + timedelta(days=int(m.group(1)))
    return parse_date(raw, today)


def parse_deadline(raw: str, ctx: Context) -> date:
    try:
        day = parse_day(raw, ctx.now.date())
    except FieldError:
        raise FieldError("应是日期，如 2026-12-31 或 60天后") from None
    if day < ctx.now.date():
        raise FieldError("截止日期已经过去，请写今天以后的日期")
    return day


def parse_points(raw: str, ctx: Context) -> int:
    value = as_number(raw, ctx)
    if value <= 0 or value > 200:
        raise FieldError("应在 1 到 200 分之间")
    return x100(value)


class TopicForm(Form):
    name: str = Field("名称", example="提高切丝宽度合格率", parse=parse_topic_name, aliases=("课题", "题目"))  # type: ignore[assignment]
    description: str = Field(
        "说明",
        example="切丝宽度合格率 92%，目标 98%；涉及切叶丝机刀门压力与磨刀周期",
        parse=parse_description,  # type: ignore[assignment]
        aliases=("背景", "目标"),
        help="写背景和目标",
    )
    deadline: date | None = Field("截止", example="2026-12-31", parse=parse_deadline, required=False)  # type: ignore[assignment]
    points: int | None = Field(
        "积分",
        example="20",
        parse=parse_points,
        required=False,  # type: ignore[assignment]
        help="验收后项目组分得的积分，不写按默认",
    )


@router.command("出题", code="topic_new", aliases=("发布课题",), roles={Role.COMMITTEE}, form=TopicForm)
def set_topic(ctx: Context, member: Sender, form: TopicForm) -> str:
    """党总支出题：发布书记项目课题。
    各支部书记收到通知后可以「选题」；截止和积分可以不写。"""
    config = ProjectsConfig.of(ctx.config)
    points_x100 = form.points if form.points is not None else x100(config.points)
    item = new_item(ctx, TOPIC, None, member.id, None, form.name, decided=True)  # type: ignore[arg-type]
    insert_now(
        ctx.session,
        Topic(
            id=item.id,
            name=form.name,
            description=form.description,
            deadline=form.deadline,
            points_x100=points_x100,
        ),
    )
    deadline = f"，截止 {form.deadline:%Y-%m-%d}" if form.deadline else ""
    notice = (
        f"党总支发布书记项目课题 #{item.id}《{form.name}》{deadline}，验收积分 {fmt(points_x100)} 分。\n"
        f"{form.description}\n支部书记回复「选题 #{item.id}」领题。"
    )
    secretaries = people.with_role(ctx.session, Role.SECRETARY)
    for s in secretaries:
        ctx.send(s.userid, notice)
    md = f"### 书记项目课题 #{item.id}\n**{form.name}**{deadline}\n> {form.description}\n" + tone(
        f"支部书记回复「选题 #{item.id}」领题", "comment"
    )
    for group in config.groups:
        ctx.broadcast(group, Markdown(md))
    told = f"已通知 {len(secretaries)} 位支部书记" + (
        f"和{'、'.join(config.groups)}" if config.groups else ""
    )
    return f"已发布课题 #{item.id}《{form.name}》{deadline}，{fmt(points_x100)} 分。{told}。"


@router.command("课题", code="topics", aliases=("书记项目", "课题列表"), reads=True)
def list_topics(ctx: Context, member: Sender) -> str:
    """开放的书记项目课题和选题的支部。"""
    topics = store.open_topics(ctx.session, ctx.now.date())
    if not topics:
        return "目前没有开放的书记项目课题。"
    lines = [f"开放的书记项目课题 {len(topics)} 个："]
    for t in topics:
        deadline = f" 截止 {t.deadline:%m-%d}" if t.deadline else ""
        taken = store.projects_of_topic(ctx.session, t.id)
        who = "；".join(
            f"{x.branch} {x.leader} 项目 #{x.project_id}" + ("（已验收）" if x.accepted else "")
            for x in taken
        )
        lines.append(f"#{t.id}《{t.name}》{fmt(t.points_x100)} 分{deadline} — " + (who or "尚未有支部选题"))
    if member.has(Role.SECRETARY):
        lines.append("回复「选题 #编号」领题。")
    return "\n".join(lines)


# -- 选题 -------------------------------------------------------------------------------------------


@router.command("选题", code="topic_take", aliases=("领题", "揭榜"), roles={Role.SECRETARY})
def take_topic(ctx: Context, member: Sender, args: str) -> str:
    """领课题，成为项目第一责任人：选题 #3。"""
    numbers = item_numbers(args)
    if len(numbers) != 1:
        return "请写一个课题编号，例：选题 #3。发送「课题」查看开放的课题。"
    topic = ctx.session.get(Topic, numbers[0])
    if topic is None:
        return f"没有编号为 #{numbers[0]} 的课题。发送「课题」查看开放的课题。"
    if topic.deadline is not None and topic.deadline < ctx.now.date():
        return f"课题 #{topic.id} 已于 {topic.deadline:%Y-%m-%d} 截止，不能再选。"
    if member.branch_id is None:
        return "你还没有登记所在支部，不能选题。请联系管理员。"
    taken = store.projects_of_topic(ctx.session, topic.id)
    mine = [x for x in taken if x.branch == member.branch]
    if mine:
        return f"{member.branch}已经选了课题 #{topic.id}，项目是 #{mine[0].project_id}，不能重复选题。"
    if taken and not ProjectsConfig.of(ctx.config).several_branches:
        return (
            f"课题 #{topic.id} 已由{taken[0].branch}（{taken[0].leader}）选题，一个课题只能由一个支部承担。"
        )
    item = new_item(ctx, PROJECT, None, member.id, member.branch_id, topic.name, decided=True)  # type: ignore[arg-type]
    insert_now(
        ctx.session, Project(id=item.id, topic_id=topic.id, branch_id=member.branch_id, leader_id=member.id)
    )
    return (
        f"已选题：书记项目 #{item.id}《{topic.name}》，{member.branch}，第一责任人 {member.name}。\n"
        f"下一步发送：\n项目 #{item.id}\n成员：王芳、赵磊\n"
        f"里程碑：{(ctx.now + timedelta(days=20)):%Y-%m-%d} 完成现状测量"
    )


# -- 项目: show, or set members and milestones ------------------------------------------------------

_LINE = re.compile(r"^\s*(成员|组员|小组成员|里程碑|节点)\s*[:：]\s*(.*)$")
PROJECT_USAGE = "项目 #5\n成员：王芳、赵磊\n里程碑：2026-12-20 完成切丝宽度测量"


def days_word(days: int) -> str:
    if days > 0:
        return f"还有 {days} 天"
    if days == 0:
        return "今天到期"
    return f"已逾期 {-days} 天"


def show_project(ctx: Context, project: Project) -> str:
    session, today = ctx.session, ctx.now.date()
    topic = session.get(Topic, project.topic_id)
    state, closing = state_of(session, project.id)
    crew = store.team(session, project.id)
    lines = [f"书记项目 #{project.id}《{topic.name if topic else '?'}》（课题 #{project.topic_id}）· {state}"]
    if closing is not None:
        lines[0] += f" #{closing.id}"
    leader = next((t.name for t in crew if t.leader), "?")
    lines.append(f"{people.branch_name(session, project.branch_id) or '未登记支部'} · 第一责任人 {leader}")
    others = [t.name for t in crew if not t.leader]
    lines.append("成员：" + ("、".join(others) if others else "（未设置）"))
    if topic is not None:
        lines.append(f"目标：{short(topic.description, 80)}")
        if topic.deadline:
            left = f"（{days_word((topic.deadline - today).days)}）" if state == "进行中" else ""
            lines.append(f"截止：{topic.deadline:%Y-%m-%d}{left}")
    steps = store.milestones(session, project.id)
    if steps:
        lines.append("里程碑：")
        for m in steps:
            if m.done_at is not None:
                mark = f"已完成 {m.done_at.astimezone(ctx.config.tz):%m-%d}"
            else:
                mark = "未完成，" + days_word((m.due - today).days)
            lines.append(f"{m.seq}. {m.due:%Y-%m-%d} {m.title} — {mark}")
    else:
        lines.append("里程碑：（未设置）")
    entries = store.progress(session, project.id)
    if entries:
        lines.append("最近进展：")
        for p, name, photos in entries:
            pics = f"（图 {photos}）" if photos else ""
            lines.append(f"{p.at.astimezone(ctx.config.tz):%m-%d} {name}：{short(p.text, 60)}{pics}")
    if state == "进行中" and ctx.member is not None and ctx.member.id == project.leader_id:
        if not others or not steps:
            lines.append(f"设置成员和里程碑：\n{PROJECT_USAGE.replace('#5', f'#{project.id}')}")
        else:
            lines.append(f"修改：发送「项目 #{project.id}」，另起一行写「成员：…」或「里程碑：日期 内容」。")
    return "\n".join(lines)


def parse_milestone(value: str, ctx: Context, deadline: date | None) -> tuple[date, str]:
    head, _, title = half_width(value).strip().partition(" ")
    try:
        day = parse_day(head, ctx.now.date())
    except FieldError:
        raise FieldError(
            f"里程碑「{value.strip()}」要先写日期再写内容，例：2026-12-20 完成切丝宽度测量"
        ) from None
    title = title.strip()
    if len(title) < 2:
        raise FieldError(f"里程碑「{value.strip()}」缺少内容，例：2026-12-20 完成切丝宽度测量")
    if day < ctx.now.date():
        raise FieldError(f"里程碑「{title}」的日期 {day:%Y-%m-%d} 已经过去，请写今天以后的日期")
    if deadline is not None and day > deadline:
        raise FieldError(f"里程碑「{title}」的日期 {day:%Y-%m-%d} 晚于课题截止日期 {deadline:%Y-%m-%d}")
    return day, short(title, 60)


def parse_team(value: str, ctx: Context) -> list[Person]:
    words = [w for w in re.split(r"[\s,，、;；]+", half_width(value)) if w]
    if not words:
        raise FieldError("成员不能为空，例：成员：王芳、赵磊")
    return list({p.id: p for p in (find_member(ctx.session, w) for w in words)}.values())


@router.command("项目", code="project", aliases=("项目详情",), reads=True)
def project_command(ctx: Context, member: Sender, args: str) -> str:
    """查看书记项目；第一责任人设置成员和里程碑。
    里程碑可以写多行，例：
    项目 #5
    成员：王芳、赵磊
    里程碑：2026-12-20 完成切丝宽度测量"""
    project, rest, refusal = project_or_refusal(ctx.session, args, "项目 #5")
    if project is None:
        if not args.strip():
            mine = store.projects_led_or_joined(ctx.session, member.id)
            if mine:
                return show_project(ctx, ctx.session.get(Project, mine[0]))  # type: ignore[arg-type]
        return refusal
    lines = [line for line in rest.splitlines() if line.strip()]
    if not lines:
        return show_project(ctx, project)
    if member.id != project.leader_id:
        return f"只有项目 #{project.id} 的第一责任人可以设置成员和里程碑。"
    state, _ = state_of(ctx.session, project.id)
    if state != "进行中":
        return f"项目 #{project.id} {state}，不能再修改成员和里程碑。"
    topic = ctx.session.get(Topic, project.topic_id)
    team: list[Person] | None = None
    steps: list[tuple[date, str]] = []
    problems = []
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            problems.append(f"看不懂「{short(line.strip(), 20)}」")
            continue
        try:
            if m.group(1) in ("里程碑", "节点"):
                steps.append(parse_milestone(m.group(2), ctx, topic.deadline if topic else None))
            else:
                team = parse_team(m.group(2), ctx)
        except FieldError as exc:
            problems.append(str(exc))
    if problems:
        return (
            "没有保存：" + "；".join(problems) + f"。写法：\n{PROJECT_USAGE.replace('#5', f'#{project.id}')}"
        )
    said = []
    if team is not None:
        others = [p for p in team if p.id != project.leader_id]
        store.set_members(ctx.session, project.id, [p.id for p in others])
        said.append("成员 " + ("、".join(p.name for p in others) or "（无）"))
        for p in others:
            ctx.send(
                p.userid,
                f"{member.name}把你加入了书记项目 #{project.id}《{topic_name(ctx.session, project)}》。",
            )
    if steps:
        store.set_milestones(ctx.session, project.id, steps)
        said.append(f"里程碑 {len(steps)} 个")
    return f"已更新项目 #{project.id}：{'，'.join(said)}。\n\n" + show_project(ctx, project)


# -- 进展 / 完成 ------------------------------------------------------------------------------------


def on_team(session: Session, project: Project, member_id: int) -> bool:
    return any(t.id == member_id for t in store.team(session, project.id))


@router.command("进展", code="progress", aliases=("项目进展", "答题"))
def report_progress(ctx: Context, member: Sender, args: str) -> str:
    """记录项目进展：进展 #5 内容。
    项目组成员（含第一责任人）可以记录；10 分钟内发图片会附到这条进展。"""
    project, text, refusal = project_or_refusal(ctx.session, args, "进展 #5 完成刀门压力标定")
    if project is None:
        return refusal
    if not on_team(ctx.session, project, member.id):
        return (
            f"你不是项目 #{project.id} 的成员，不能记录进展。"
            f"请第一责任人用「项目 #{project.id}」把你加为成员。"
        )
    if state_of(ctx.session, project.id)[0] == "已验收":
        return f"项目 #{project.id} 已验收，不能再记录进展。"
    text = text.strip()
    if len(text) < 4:
        return f"请写清进展内容，例：进展 #{project.id} 完成3台切丝机刀门压力标定，波动降到±0.1MPa。"
    ctx.session.add(Progress(project_id=project.id, member_id=member.id, at=ctx.now, text=text[:1000]))
    ctx.session.flush()
    leader = person(ctx.session, project.leader_id)
    if leader is not None and leader.id != member.id:
        ctx.send(leader.userid, f"{member.name}记录了项目 #{project.id} 的进展：{short(text, 80)}")
    return f"已记录项目 #{project.id} 的进展。10 分钟内发送图片，会附到这条进展。"


@router.on_media
def attach_progress_photo(ctx: Context) -> str | None:
    """A photo or file sent within 10 minutes of a progress entry is filed under it."""
    assert ctx.member is not None
    entry = store.latest_progress_since(ctx.session, ctx.member.id, ctx.now - EVIDENCE_WINDOW)
    if entry is None:
        return None
    ref = f"progress:{entry}"
    ctx.fetch_media(ctx.message.media_id, ref=ref)
    row = ctx.session.get(Progress, entry)
    return f"已附到项目 #{row.project_id if row else '?'} 的进展。"


@router.command("完成", code="milestone_done", aliases=("完成里程碑",))
def milestone_done(ctx: Context, member: Sender, args: str) -> str:
    """标记里程碑完成：完成 #5 1。"""
    project, rest, refusal = project_or_refusal(ctx.session, args, "完成 #5 1")
    if project is None:
        return refusal
    if member.id != project.leader_id:
        return f"只有项目 #{project.id} 的第一责任人可以标记里程碑完成。"
    if state_of(ctx.session, project.id)[0] != "进行中":
        return f"项目 #{project.id} {state_of(ctx.session, project.id)[0]}，不能再修改里程碑。"
    seq = half_width(rest).strip().lstrip("第").rstrip("个")
    steps = store.milestones(ctx.session, project.id)
    if not steps:
        return f"项目 #{project.id} 还没有里程碑。先发送：\n{PROJECT_USAGE.replace('#5', f'#{project.id}')}"
    found: Milestone | None = next((m for m in steps if seq.isdigit() and m.seq == int(seq)), None)
    if found is None:
        listed = "、".join(f"{m.seq} {m.title}" for m in steps)
        return f"请写里程碑序号，例：完成 #{project.id} 1。项目 #{project.id} 的里程碑：{listed}"
    if found.done_at is not None:
        return (
            f"里程碑 {found.seq}「{found.title}」已于 {found.done_at.astimezone(ctx.config.tz):%m-%d} 完成。"
        )
    found.done_at, found.done_by = ctx.now, member.id
    ctx.session.flush()
    left = sum(1 for m in steps if m.done_at is None)
    for t in store.team(ctx.session, project.id):
        if t.id != member.id:
            ctx.send(t.userid, f"项目 #{project.id} 里程碑 {found.seq}「{found.title}」已完成。")
    tail = (
        f"还有 {left} 个未完成。" if left else f"里程碑已全部完成，可以发送「结题 #{project.id}」申请验收。"
    )
    return f"已标记项目 #{project.id} 里程碑 {found.seq}「{found.title}」完成。{tail}"


# -- 结题 -------------------------------------------------------------------------------------------


def parse_project_number(raw: str, _ctx: object) -> int:
    numbers = item_numbers(raw)
    if len(numbers) != 1:
        raise FieldError("应是一个项目编号")
    return numbers[0]


def parse_outcome(raw: str, _ctx: object) -> str:
    value = raw.strip()
    if len(value) < 4:
        raise FieldError("请写成果与目标的对比")
    return value[:500]


def parse_split(raw: str, ctx: Context) -> dict[int, int]:
    """分配：张伟 8、王芳 6、赵磊 6 → member id → points x100."""
    out: dict[int, int] = {}
    for part in re.split(r"[,，、;；\n]+", half_width(raw)):
        m = re.fullmatch(r"\s*(\S+?)\s*[:：]?\s*(-?\d+(?:\.\d+)?)\s*分?\s*", part)
        if not part.strip():
            continue
        if m is None:
            raise FieldError(f"看不懂「{part.strip()}」，请写成「姓名 分值」")
        who = find_member(ctx.session, m.group(1))
        out[who.id] = out.get(who.id, 0) + x100(float(m.group(2)))
    return out


class ClosingForm(Form):
    number: int = Field("编号", example="#5", parse=parse_project_number, positional=True)  # type: ignore[assignment]
    outcome: str = Field(
        "成果",
        example="切丝宽度合格率 92%→98%",
        parse=parse_outcome,  # type: ignore[assignment]
        aliases=("结果",),
        help="写成果与目标的对比",
    )
    description: str | None = Field(
        "说明", example="刀门压力标定纳入周保养", required=False, aliases=("备注",)
    )  # type: ignore[assignment]
    split: dict[int, int] | None = Field(
        "分配",
        example="张伟 8、王芳 6、赵磊 6",
        parse=parse_split,  # type: ignore[assignment]
        required=False,
        help="按成员提议分配积分时填写",
    )


def split_points(
    total_x100: int, leader: int, members: Sequence[int], rule: str, leader_share: float
) -> dict[int, int]:
    """The topic's points among the team: equal, or the leader's share and the rest equally. Whole
    hundredths; what does not divide goes to the leader, so the parts add up to the total."""
    crew = [leader, *members]
    if rule == "leader_share" and members:
        lead = round(total_x100 * leader_share)
        each, extra = divmod(total_x100 - lead, len(members))
        return {leader: lead + extra, **{m: each for m in members}}
    each, extra = divmod(total_x100, len(crew))
    return {m: each + (extra if m == leader else 0) for m in crew}


@router.command("结题", code="project_close", aliases=("申请结题", "项目结题"), form=ClosingForm)
def close_project(ctx: Context, member: Sender, form: ClosingForm) -> str:
    """申请项目验收：结题 #5 成果：…。
    第一责任人申请，党总支验收通过后积分按配置分给项目组。"""
    config = ProjectsConfig.of(ctx.config)
    project = ctx.session.get(Project, form.number)
    if project is None:
        return f"没有编号为 #{form.number} 的书记项目。发送「课题」查看课题和项目。"
    if member.id != project.leader_id:
        return f"只有项目 #{project.id} 的第一责任人可以申请结题。"
    state, closing = state_of(ctx.session, project.id)
    if closing is not None:
        return f"项目 #{project.id} {state}（#{closing.id}），不能重复申请结题。"
    topic = ctx.session.get(Topic, project.topic_id)
    assert topic is not None
    crew = store.team(ctx.session, project.id)
    members = [t.id for t in crew if not t.leader]
    if config.split == "proposed":
        if not form.split:
            example = "、".join(f"{t.name} {fmt(topic.points_x100 // len(crew))}" for t in crew)
            return (
                f"本车间按第一责任人提议分配积分，请加一行「分配：{example}」"
                f"（合计 {fmt(topic.points_x100)} 分）。"
            )
        strangers = [i for i in form.split if i not in {t.id for t in crew}]
        if strangers:
            names = "、".join(p.name for p in (person(ctx.session, i) for i in strangers) if p)
            return f"{names}不是项目 #{project.id} 的成员，不能参与分配。"
        if sum(form.split.values()) != topic.points_x100 or any(v < 0 for v in form.split.values()):
            return (
                f"分配合计 {fmt(sum(form.split.values()))} 分，应等于课题积分 {fmt(topic.points_x100)} 分，"
                "且每人不少于 0 分。"
            )
        parts = {t.id: form.split.get(t.id, 0) for t in crew}
    else:
        if form.split:
            rule = (
                "平均分配"
                if config.split == "equal"
                else f"第一责任人占 {round(config.leader_share * 100)}%、其余成员平分"
            )
            return f"本车间的积分按配置{rule}，不需要写「分配」。请去掉这一行后重新发送。"
        parts = split_points(topic.points_x100, project.leader_id, members, config.split, config.leader_share)
    done = sum(1 for m in store.milestones(ctx.session, project.id) if m.done_at is not None)
    bonus = x100(config.milestone_points) * done
    item = new_item(ctx, CLOSING, project.leader_id, member.id, project.branch_id, f"《{topic.name}》结题")
    insert_now(
        ctx.session,
        Closing(id=item.id, project_id=project.id, outcome=form.outcome, description=form.description or ""),
    )
    insert_rows(
        ctx.session,
        ClosingShare,
        [
            {
                "closing_id": item.id,
                "member_id": t.id,
                "role": LEADER if t.leader else MEMBER,
                "share_x100": parts.get(t.id, 0) + bonus,
            }
            for t in crew
        ],
    )
    approvers = items.submit(ctx, item, sender_person(member))
    split = "、".join(f"{t.name} {fmt(parts.get(t.id, 0) + bonus)}" for t in crew)
    milestone_note = f"（含里程碑 {done} 个 × {fmt(x100(config.milestone_points))} 分）" if bonus else ""
    return (
        f"已提交结题 #{item.id}（项目 #{project.id}）：{form.outcome}。"
        f"验收通过后积分：{split}{milestone_note}。"
        f"{items.waiting_for(approvers)}\n10 分钟内发送图片，会作为成果材料附到 #{item.id}。"
    )


# -- 我的 -------------------------------------------------------------------------------------------


@router.profile_section
def my_projects(ctx: Context) -> str:
    """The projects I lead or belong to, with the next milestone of each."""
    assert ctx.member is not None
    ids = store.projects_led_or_joined(ctx.session, ctx.member.id)
    if not ids:
        return ""
    lines = ["—— 书记项目"]
    for pid in ids[:3]:
        project = ctx.session.get(Project, pid)
        if project is None:
            continue
        state, _ = state_of(ctx.session, pid)
        role = LEADER if project.leader_id == ctx.member.id else MEMBER
        nxt = next((m for m in store.milestones(ctx.session, pid) if m.done_at is None), None)
        step = f"，下个里程碑 {nxt.due:%m-%d} {short(nxt.title, 14)}" if nxt and state == "进行中" else ""
        lines.append(f"#{pid}《{short(topic_name(ctx.session, project), 16)}》{role} · {state}{step}")
    return "\n".join(lines)


# -- reminders --------------------------------------------------------------------------------------


@job("project_reminders")
def project_reminders(ctx: JobContext) -> str:
    """Milestones a few days ahead and on the day to the team; overdue ones to the leader daily and to
    the committee's groups weekly; projects without progress for a while to their leader."""
    config = ProjectsConfig.of(ctx.config).reminders
    today = ctx.now.date()
    groups = ctx.arguments.get("groups", [])
    groups = [groups] if isinstance(groups, str) else list(groups)
    told, overdue = 0, []
    for m in store.milestones_due(ctx.session, today + timedelta(days=config.before_days)):
        days = (m.due - today).days
        project = ctx.session.get(Project, m.project_id)
        if project is None:
            continue
        crew = store.team(ctx.session, m.project_id)
        text = (
            f"书记项目 #{m.project_id}《{m.topic}》里程碑 {m.seq}「{m.title}」"
            f"{days_word(days)}（{m.due:%m-%d}）。"
        )
        if days < 0:
            overdue.append((m, crew))
            targets = [t for t in crew if t.leader]
            text += (
                f"完成后发送「完成 #{m.project_id} {m.seq}」；需要调整请用「项目 #{m.project_id}」改里程碑。"
            )
        elif days in (0, config.before_days):
            targets = crew
        else:
            continue
        for t in targets:
            ctx.send(t.userid, text)
            told += 1
    weekly = today.isoweekday() == config.committee_weekday and overdue
    if weekly:
        lines = ["### 书记项目逾期里程碑"] + [
            f"- #{m.project_id}《{short(m.topic, 16)}》{m.seq}「{short(m.title, 16)}」"
            f"{tone(days_word((m.due - today).days), 'warning')}"
            f"（{next((t.name for t in crew if t.leader), '')}）"
            for m, crew in overdue
        ]
        for group in groups:
            ctx.broadcast(group, Markdown("\n".join(lines)))
    idle = 0
    for pid, topic, at in store.idle_projects(ctx.session):
        days = (today - at.astimezone(ctx.config.tz).date()).days
        if days >= config.idle_days and (days - config.idle_days) % 7 == 0:
            project = ctx.session.get(Project, pid)
            leader = person(ctx.session, project.leader_id) if project else None
            if leader is not None:
                ctx.send(
                    leader.userid,
                    f"书记项目 #{pid}《{topic}》已有 {days} 天没有记录进展，"
                    f"请用「进展 #{pid} 内容」记录近况。",
                )
                idle += 1
    sent = f"已发 {told} 条里程碑提醒、{idle} 条无进展提醒"
    return sent + (
        f"，逾期 {len(overdue)} 个里程碑已发到 {'、'.join(groups)}。" if weekly and groups else "。"
    )


# -- the assessment component and the workbook ------------------------------------------------------


@assessment_component("projects_accepted", "书记项目验收", unit="项")
def projects_accepted(session: Session, config: Config, period: Period) -> dict[int, float]:
    """Projects whose closing the committee accepted in the quarter, per branch."""
    lo, hi = period.bounds(config.tz)
    return {b: float(n) for b, n in store.accepted_per_branch(session, lo, hi).items()}


def _local(at: datetime | None, config: Config) -> str:
    return at.astimezone(config.tz).strftime("%Y-%m-%d") if at else ""


@workbook_sheet(100)
def projects_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """书记项目: every project of the branch (or all), with milestones, last progress and acceptance."""
    states = {"": "进行中", ItemState.PENDING: "待验收", ItemState.APPROVED: "已验收"}
    rows = [
        (
            f"#{r.project_id}",
            f"#{r.topic_id} {r.topic}",
            r.branch,
            r.leader,
            _local(r.taken, config),
            f"{r.done}/{r.milestones}",
            _local(r.last_progress, config),
            states.get(r.state, "进行中"),
            _local(r.decided_at, config) if r.state == ItemState.APPROVED else "",
            r.points_x100 / 100,
        )
        for r in store.project_rows(session, scope.branch_id)
    ]
    header = (
        "项目",
        "课题",
        "支部",
        "第一责任人",
        "选题日期",
        "里程碑完成",
        "最近进展",
        "状态",
        "验收日期",
        "积分",
    )
    return Sheet("书记项目", header, rows)
