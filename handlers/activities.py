"""Activities (主题教育, 宣讲, 我来阅读, 汉服课堂, 青工主题沙龙 …): announced by a secretary (the committee
for workshop-wide ones) with a 4-digit sign-in code, attended by `签到 码`, excused by `请假 #N 理由`,
and reported to the organiser after the end.

An activity is an item `#N` of the kind 活动, booked as decided when it is announced (voiding it with
`撤销 #N 理由` cancels it and reverses the points its sign-ins and its organiser booked). A leave
request is an item of the kind 活动请假, decided by the activity's organiser.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, as_number, half_width, unknown_choice
from bot.replies import Markdown
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers import items
from handlers.activities_config import ActivitiesConfig, ActivityType
from handlers.approvals import split_number
from handlers.assessment import assessment_component
from handlers.export import Scope, Sheet, workbook_sheet
from handlers.items import NUMBER, ItemKind
from handlers.ledger import book, fmt, short
from handlers.people import Person, find_person, person, sender_person
from handlers.periods import Period, period_of
from handlers.points_config import PointsConfig
from storage import activities as store
from storage import items as item_store
from storage import people
from storage.activities import ACTIVITY_KIND, BRANCH, LEAVE_KIND, TEAM, WORKSHOP, Activity, ActivityLeave
from storage.items import Item
from storage.queries import insert_now
from storage.vocabulary import ItemState, Role

router = Router("activities")
ORGANISERS = frozenset({Role.SECRETARY, Role.COMMITTEE})
STALE_REPORT = timedelta(days=1)  # reports for activities closed longer ago are not sent
SCOPE_WORDS = {WORKSHOP: ("车间", "全车间", "党总支", "全体"), BRANCH: ("本支部", "支部", "我的支部")}


# -- the kinds --------------------------------------------------------------------------------------


class ActivityKind(ItemKind):
    """活动: never waits for a decision; its organiser, their branch's secretary or the committee may
    void it (cancel it, reversing the points its sign-ins booked)."""

    name = ACTIVITY_KIND
    noun = "活动"
    source = "先锋 · 活动"
    takes_evidence = False
    decider_roles: ClassVar[frozenset[str]] = ORGANISERS

    def beneficiaries(self, session: Session, item: Item) -> list[int]:
        return []  # attendees are paid by signing in, not by a decision

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        if member.id == item.member_id or member.has(Role.COMMITTEE):
            return None
        if member.has(Role.SECRETARY) and member.branch_id is not None and member.branch_id == item.branch_id:
            return None
        return f"#{item.id} 是别人组织的活动，只能由组织者、其支部书记或党总支处理。"


class LeaveKind(ItemKind):
    """活动请假: asked before the start, decided by the activity's organiser (or the committee)."""

    name = LEAVE_KIND
    noun = "申请"
    source = "先锋 · 活动请假"
    approve_label = "准假"
    reject_label = "不准"
    takes_evidence = False
    decider_roles: ClassVar[frozenset[str]] = ORGANISERS

    def _activity(self, session: Session, item: Item) -> Activity | None:
        leave = session.get(ActivityLeave, item.id)
        return session.get(Activity, leave.activity_id) if leave is not None else None

    def approvers(
        self, session: Session, config: Config, item: Item, paid: Sequence[int] | None = None
    ) -> list[Person]:
        excluded = set(self.beneficiaries(session, item) if paid is None else paid)
        activity = self._activity(session, item)
        organiser = person(session, activity.organiser_id) if activity else None
        if organiser is not None and organiser.id not in excluded:
            return [organiser]
        return [p for p in people.with_role(session, Role.COMMITTEE) if p.id not in excluded]

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        if member.id in self.beneficiaries(session, item):
            return f"#{item.id} 是你自己的请假，不能由你审核。"
        activity = self._activity(session, item)
        if member.has(Role.COMMITTEE) or (activity is not None and member.id == activity.organiser_id):
            return None
        organiser = person(session, activity.organiser_id) if activity else None
        return f"#{item.id} 只能由活动组织者{organiser.name if organiser else ''}或党总支处理。"

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        leave = session.get(ActivityLeave, item.id)
        activity = self._activity(session, item)
        if leave is None or activity is None:
            return []
        return [
            ("活动", f"#{activity.id} {activity.name}"),
            ("时间", f"{activity.starts_at.astimezone(config.tz):%m-%d %H:%M}"),
            ("理由", leave.reason),
        ]


ACTIVITY = ActivityKind().register()
LEAVE = LeaveKind().register()


# -- 活动 -------------------------------------------------------------------------------------------


def parse_show(raw: str, _ctx: Any) -> int:
    m = re.fullmatch(r"#?\s*" + NUMBER, half_width(raw).strip())
    if not m:
        raise FieldError("应写活动编号，如 #12")
    return int(m.group(1))


def parse_name(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 2 or len(value) > 40:
        raise FieldError("请写 2–40 字的活动名称")
    return value


def parse_type(raw: str, ctx: Context) -> ActivityType:
    config = ActivitiesConfig.of(ctx.config)
    text = raw.strip()
    found = config.type(text)
    if found is not None:
        return found
    raise unknown_choice(config.types, text, "类型")


_TIME = re.compile(r"(\d{1,2})[:：点](\d{2})?分?$")
_DAY_WORDS = {"今天": 0, "今晚": 0, "明天": 1, "明晚": 1, "后天": 2}


def parse_when(raw: str, ctx: Context) -> datetime:
    """`2026-12-03 19:30`, `12-03 19:30`, `今天 19:30`, `明天 19:30`, `明晚7:30`, `19:30` (today)."""
    text = half_width(raw).strip()
    m = re.match(r"^(.*?)\s*(\d{1,2})[:：点](\d{2})?分?$", text)
    if not m:
        raise FieldError("应写日期和时刻")
    day_text, hour, minute = m.group(1).strip(), int(m.group(2)), int(m.group(3) or 0)
    today = ctx.now.date()
    day: date
    if not day_text:
        day = today
    elif day_text in _DAY_WORDS:
        day = today + timedelta(days=_DAY_WORDS[day_text])
        if day_text.endswith("晚") and hour < 12:
            hour += 12
    else:
        dm = re.fullmatch(r"(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?", day_text.replace(" ", ""))
        if not dm:
            raise FieldError("日期应写成 2026-12-03、12-03、今天 或 明天")
        try:
            day = date(int(dm.group(1) or today.year), int(dm.group(2)), int(dm.group(3)))
        except ValueError:
            raise FieldError("不是有效的日期") from None
    if hour > 23 or minute > 59:
        raise FieldError("不是有效的时刻")
    at = datetime.combine(day, time(hour, minute), ctx.config.tz)
    if at <= ctx.now:
        raise FieldError("不能早于现在")
    if at > ctx.now + timedelta(days=120):
        raise FieldError("最多提前 120 天发布")
    return at


def parse_duration(raw: str, ctx: Any) -> int:
    text = half_width(raw).strip().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(分钟|分|min|小时|h|个小时)?", text)
    if not m:
        raise FieldError("应写分钟或小时数")
    minutes = float(m.group(1)) * (60 if m.group(2) in ("小时", "h", "个小时") else 1)
    if not 10 <= minutes <= 8 * 60:
        raise FieldError("应在 10 分钟到 8 小时之间")
    return round(minutes)


def parse_points(raw: str, ctx: Any) -> int:
    value = as_number(raw, ctx)
    if not 0 <= value <= 20:
        raise FieldError("应在 0 到 20 分之间")
    return round(value * 100)


class Where:
    """范围, parsed: the workshop, a branch or a team, with its id and name."""

    def __init__(self, scope: str, scope_id: int | None, name: str):
        self.scope, self.scope_id, self.name = scope, scope_id, name


def parse_scope(raw: str, ctx: Context) -> Where:
    text = half_width(raw).strip()
    if text in SCOPE_WORDS[WORKSHOP]:
        return Where(WORKSHOP, None, "全车间")
    member = ctx.member
    if text in SCOPE_WORDS[BRANCH]:
        if member is None or member.branch_id is None:
            raise FieldError("你没有登记所在支部，请写支部或班组的名称")
        return Where(BRANCH, member.branch_id, member.branch)
    branches, teams = store.units(ctx.session)
    if text in branches:
        return Where(BRANCH, branches[text], text)
    if text in teams:
        return Where(TEAM, teams[text], text)
    names = [*SCOPE_WORDS[WORKSHOP][:1], *branches, *teams]
    near = difflib.get_close_matches(text, names, n=3, cutoff=0.3)
    hint = f"你是不是想写：{'、'.join(near)}？" if near else ""
    raise FieldError(f"没有「{text}」这个范围。{hint}可写：车间、本支部、支部名称或班组名称")


class ActivityForm(Form):
    number: int | None = Field(
        "编号", example="#12", parse=parse_show, required=False, positional=True, help="查看一项活动的出勤"
    )  # type: ignore[assignment]
    name: str | None = Field(
        "名称", example="学习贯彻党的二十届四中全会精神", parse=parse_name, required=False, aliases=("主题",)
    )  # type: ignore[assignment]
    type: ActivityType | None = Field(
        "类型",
        example="主题教育",
        parse=parse_type,
        required=False,
        help="主题教育、宣讲、我来阅读、汉服课堂、青工主题沙龙等",
    )  # type: ignore[assignment]
    when: datetime | None = Field(
        "时间", example="明天 19:30", parse=parse_when, required=False, help="如 2026-12-03 19:30、今天 19:30"
    )  # type: ignore[assignment]
    place: str | None = Field("地点", example="车间党员活动室", required=False)  # type: ignore[assignment]
    duration: int | None = Field("时长", example="90分钟", parse=parse_duration, required=False)  # type: ignore[assignment]
    points: int | None = Field("积分", example="1", parse=parse_points, required=False, aliases=("分值",))  # type: ignore[assignment]
    scope: Where | None = Field(
        "范围",
        example="本支部",
        parse=parse_scope,
        required=False,
        help="不写就是本支部；也可写班组名称或 车间",
    )  # type: ignore[assignment]

    def check(self, ctx: Any) -> dict[str, str]:
        if self.number is not None:
            return {}
        for name in ("name", "type", "when", "place"):
            if getattr(self, name) is None:
                return {name: "不能为空"}
        return {}


def _local(at: datetime, config: Config, fmt_: str = "%m-%d %H:%M") -> str:
    return at.astimezone(config.tz).strftime(fmt_)


def new_code(session: Session, now: datetime) -> str:
    """A 4-digit code no activity whose sign-in is still open uses (random, so it cannot be guessed
    from the last one)."""
    taken = store.codes_in_use(session, now)
    free = [f"{n:04d}" for n in range(1000, 10000) if f"{n:04d}" not in taken]
    return free[secrets.randbelow(len(free))]


def _group_for(config: Config, activity: Activity, organiser_branch: str) -> str | None:
    cfg = ActivitiesConfig.of(config)
    if activity.scope == WORKSHOP:
        return cfg.workshop_group
    branch = activity.scope_name if activity.scope == BRANCH else organiser_branch
    return cfg.branch_groups.get(branch)


@router.command("活动", code="activity", aliases=("发布活动",), form=ActivityForm)
def activity(ctx: Context, member: Sender, form: ActivityForm) -> str:
    """发布活动（支部书记；全车间的活动由党总支发布），附 4 位签到码；「活动 #12」查看出勤。

    活动发到范围对应的群，并逐一通知范围内的人。
    """
    if form.number is not None:
        return show(ctx, member, form.number)
    if not member.has(*ORGANISERS):
        return "「活动」仅限支部书记、党总支发布。查看一项活动请写「活动 #编号」。"
    config = ActivitiesConfig.of(ctx.config)
    kind = form.type
    assert kind is not None and form.when is not None and form.name is not None
    where = form.scope or (Where(BRANCH, member.branch_id, member.branch) if member.branch_id else None)
    if where is None:
        return "你没有登记所在支部，请加一行「范围：…」（车间、支部或班组名称）。"
    if where.scope == WORKSHOP and not member.has(Role.COMMITTEE):
        return "全车间的活动由党总支发布；支部书记可以发布本支部或某个班组的活动。"
    if where.scope == BRANCH and where.scope_id != member.branch_id and not member.has(Role.COMMITTEE):
        return f"你只能发布本支部（{member.branch}）的活动，{where.name}的活动请由其支部书记发布。"
    starts = form.when
    ends = starts + timedelta(minutes=form.duration or config.duration_for(kind))
    opens = starts - timedelta(minutes=config.signin_window_minutes)
    closes = ends + timedelta(minutes=config.signin_after_end_minutes)
    points_x100 = form.points if form.points is not None else round(kind.points * 100)
    indicator = config.indicator_for(kind) or ""
    category = PointsConfig.of(ctx.config).category_of(indicator) if indicator else None
    code = new_code(ctx.session, ctx.now)
    item_id = item_store.new_item(
        ctx.session,
        ACTIVITY.name,
        ctx.now,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=where.scope_id if where.scope == BRANCH else member.branch_id,
        title=form.name,
        status=ItemState.APPROVED,
        decided_by=member.id,
    )
    row = Activity(
        id=item_id,
        name=form.name,
        type=kind.name,
        starts_at=starts,
        ends_at=ends,
        opens_at=opens,
        closes_at=closes,
        place=form.place or "",
        points_x100=points_x100,
        organiser_points_x100=round(kind.organiser_points * 100),
        indicator=indicator,
        category=category.code if category else "",
        organiser_id=member.id,
        scope=where.scope,
        scope_id=where.scope_id,
        scope_name=where.name,
        code=code,
    )
    insert_now(ctx.session, row)
    invitees = store.scope_members(ctx.session, where.scope, where.scope_id)
    span = f"{_local(starts, ctx.config)}–{_local(ends, ctx.config, '%H:%M')}"
    window = f"{_local(opens, ctx.config, '%H:%M')}–{_local(closes, ctx.config, '%H:%M')}"
    notice = (
        f"【活动通知】#{item_id} {form.name}（{kind.name}）\n时间：{span}\n地点：{row.place}\n"
        f"签到码：{code}（{window} 发送「签到 {code}」，{fmt(points_x100)} 分）\n"
        f"不能参加请在开始前发送「请假 #{item_id} 理由」。"
    )
    for p in invitees:
        if p.member_id != member.id:
            ctx.send(p.userid, notice)
    group = _group_for(ctx.config, row, member.branch)
    if group:
        ctx.broadcast(
            group,
            Markdown(
                f"**活动通知** #{item_id} {form.name}\n> 类型：{kind.name}\n> 时间：{span}\n"
                f"> 地点：{row.place}\n"
                f"> 范围：{where.name}\n> 签到：{window} 发送「签到 {code}」"
            ),
        )
    posted = f"并发到{group}" if group else ""
    return (
        f"已发布活动 #{item_id}：{form.name}（{kind.name}），{span}，{row.place}，范围 {where.name}。\n"
        f"签到码 {code}，{window} 可签到，每人 {fmt(points_x100)} 分。已通知 {len(invitees)} 人{posted}，"
        f"开始前 {config.reminder_minutes} 分钟会再提醒。"
    )


# -- the report -------------------------------------------------------------------------------------


def attendance(session: Session, activity: Activity) -> dict[str, Any]:
    """Who was invited (the organiser aside), present, excused, absent (and signed in from outside the
    scope), by team."""
    # The organiser runs it: neither expected nor absent.
    invitees = [
        p
        for p in store.scope_members(session, activity.scope, activity.scope_id)
        if p.member_id != activity.organiser_id
    ]
    signed = {a.member_id: (a, name, team) for a, name, team in store.attendances(session, activity.id)}
    excused = {
        leave.member_id for leave, state in store.leaves(session, activity.id) if state == ItemState.APPROVED
    }
    teams: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    absent: list[str] = []
    invited_ids = set()
    for p in invitees:
        invited_ids.add(p.member_id)
        row = teams[p.team or "未分班组"]
        if p.member_id in signed:
            row[0] += 1
        elif p.member_id in excused:
            row[1] += 1
        else:
            row[2] += 1
            absent.append(p.name)
    outside = [name for m, (_a, name, _t) in signed.items() if m not in invited_ids]
    present = sum(r[0] for r in teams.values())
    return {
        "invited": len(invitees),
        "present": present,
        "excused": sum(r[1] for r in teams.values()),
        "absent": absent,
        "outside": outside,
        "teams": dict(sorted(teams.items())),
    }


def report_text(session: Session, config: Config, activity: Activity) -> str:
    a = attendance(session, activity)
    expected = a["invited"] - a["excused"]
    rate = f"{a['present'] / expected:.0%}" if expected else "—"
    lines = [
        f"#{activity.id} {activity.name}（{activity.type}，{_local(activity.starts_at, config)}，"
        f"{activity.scope_name}）",
        f"应到 {a['invited']}，签到 {a['present']}，请假 {a['excused']}，缺席 {len(a['absent'])}，"
        f"出勤率 {rate}",
    ]
    for team, (present, excused, absent) in a["teams"].items():
        lines.append(f"{team}：签到 {present}，请假 {excused}，缺席 {absent}")
    if a["absent"]:
        shown = "、".join(a["absent"][:30]) + ("等" if len(a["absent"]) > 30 else "")
        lines.append(f"缺席：{shown}")
    if a["outside"]:
        lines.append(f"范围外签到：{'、'.join(a['outside'][:20])}")
    return "\n".join(lines)


def show(ctx: Context, member: Sender, number: int) -> str:
    item = ctx.session.get(Item, number)
    row = ctx.session.get(Activity, number) if item is not None else None
    if item is None or row is None:
        return f"没有编号为 #{number} 的活动。"
    if item.status == ItemState.VOIDED:
        return f"#{number} {row.name} 已取消（{item.void_reason}）。"
    if ACTIVITY.refusal(ctx.session, ctx.config, member, item) is None:
        return report_text(ctx.session, ctx.config, row)
    mine = store.signed_at(ctx.session, row.id, member.id)
    status = f"你已于 {_local(mine, ctx.config, '%H:%M')} 签到" if mine else "你还没有签到"
    counts = store.count_attendances(ctx.session, row.id)
    return (
        f"#{row.id} {row.name}（{row.type}）{_local(row.starts_at, ctx.config)}，{row.place}，"
        f"已签到 {counts} 人；{status}。"
    )


# -- 签到 -------------------------------------------------------------------------------------------


def parse_code(raw: str, _ctx: Any) -> str:
    text = half_width(raw).strip().lstrip("#")
    if text and not re.fullmatch(r"\d{4}", text):
        raise FieldError("签到码是 4 位数字")
    return text


def _in_scope(member: Sender | Person, activity: Activity) -> bool:
    if activity.scope == WORKSHOP:
        return True
    if activity.scope == BRANCH:
        return member.branch_id is not None and member.branch_id == activity.scope_id
    return member.team_id is not None and member.team_id == activity.scope_id


def _record(ctx: Context, row: Activity, who: Person, approver_id: int) -> int:
    """Record `who` present and book the activity's points when they are due; returns the points."""
    in_scope = _in_scope(who, row)
    points = row.points_x100 if in_scope or ActivitiesConfig.of(ctx.config).out_of_scope_points else 0
    store.sign_in(ctx.session, row.id, who.id, ctx.now, in_scope, points)
    if points:
        book(
            ctx.session,
            who,
            points,
            category=row.category,
            indicator=row.indicator,
            day=row.starts_at.astimezone(ctx.config.tz).date(),
            at=ctx.now,
            item_id=row.id,
            approver_id=approver_id,
            note=f"签到 {row.name}",
        )
    return points


@router.command("签到", code="signin", aliases=("打卡",), args=parse_code)
def signin(ctx: Context, member: Sender, args: str) -> str:
    """活动签到，例：签到 4821（签到码在活动通知里）。"""
    text = half_width(args).strip().lstrip("#")
    if not text:
        mine = [a for a in store.live(ctx.session, ctx.now) if _in_scope(member, a)]
        if len(mine) == 1:
            return f"请回复「签到 签到码」签到 #{mine[0].id} {mine[0].name}，签到码在活动通知里。"
        if mine:
            listed = "、".join(f"#{a.id} {a.name}" for a in mine)
            return f"现在有 {len(mine)} 项活动可以签到（{listed}），请回复「签到 签到码」。"
        return "现在没有你可以签到的活动。签到码在活动通知里，开始前 20 分钟起可以签到。"
    if not re.fullmatch(r"\d{4}", text):
        return "签到码是 4 位数字，例：签到 4821。"
    row = store.by_code(ctx.session, text, ctx.now - timedelta(days=1))
    if row is None:
        return f"签到码 {text} 不对，请核对活动通知里的签到码。"
    if ctx.now < row.opens_at:
        return (
            f"#{row.id} {row.name} 的签到 {_local(row.opens_at, ctx.config, '%m-%d %H:%M')} 开始"
            f"（活动 {_local(row.starts_at, ctx.config, '%H:%M')} 开始），请到时再签。"
        )
    if ctx.now >= row.closes_at:
        organiser = person(ctx.session, row.organiser_id)
        return (
            f"#{row.id} {row.name} 的签到已于 {_local(row.closes_at, ctx.config, '%H:%M')} 结束。"
            f"如确实参加了，请联系组织者{organiser.name if organiser else ''}。"
        )
    earlier = store.signed_at(ctx.session, row.id, member.id)
    if earlier is not None:
        return f"你已在 {_local(earlier, ctx.config, '%H:%M')} 签到过 #{row.id} {row.name}，无需重复签到。"
    in_scope = _in_scope(member, row)
    points = _record(ctx, row, sender_person(member), row.organiser_id)
    if points:
        return f"签到成功：#{row.id} {row.name}，+{fmt(points)} 分。"
    if not in_scope:
        return f"签到成功：#{row.id} {row.name}。你不在这项活动的范围（{row.scope_name}）内，不计分。"
    return f"签到成功：#{row.id} {row.name}。"


def parse_attendees(raw: str, ctx: Context) -> list[Person]:
    found: dict[int, Person] = {}
    for word in (w for w in re.split(r"[\s,，、;；]+", half_width(raw)) if w):
        p = find_person(ctx.session, word)
        found.setdefault(p.id, p)
    if not found:
        raise FieldError("请写参加者的姓名")
    return list(found.values())


class RecordForm(Form):
    number: int = Field("编号", example="#12", parse=parse_show, positional=True)  # type: ignore[assignment]
    members: list[Person] = Field(
        "成员", example="王芳、陈静", parse=parse_attendees, positional=True, rest=True, aliases=("参加者",)
    )  # type: ignore[assignment]


@router.command("补签", code="activity_record", roles=ORGANISERS, form=RecordForm)
def record(ctx: Context, member: Sender, form: RecordForm) -> str:
    """组织者为到场但没能签到的人补记签到（记分同签到），例：补签 #12 王芳、陈静。"""
    item = ctx.session.get(Item, form.number)
    row = ctx.session.get(Activity, form.number) if item is not None else None
    if item is None or row is None:
        return f"没有编号为 #{form.number} 的活动。"
    refusal = ACTIVITY.refusal(ctx.session, ctx.config, member, item)
    if refusal:
        return refusal
    if item.status != ItemState.APPROVED:
        return f"#{row.id} {row.name} 已取消，不能补签。"
    if ctx.now < row.opens_at:
        return f"#{row.id} {row.name} 的签到还没开始，不能补签。"
    done, already = [], []
    for who in form.members:
        if store.signed_at(ctx.session, row.id, who.id) is not None:
            already.append(who.name)
            continue
        points = _record(ctx, row, who, member.id)
        done.append(f"{who.name}" + (f" +{fmt(points)} 分" if points else "（不计分）"))
        ctx.send(
            who.userid,
            f"{member.name}为你补记了 #{row.id} {row.name} 的签到"
            + (f"，+{fmt(points)} 分。" if points else "。"),
        )
    parts = []
    if done:
        parts.append(f"已为 #{row.id} {row.name} 补签：{'、'.join(done)}。")
    if already:
        parts.append(f"{'、'.join(already)} 已签到过，无需补签。")
    return "".join(parts)


# -- 请假 -------------------------------------------------------------------------------------------


def parse_leave_number(raw: str, _ctx: Any) -> int:
    number, _rest = split_number(raw)
    if number is None:
        raise FieldError("应写活动编号")
    return number


def parse_leave_reason(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if len(value) < 2:
        raise FieldError("请写清请假的原因")
    return value[:200]


class LeaveForm(Form):
    number: int = Field("编号", example="#12", parse=parse_leave_number, positional=True)  # type: ignore[assignment]
    reason: str = Field("理由", example="上中班", parse=parse_leave_reason, positional=True, rest=True)  # type: ignore[assignment]


@router.command("请假", code="activity_leave", form=LeaveForm)
def leave(ctx: Context, member: Sender, form: LeaveForm) -> str:
    """活动开始前请假，由组织者批准，例：请假 #12 上中班。"""
    number = form.number
    item = ctx.session.get(Item, number)
    row = ctx.session.get(Activity, number) if item is not None else None
    if item is None or row is None:
        return f"没有编号为 #{number} 的活动。请假要写活动的编号，见活动通知。"
    if item.status != ItemState.APPROVED:
        return f"#{number} {row.name} 已取消，无需请假。"
    if row.organiser_id == member.id:
        return f"你是 #{number} 的组织者，不用请假。"
    if ctx.now >= row.starts_at:
        started = _local(row.starts_at, ctx.config, "%H:%M")
        return f"#{number} {row.name} 已于 {started} 开始，不能再请假。如有特殊情况请直接联系组织者。"
    if store.signed_at(ctx.session, row.id, member.id) is not None:
        return f"你已签到 #{number}，不用请假。"
    earlier = store.leave_of(ctx.session, row.id, member.id)
    if earlier is not None:
        state = "已批准" if earlier[1] == ItemState.APPROVED else "正在等组织者批准"
        return f"你对 #{number} 的请假 #{earlier[0]} {state}，无需重复请假。"
    leave_id = item_store.new_item(
        ctx.session,
        LEAVE.name,
        ctx.now,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        title=f"{row.name} 请假",
    )
    insert_now(
        ctx.session, ActivityLeave(id=leave_id, activity_id=row.id, member_id=member.id, reason=form.reason)
    )
    leave_item = Item.model_construct(
        id=leave_id,
        kind=LEAVE.name,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        title=f"{row.name} 请假",
        created_at=ctx.now,
    )
    approvers = items.submit(ctx, leave_item, sender_person(member))
    return f"已提交请假 #{leave_id}（#{number} {row.name}）。{items.waiting_for(approvers)}"


# -- 我的 ------------------------------------------------------------------------------------------


@router.profile_section
def my_activities(ctx: Context) -> str:
    """My activities this quarter: signed in, or not yet."""
    assert ctx.member is not None
    quarter = period_of("quarter", ctx.now.date())
    lo, hi = quarter.bounds(ctx.config.tz)
    rows = store.mine(ctx.session, ctx.member.id, lo, hi)
    if not rows:
        return ""
    done = sum(1 for a in rows if a.signed_at is not None)
    shown = "；".join(
        f"#{a.id} {short(a.name, 10)} {_local(a.starts_at, ctx.config, '%m-%d')}"
        + (" 已签到" if a.signed_at else (" 未签到" if a.closes_at <= ctx.now else ""))
        for a in rows[-5:]
    )
    return f"活动：本季度 {len(rows)} 项，已签到 {done} 项（{shown}）"


# -- jobs -------------------------------------------------------------------------------------------


def book_organiser(ctx: JobContext, row: Activity, organiser: Person) -> int:
    """Book the type's organiser points once the sign-in has closed, if anyone signed in (called once
    per activity: by whoever claimed its report). On the activity's item, so voiding it reverses them."""
    if row.organiser_points_x100 <= 0 or store.count_attendances(ctx.session, row.id) == 0:
        return 0
    book(
        ctx.session,
        organiser,
        row.organiser_points_x100,
        category=row.category,
        indicator=row.indicator,
        day=row.starts_at.astimezone(ctx.config.tz).date(),
        at=ctx.now,
        item_id=row.id,
        approver_id=None,
        note=f"组织 {row.name}",
    )
    return row.organiser_points_x100


@job("activity_tick")
def activity_tick(ctx: JobContext) -> str:
    """Remind the people in scope before an activity starts; once its sign-in has closed, send the
    organiser the attendance report and book their organiser points (if anyone signed in)."""
    config = ActivitiesConfig.of(ctx.config)
    reminded = reported = stale = 0
    for row in store.starting_between(
        ctx.session, ctx.now, ctx.now + timedelta(minutes=config.reminder_minutes)
    ):
        on_leave = {
            leave.member_id
            for leave, state in store.leaves(ctx.session, row.id)
            if state in (ItemState.APPROVED, ItemState.PENDING)
        }
        for p in store.scope_members(ctx.session, row.scope, row.scope_id):
            if p.member_id in on_leave or p.member_id == row.organiser_id:
                continue
            ctx.send(
                p.userid,
                f"活动提醒：#{row.id} {row.name} {_local(row.starts_at, ctx.config, '%H:%M')} "
                f"在{row.place}开始，"
                f"{_local(row.opens_at, ctx.config, '%H:%M')} 起发送「签到 {row.code}」签到。"
                f"不能参加请发送「请假 #{row.id} 理由」。",
            )
        store.mark(ctx.session, row.id, reminded=True)
        reminded += 1
    for row in store.ended_unreported(ctx.session, ctx.now):
        if not store.claim_report(ctx.session, row.id):
            continue  # another process got there first
        organiser = person(ctx.session, row.organiser_id)
        if organiser is not None:
            book_organiser(ctx, row, organiser)
        # A report more than a day late (the bot was down, or history was loaded) is noise: the
        # organiser can still ask with 活动 #N.
        if organiser is not None and row.closes_at > ctx.now - STALE_REPORT:
            ctx.send(organiser.userid, "活动出勤报告\n" + report_text(ctx.session, ctx.config, row))
            reported += 1
        else:
            stale += 1
    if not reminded and not reported and not stale:
        return "没有要提醒或报告的活动。"
    late = f"；{stale} 项活动结束已超过一天，不再发报告" if stale else ""
    return f"提醒了 {reminded} 项活动，发出 {reported} 份出勤报告{late}。"


# -- the workbook -----------------------------------------------------------------------------------


@workbook_sheet(70)
def attendance_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """活动签到: each activity of the period with its attendance, by team."""
    rows: list[list[Any]] = []
    for row in store.in_period(session, scope.lo, scope.hi, scope.branch_id):
        a = attendance(session, row)
        organiser = person(session, row.organiser_id)
        expected = a["invited"] - a["excused"]
        for team, (present, excused, absent) in a["teams"].items():
            rows.append(
                [
                    row.id,
                    row.name,
                    row.type,
                    row.starts_at.astimezone(config.tz).replace(tzinfo=None),
                    row.place,
                    row.scope_name,
                    organiser.name if organiser else "",
                    team,
                    present + excused + absent,
                    present,
                    excused,
                    absent,
                    round(a["present"] / expected, 3) if expected else None,
                ]
            )
    return Sheet(
        "活动签到",
        [
            "编号",
            "活动",
            "类型",
            "时间",
            "地点",
            "范围",
            "组织者",
            "班组",
            "应到",
            "签到",
            "请假",
            "缺席",
            "活动出勤率",
        ],
        rows,
    )


# -- the quarterly 党建考评 --------------------------------------------------------------------------


def closed_for_assessment(session: Session, config: Config, period: Period) -> int:
    """The quarter's activities whose sign-in has closed by now: attendance moves when this does."""
    lo, hi = period.bounds(config.tz)
    return store.closed_count(session, lo, hi, min(datetime.now(config.tz), hi))


@assessment_component("activity_attendance", "活动出勤率", unit="%", moves_with=closed_for_assessment)
def attendance_for_assessment(session: Session, config: Config, period: Period) -> dict[int, float]:
    """Present / expected over the quarter's activities whose sign-in has closed (approved leave and
    the organiser are not expected)."""
    lo, hi = period.bounds(config.tz)
    now = datetime.now(config.tz)
    return {
        b: a.rate for b, a in store.branch_attendance(session, lo, hi, min(now, hi)).items() if a.expected
    }
