"""Rankings: 排行 (members, teams, branches), my standing in 我的, and the scheduled broadcasts.

The rules live here; the queries live in `storage.rankings`, which reads `member_totals` (kept in step
with the ledger) through indexed, prebuilt statements and never scans the ledger. Ties share a rank
(competition ranking: 1, 1, 3).

排行 支部 for a quarter's overall total is the quarterly 党建考评 (its score and rank, the numbers `考评`
shows), through the hook `handlers.assessment` registers with `@branch_assessment`: this module does
not import it (it imports `branch_scores` from here). For other periods or a category, and when no
assessment is registered, branches rank by `points.branch_ranking` (points per party member, or the
total), titled as such.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Image, Sender, tone
from bot.forms import FieldError
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers import charts
from handlers.ledger import fmt, short, signed
from handlers.periods import Period, looks_like_period, parse_period, period_of, previous, relative
from handlers.points_config import PointsConfig
from storage import rankings as store
from storage.points import INNOVATION, TOTAL
from storage.vocabulary import PARTY_STATUSES as PARTY

router = Router("rankings")
log = logging.getLogger(__name__)

SCOPES = {
    "个人": "member",
    "成员": "member",
    "党员": "member",
    "班组": "team",
    "支部": "branch",
    "党支部": "branch",
}
SCOPE_TITLES = {
    "member": "个人积分排行",
    "team": "班组积分排行",
    "branch": "支部党建考评排行",  # a quarter's 党建考评
    "branch_average": "支部人均积分排行",  # points per party member, any period or category
    "branch_total": "支部积分合计排行",  # `points.branch_ranking.rule: total`
}
ASSESSMENT_NOTE = "党建考评按季度计：名次看「排行 支部 本季度」，各项得分由支部书记和党总支用「考评」查看。"
DEFAULT_TOP = 10
MAX_TOP = 50


# -- pure rules -------------------------------------------------------------------------------------


def competition_ranks(values: Sequence[int]) -> list[int]:
    """Ranks of values sorted best first, ties sharing a rank: [9, 7, 7, 5] → [1, 2, 2, 4]."""
    ranks: list[int] = []
    for i, v in enumerate(values):
        ranks.append(ranks[-1] if i and v == values[i - 1] else i + 1)
    return ranks


def rank_change(now: int | None, before: int | None) -> str:
    """The move against the previous period: ↑2, ↓1, – (same), 新 (not ranked before)."""
    if now is None:
        return ""
    if before is None:
        return "新"
    if before > now:
        return f"↑{before - now}"
    if before < now:
        return f"↓{now - before}"
    return "–"


# -- standings --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    id: int
    name: str
    rank: int
    points_x100: int
    change: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Ranking:
    scope: str
    period: Period
    category: str
    rows: list[Standing]
    size: int  # how many are ranked
    mine: Standing | None = None  # the asker (or their team), wherever they stand
    board: str = ""  # which SCOPE_TITLES entry it is, when not the scope's own (branch_average …)

    @property
    def title(self) -> str:
        return SCOPE_TITLES[self.board or self.scope]


def _previous_ranks(session: Session, period: str, category: str, ids: Sequence[int]) -> dict[int, int]:
    """The competition ranks that `ids` had in `period` (those with points there)."""
    before = store.points_of(session, period, category, ids)
    if not before:
        return {}
    values = sorted(set(before.values()))
    _, above = store.count_above(session, period, category, values)
    rank = {v: a + 1 for v, a in zip(values, above, strict=True)}
    return {m: rank[p] for m, p in before.items()}


def member_ranking(session: Session, period: Period, category: str, top: int, me: int | None) -> Ranking:
    """The top members, and where `me` stands (rank 0 when they have no points in the period)."""
    rows = store.top_members(session, period.key, category, top)
    ranks = competition_ranks([r.points_x100 for r in rows])
    ids = [r.member_id for r in rows]
    mine = (
        store.member_points(session, period.key, category, me) if me is not None and me not in ids else None
    )
    size, above = store.count_above(session, period.key, category, [mine] if mine is not None else [])
    before = _previous_ranks(session, previous(period).key, category, [*ids, *([me] if me else [])])
    standings = [
        Standing(
            r.member_id,
            r.name,
            rank,
            r.points_x100,
            rank_change(rank, before.get(r.member_id)),
            r.branch or "",
        )
        for r, rank in zip(rows, ranks, strict=True)
    ]
    found = next((s for s in standings if s.id == me), None)
    if found is None and me is not None:
        rank = above[0] + 1 if mine is not None else None
        found = Standing(me, "你", rank or 0, mine or 0, rank_change(rank, before.get(me)))
    return Ranking("member", period, category, standings, size, found)


def _ranked(scored: list[tuple[int, str, int, str]], before: dict[int, int]) -> list[Standing]:
    scored.sort(key=lambda s: (-s[2], s[0]))
    ranks = competition_ranks([s[2] for s in scored])
    return [
        Standing(i, name, rank, points, rank_change(rank, before.get(i)), detail)
        for (i, name, points, detail), rank in zip(scored, ranks, strict=True)
    ]


def team_ranking(session: Session, period: Period, category: str, top: int, my_team: int | None) -> Ranking:
    """班组: the sum of the team's members' points."""
    now = [
        (t.team_id, t.name, t.points_x100, f"{t.people} 人")
        for t in store.team_sums(session, period.key, category)
    ]
    earlier = [
        (t.team_id, t.name, t.points_x100, "")
        for t in store.team_sums(session, previous(period).key, category)
    ]
    before = {s.id: s.rank for s in _ranked(earlier, {})}
    rows = _ranked(now, before)
    return Ranking(
        "team", period, category, rows[:top], len(rows), next((s for s in rows if s.id == my_team), None)
    )


def branch_scores(
    session: Session, config: Config, period: str, category: str
) -> list[tuple[int, str, int, str]]:
    """(branch id, name, score x100, how it was made) by `points.branch_ranking` (the 党建考评 rule):
    the average per party member (only party members' points count), or the plain total; plus what was
    given to the branch as a whole, for the overall total when the rule says so."""
    rule = PointsConfig.of(config).branch_ranking
    party_only = rule.rule == "average_per_party_member"
    branch_items = rule.include_branch_items and category == TOTAL
    scored = []
    for b in store.branch_points(
        session, period, category, PARTY, only_statuses=party_only, branch_items=branch_items
    ):
        bonus = f" + 支部 {fmt(b.branch_x100)}" if b.branch_x100 else ""
        if party_only:
            average = round(b.points_x100 / b.people) if b.people else 0
            detail = f"党员 {b.people} 人，人均 {fmt(average)}" + bonus
            scored.append((b.branch_id, b.name, average + b.branch_x100, detail))
        else:
            detail = f"合计 {fmt(b.points_x100)}" + bonus
            scored.append((b.branch_id, b.name, b.points_x100 + b.branch_x100, detail))
    return scored


# The 党建考评 of a quarter: (branch id, name, score x100, rank), best first. `handlers.assessment`
# registers it; None when that practice is not installed.
AssessmentFunc = Callable[[Session, Config, Period], list[tuple[int, str, int, int]]]
_assessment: list[AssessmentFunc] = []


def branch_assessment(func: AssessmentFunc) -> AssessmentFunc:
    """Register the quarterly 党建考评 that 排行 支部 shows for a quarter's overall total."""
    if _assessment:
        raise ValueError("the branch assessment is registered twice")
    _assessment.append(func)
    return func


def uses_assessment(period: Period, category: str) -> bool:
    """Whether 排行 支部 for this period and category is the 党建考评 (a quarter's overall total)."""
    return bool(_assessment) and period.kind == "quarter" and category == TOTAL


def _assessment_ranking(
    session: Session, config: Config, period: Period, top: int, my_branch: int | None
) -> Ranking:
    assess = _assessment[0]
    earlier = assess(session, config, previous(period))
    # A quarter where no branch scored was not assessed: every branch is 新 against it.
    before = {b: rank for b, _name, _score, rank in earlier} if any(s[2] for s in earlier) else {}
    now = assess(session, config, period)
    if not any(s[2] for s in now):
        now = []
    rows = [Standing(b, name, rank, score, rank_change(rank, before.get(b))) for b, name, score, rank in now]
    mine = next((s for s in rows if s.id == my_branch), None)
    return Ranking("branch", period, TOTAL, rows[:top], len(rows), mine)


def branch_ranking(
    session: Session, config: Config, period: Period, category: str, top: int, my_branch: int | None
) -> Ranking:
    """A quarter's overall total: the 党建考评. Otherwise the `points.branch_ranking` rule."""
    if uses_assessment(period, category):
        return _assessment_ranking(session, config, period, top, my_branch)
    board = (
        "branch_average"
        if PointsConfig.of(config).branch_ranking.rule == "average_per_party_member"
        else "branch_total"
    )
    # A branch without points in the previous period was not ranked then (新), whatever its zero score.
    earlier = [s for s in branch_scores(session, config, previous(period).key, category) if s[2]]
    before = {s.id: s.rank for s in _ranked(earlier, {})}
    rows = _ranked(branch_scores(session, config, period.key, category), before)
    mine = next((s for s in rows if s.id == my_branch), None)
    return Ranking("branch", period, category, rows[:top], len(rows), mine, board)


# -- 排行 -------------------------------------------------------------------------------------------


def category_name(config: Config, code: str) -> str:
    if code == TOTAL:
        return "总分"
    if code == INNOVATION:
        return "创新积分"
    found = PointsConfig.of(config).category(code)
    return found.name if found else code


def find_category(config: Config, word: str) -> str | None:
    if word in ("总分", "合计", "全部", "总"):
        return TOTAL
    if word in ("创新", "创新积分"):
        return INNOVATION
    found = PointsConfig.of(config).category(word)
    return found.code if found else None


USAGE = (
    "排行的写法：排行 [个人|班组|支部] [本周|本月|本季度|本年|上季度|2026Q3|2026-11] [类别]，"
    "例：排行 支部 上季度"
)


@dataclass(frozen=True, slots=True)
class Request:
    scope: str = "member"
    period: Period | None = None
    category: str = TOTAL
    top: int = DEFAULT_TOP


def parse_request(config: Config, text: str, today: date) -> Request | str:
    """What `排行 …` asks for, or a refusal that says how to write it."""
    scope, period, category, top = "member", None, TOTAL, DEFAULT_TOP
    for word in text.replace("，", " ").replace(",", " ").split():
        m = re.fullmatch(r"(?:前|top)(\d+)(?:名)?", word, re.IGNORECASE)
        if word in SCOPES:
            scope = SCOPES[word]
        elif m:
            top = max(1, min(MAX_TOP, int(m.group(1))))
        elif (found := parse_period(word, today)) is not None:
            period = found
        elif (code := find_category(config, word)) is not None:
            category = code
        elif looks_like_period(word):
            return f"「{word}」不是有效的时间段，可以写：本周、本月、本季度、本年、上季度、2026Q3、2026-11。"
        else:
            return f"看不懂「{word}」。{USAGE}"
    return Request(scope, period or period_of("quarter", today), category, top)


MINE = {"member": ("（你）", "你"), "team": ("（你所在）", "你的班组"), "branch": ("（你所在）", "你的支部")}


def render(config: Config, r: Ranking) -> str:
    head = f"{r.title} · {r.period.label}" + (
        f" · {category_name(config, r.category)}" if r.category != TOTAL else ""
    )
    note = ASSESSMENT_NOTE if r.board.startswith("branch_") else ""
    if not r.rows:
        empty = (
            "该季度还没有党建考评得分。" if r.scope == "branch" and not r.board else "本期还没有积分记录。"
        )
        return "\n".join([head, empty, *([note] if note else [])])
    mark, who = MINE[r.scope]
    lines = [head]
    for s in r.rows:
        me = mark if r.mine is not None and s.id == r.mine.id else ""
        if r.scope == "member":  # the member's branch beside the name; team and branch details after
            line = f"{s.rank}. {s.name}{me} {s.detail} {fmt(s.points_x100)} 分 {s.change}"
        else:
            detail = f"（{s.detail}）" if s.detail else ""
            line = f"{s.rank}. {s.name}{me} {fmt(s.points_x100)} 分 {s.change}{detail}"
        lines.append(re.sub(r" +", " ", line).rstrip())
    if r.mine is not None and all(s.id != r.mine.id for s in r.rows):
        if r.mine.rank:
            lines.append(
                f"—— {who}：第 {r.mine.rank} 名，{fmt(r.mine.points_x100)} 分 {r.mine.change}".rstrip()
            )
        else:
            lines.append(f"—— {who}：本期还没有积分，暂未上榜")
    unit = "人" if r.scope == "member" else "个"
    if r.scope == "branch" and not r.board:
        lines.append(
            f"共 {r.size} 个支部参评；得分和名次即{r.period.label}党建考评（与「考评」一致），"
            f"箭头是与{previous(r.period).label}考评相比的名次变化。"
        )
    else:
        lines.append(f"共 {r.size} {unit}上榜；箭头是与{previous(r.period).label}相比的名次变化。")
    if note:
        lines.append(note)
    return "\n".join(lines)


def parse_ranking_words(raw: str, ctx: Context) -> Request:
    """`排行` words as input (本季度, 支部, 2026Q3 …); FieldError for anything else."""
    request = parse_request(ctx.config, raw, ctx.now.date())
    if isinstance(request, str):
        raise FieldError(request)
    return request


@router.command(
    "排行", code="ranking", aliases=("排名", "榜单", "积分排行"), args=parse_ranking_words, reads=True
)
def ranking(ctx: Context, member: Sender, args: str) -> str:
    """积分排行：排行 [个人|班组|支部] [本周|本月|本季度|本年|2026Q3|2026-11]
    [类别]，默认个人、本季度、总分。"""
    request = parse_request(ctx.config, args, ctx.now.date())
    if isinstance(request, str):
        return request
    assert request.period is not None
    if request.scope == "team":
        result = team_ranking(ctx.session, request.period, request.category, request.top, member.team_id)
    elif request.scope == "branch":
        result = branch_ranking(
            ctx.session, ctx.config, request.period, request.category, request.top, member.branch_id
        )
    else:
        result = member_ranking(ctx.session, request.period, request.category, request.top, member.id)
    return render(ctx.config, result)


# -- 我的 -------------------------------------------------------------------------------------------


@router.profile_section
def my_points(ctx: Context) -> str:
    """This quarter's points by category, my ranks, my pending items and my last five entries."""
    assert ctx.member is not None
    me, session, config = ctx.member, ctx.session, ctx.config
    quarter = period_of("quarter", ctx.now.date())
    totals = store.my_totals(session, me.id, quarter.key)
    lines = [f"—— 本季度积分（{quarter.label}）：{fmt(totals.get(TOTAL, 0))} 分"]
    points = PointsConfig.of(config)
    parts = [f"{c.name} {fmt(totals.get(c.code, 0))}" for c in points.categories]
    if points.deductions and totals.get(points.deductions.code):
        parts.append(f"{points.deductions.name} {fmt(totals[points.deductions.code])}")
    if parts:
        lines.append(" · ".join(parts))
    if totals.get(INNOVATION):
        lines.append(f"创新积分 {fmt(totals[INNOVATION])}")
    if TOTAL not in totals:
        lines.append("排名：本季度还没有积分，暂未上榜")
    else:
        at = store.member_places(session, quarter.key, TOTAL, totals[TOTAL], me.branch_id)
        branch = (
            f"{me.branch}第 {at.branch_ahead + 1} 名（共 {at.branch_ranked} 人）、"
            if me.branch_id is not None
            else ""
        )
        lines.append(f"排名：{branch}全车间第 {at.ahead + 1} 名（共 {at.ranked} 人）")
    recent = store.recent_entries(session, me.id, 5)
    if recent:
        lines.append("最近记分：")
        for e in recent:
            indicator = PointsConfig.of(config).indicator(e.indicator) if e.indicator else None
            what = (
                f"{e.indicator} {short(indicator.name, 10)}"
                if indicator
                else category_name(config, e.category)
            )
            lines.append(
                f"{e.day:%m-%d} {signed(e.points_x100)} {what}"
                + (" 冲正" if e.kind == "reversal" else "")
                + (f" #{e.item_id}" if e.item_id else "")
            )
    return "\n".join(lines)


# -- the broadcast ----------------------------------------------------------------------------------


def _markdown(config: Config, r: Ranking, top: int) -> str:
    lines = [
        f"### {r.title} · {r.period.label}",
        f"> {r.period.span}" + (f" · {category_name(config, r.category)}" if r.category != TOTAL else ""),
    ]
    for s in r.rows[:top]:
        detail = " " + tone(short(s.detail, 20), "comment") if s.detail else ""
        change = f" {s.change}" if s.change else ""
        lines.append(f"**{s.rank}.** {s.name}{detail} {tone(f'{fmt(s.points_x100)} 分', 'info')}{change}")
    return "\n".join(lines)


# How the job's result names the period it ranked (the simulator and `jobs run` show it to people).
_SCHEDULED_NAMES = {
    "current_week": "本周",
    "previous_week": "上周",
    "current_month": "本月",
    "previous_month": "上月",
    "current_quarter": "本季度",
    "previous_quarter": "上季度",
    "current_year": "今年",
    "previous_year": "去年",
}


def broadcast_result(
    config: Config, word: str, period: Period, category: str, posted: Sequence[str], groups: Sequence[str]
) -> str:
    """The job's result in a sentence: what was posted where (`posted`: SCOPE_TITLES keys), or why
    nothing was."""
    when = f"{_SCHEDULED_NAMES[word]}（{period.label}）" if word in _SCHEDULED_NAMES else period.label
    cat = category_name(config, category) if category != TOTAL else ""
    if not posted:
        return f"{when}还没有{cat or '积分'}记录，没有发布排行。"
    rankings = "、".join(SCOPE_TITLES[scope] for scope in posted) + (f"（{cat}）" if cat else "")
    if not groups:
        return f"{when}的{rankings}已生成，但没有配置要发布的群，没有发送。"
    return f"已把{when}的{rankings}发到 {len(groups)} 个群：{'、'.join(groups)}。"


@job("ranking_broadcast")
def ranking_broadcast(ctx: JobContext) -> str:
    """Post rankings to group robots. Arguments: groups, scope member|team|branch (default all three),
    period previous_week|previous_month|previous_quarter|previous_year (or current_…), top. The branch
    ranking of a quarter's overall total is the 党建考评, as in 排行 支部."""
    args = ctx.arguments
    groups = args.get("groups", args.get("group", []))
    groups = [groups] if isinstance(groups, str) else list(groups)
    word = str(args.get("period", "previous_week"))
    period = relative(word, ctx.now.date())
    if period is None:
        raise ValueError(f"unknown period {word!r} (use previous_week, previous_month, previous_quarter …)")
    top = int(args.get("top", DEFAULT_TOP))
    category = str(args.get("category", TOTAL))
    scopes = [args["scope"]] if "scope" in args else ["member", "team", "branch"]
    parts, posted, charted = [], [], []
    for scope in scopes:
        if scope == "member":
            r = member_ranking(ctx.session, period, category, top, None)
        elif scope == "team":
            r = team_ranking(ctx.session, period, category, top, None)
        elif scope == "branch":
            r = branch_ranking(ctx.session, ctx.config, period, category, top, None)
        else:
            raise ValueError(f"unknown scope {scope!r} (use member, team or branch)")
        if r.rows and any(s.points_x100 for s in r.rows):
            parts.append(_markdown(ctx.config, r, top))
            posted.append(r.board or scope)
            charted.append(r)
    if parts:
        text = "\n\n".join(parts) + "\n\n" + tone("发送「排行」给先锋查看自己的名次", "comment")
        picture, problem = _chart(ctx.config, charted[0], top)
        for group in groups:
            ctx.broadcast(group, text)
            if picture is not None:
                ctx.broadcast(group, picture)
        if problem:
            return (
                broadcast_result(ctx.config, word, period, category, posted, groups)
                + f"（图表未生成：{problem}）"
            )
    return broadcast_result(ctx.config, word, period, category, posted, groups)


CHART_NOTE = "与上一期相比：↑ 上升　↓ 下降　– 持平　新 首次上榜"


def _chart(config: Config, r: Ranking, top: int) -> tuple[Image | None, str]:
    """The ranking as a bar chart (the first of those posted: the members' by default), or why not."""
    cat = f" · {category_name(config, r.category)}" if r.category != TOTAL else ""
    bars = [
        charts.Bar(
            s.rank, s.name, s.points_x100 / 100, f"{fmt(s.points_x100)} 分", s.change, short(s.detail, 14)
        )
        for s in r.rows[:top]
    ]
    try:
        charts.font_file()  # said in the job's result now, rather than in the picture's place later
    except charts.ChartError as problem:
        log.warning("ranking chart not drawn: %s", problem)
        return None, str(problem)
    # Drawn by the outbox as it sends it (in a thread), not inside the job's transaction.
    data = {
        "title": f"{r.title} · {r.period.label}",
        "subtitle": f"{r.period.span}{cat} · 前 {len(bars)} 名",
        "bars": [asdict(b) for b in bars],
        "note": CHART_NOTE,
    }
    return Image.drawn(f"{r.title}-{r.period.key}.png", "bar_chart", data), ""
