"""The 党建看板's panels: what each practice puts on the workshop screen, as plain data.

Each panel reuses its practice's own rules (the rankings with their ↑↓, the skills coverage with its
ideal numbers, the publicity quotas, a project's milestones) and returns names and numbers only: never
what someone wrote in a claim, a comment or a reason, nor anything else personal. `bot/board` serves
them, caches them and tells the screens when to fetch them again (see `bot/board/panels.py`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.board.panels import CLOCK, Scope, board_panel
from bot.config import Config
from handlers.activities import attendance
from handlers.ledger import fmt
from handlers.periods import period_of
from handlers.points_config import PointsConfig
from handlers.publicity_config import PublicityConfig
from handlers.rankings import Ranking, Standing, branch_ranking, category_name, member_ranking, team_ranking
from handlers.skills import coverage, effective
from handlers.skills_config import SkillsConfig
from storage import activities as activities_store
from storage import board as store
from storage import projects as projects_store
from storage import publicity as publicity_store
from storage import skills as skills_store
from storage.points import TOTAL
from storage.vocabulary import ItemState

WEEKDAYS = "一二三四五六日"
UPCOMING_DAYS = 7  # today's activities and those of the next week
MAX_ACTIVITIES = 4
RECENT_DAYS = 14  # ended activities shown under the coming ones, with their attendance
MAX_RECENT = 5
MAX_PROJECTS = 8
FEED_LENGTH = 12
WIDE_RANKING = 200  # members read to find a branch's best among the workshop's ranking


def _standing(s: Standing) -> dict[str, Any]:
    return {
        "rank": s.rank,
        "name": s.name,
        "points": fmt(s.points_x100),
        "change": s.change,
        "detail": s.detail,
    }


def _rows(r: Ranking) -> list[dict[str, Any]]:
    return [_standing(s) for s in r.rows]


@board_panel("ranking", "本月积分榜", watches=("ledger", "members"), order=10)
def ranking_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """This month's top members (of the board's branch, with their workshop rank), the teams and the
    branches, each with ↑↓ against last month."""
    month = period_of("month", now.date())
    top = config.board.top
    if scope.branch_id is None:
        ranked = member_ranking(session, month, TOTAL, top, None)
        members, people = _rows(ranked), ranked.size
    else:
        wide = [
            s
            for s in member_ranking(session, month, TOTAL, WIDE_RANKING, None).rows
            if s.detail == scope.branch
        ]
        members, people = [_standing(s) for s in wide[:top]], len(wide)
    branches = branch_ranking(session, config, month, TOTAL, top, scope.branch_id)
    return {
        "period": month.label,
        "members": members,
        "people": people,  # members with points this month
        "teams": _rows(team_ranking(session, month, TOTAL, top, None)),
        "branches": _rows(branches),
        "branches_title": branches.title,
        "my_branch": scope.branch,
    }


def _day_word(day: date, today: date) -> str:
    if day == today:
        return "今天"
    if day == today + timedelta(days=1):
        return "明天"
    return f"{day:%m-%d} 周{WEEKDAYS[day.weekday()]}"


@board_panel("activities", "活动与签到", watches=("activities", "attendance", CLOCK), order=20)
def activities_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """Today's and the coming week's activities, then those of the last two weeks: when, where, and
    how many signed in against how many are expected (the activity's scope, the organiser aside, as
    in its report)."""
    today = now.astimezone(config.tz).date()
    lo = datetime.combine(today, time(), config.tz)
    coming = activities_store.in_period(session, lo, lo + timedelta(days=UPCOMING_DAYS + 1), scope.branch_id)
    past = activities_store.in_period(session, lo - timedelta(days=RECENT_DAYS), lo, scope.branch_id)
    return {
        "activities": [_activity(session, config, a, now, today) for a in coming[:MAX_ACTIVITIES]],
        "recent": [_activity(session, config, a, now, today) for a in reversed(past[-MAX_RECENT:])],
    }


def _activity(session: Session, config: Config, a: Any, now: datetime, today: date) -> dict[str, Any]:
    starts = a.starts_at.astimezone(config.tz)
    counts = attendance(session, a)
    if a.opens_at <= now < a.closes_at:
        state = "签到中"
    elif now >= a.ends_at:
        state = "已结束"
    else:
        state = "未开始"
    return {
        "name": a.name,
        "type": a.type,
        "day": _day_word(starts.date(), today),
        "time": f"{starts:%H:%M}",
        "place": a.place,
        "scope": a.scope_name or "全车间",
        "present": counts["present"],
        "expected": counts["invited"],
        "excused": counts["excused"],
        "state": state,
        "today": starts.date() == today,
    }


@board_panel("skills", "多能工覆盖", watches=("skills", "members", CLOCK), order=30)
def skills_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """Per 工段, each post's qualified people (U or O, lapsed levels not counted) against its ideal
    number; a post with one qualified person is a single point of failure."""
    cfg = SkillsConfig.of(config)
    rows = effective(cfg, skills_store.matrix(session, branch_id=scope.branch_id), now)
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in cfg.sections}
    for c in coverage(cfg, rows):
        n = len(c.qualified)
        sections.setdefault(c.post.section, []).append(
            {
                "post": c.post.name,
                "qualified": n,
                "ideal": c.post.ideal_qualified,
                "teachers": len(c.teachers),
                "single": n == 1,
                "short": n < c.post.ideal_qualified,
            }
        )
    posts = [p for ps in sections.values() for p in ps]
    return {
        "sections": [{"name": name, "posts": ps} for name, ps in sections.items() if ps],
        "people": len(rows),
        "covered": sum(1 for p in posts if not p["short"]),
        "posts": len(posts),
        "single": sum(1 for p in posts if p["single"]),
        "uncovered": sum(1 for p in posts if p["qualified"] == 0),
    }


@board_panel("publicity", "宣传录用", watches=("articles", "publicity", CLOCK), order=40)
def publicity_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """This month's accepted articles per business module against its quota (modules are the
    workshop's, whatever the board's branch)."""
    month = period_of("month", now.astimezone(config.tz).date())
    lo, hi = month.bounds(config.tz)
    figures = publicity_store.module_figures(session, lo, hi)
    cfg = PublicityConfig.of(config)
    modules = []
    for m in cfg.modules:
        fig = figures.get(m.name) or publicity_store.ModuleMonth(by_channel={})
        modules.append(
            {
                "name": m.name,
                "accepted": fig.accepted,
                "submitted": fig.submitted,
                "quota": cfg.module_quota(m.name),
            }
        )
    return {"period": month.label, "modules": modules}


@board_panel(
    "projects",
    "书记项目",
    watches=("projects", "closings", "milestones", "milestones_done", "progress", CLOCK),
    order=50,
)
def projects_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """Each open project (not yet accepted): its topic, branch and leader, milestones done, and the
    next milestone with its date and whether it is late, late ones first; and how many were accepted."""
    today = now.astimezone(config.tz).date()
    out = []
    accepted = 0
    for r in projects_store.project_rows(session, scope.branch_id):
        if r.state == ItemState.APPROVED:
            accepted += 1
            continue
        upcoming = [m for m in projects_store.milestones(session, r.project_id) if m.done_at is None]
        nxt = upcoming[0] if upcoming else None
        out.append(
            {
                "topic": r.topic,
                "branch": r.branch,
                "leader": r.leader,
                "done": r.done,
                "total": r.milestones,
                "next": nxt.title if nxt else "",
                "due": f"{nxt.due:%m-%d}" if nxt else "",
                "days": (nxt.due - today).days if nxt else None,
                "late": bool(nxt and nxt.due < today),
                "closing": r.state == ItemState.PENDING,
            }
        )
    out.sort(key=lambda p: (not p["late"], p["days"] if p["days"] is not None else 10**6))
    return {
        "projects": out[:MAX_PROJECTS],
        "late": sum(1 for p in out if p["late"]),
        "open": len(out),
        "accepted": accepted,
        "milestones_done": sum(p["done"] for p in out),
    }


@board_panel("feed", "最新成绩", watches=("ledger",), order=90)
def feed_panel(session: Session, config: Config, scope: Scope, now: datetime) -> dict[str, Any]:
    """The latest approved points: who, for what (the indicator's or category's configured name, never
    the claim's own words) and how many."""
    points = PointsConfig.of(config)
    out = []
    for e in store.latest_entries(session, FEED_LENGTH, scope.branch_id):
        indicator = points.indicator(e.indicator) if e.indicator else None
        what = indicator.name if indicator else category_name(config, e.category)
        out.append({"name": e.name, "what": what, "points": fmt(e.points_x100), "day": f"{e.day:%m-%d}"})
    return {"entries": out}
