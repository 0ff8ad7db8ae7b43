"""Queries behind the 党建看板: what changed since the board last looked, and the latest approved points.

`signals` is the board's cheap change check: one statement of a few indexed aggregates (newest ids,
counts), run every couple of seconds while a board is open, so that commits made by any process reach
the screens. `latest_entries` is the rolling line of achievements: ledger lines only (a claim appears
once approved), with the member's name and nothing of what they wrote.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.activities import Activity, Attendance
from storage.models import Branch, Member
from storage.points import PointEntry
from storage.projects import Closing, Milestone, Progress, Project
from storage.publicity import Article, ArticlePublication
from storage.skills import SkillChange

_E = PointEntry.__table__.c
_M = Member.__table__.c
_MS = Milestone.__table__.c


def _newest(column: Any) -> Any:
    return select(func.max(column)).scalar_subquery()


def _count(table: Any, *where: Any) -> Any:
    return select(func.count()).select_from(table).where(*where).scalar_subquery()


# What each signal watches; a panel names the signals it depends on (`bot/board`). New ids and counts
# only: a decision that changes no count (an activity voided, a project accepted) shows at the next
# minute, through the board's clock, rather than making every approval refresh every panel.
_SIGNALS = select(
    _newest(_E.id).label("ledger"),
    _newest(Activity.__table__.c.id).label("activities"),
    _count(Attendance.__table__).label("attendance"),
    _newest(SkillChange.__table__.c.id).label("skills"),
    _newest(Article.__table__.c.id).label("articles"),
    _newest(ArticlePublication.__table__.c.id).label("publicity"),
    _newest(Project.__table__.c.id).label("projects"),
    _newest(Closing.__table__.c.id).label("closings"),
    _count(Milestone.__table__).label("milestones"),
    _count(Milestone.__table__, _MS.done_at.is_not(None)).label("milestones_done"),
    _newest(Progress.__table__.c.id).label("progress"),
    _count(Member.__table__, _M.active.is_(True)).label("members"),
)


def signals(session: Session) -> dict[str, str]:
    """Signal name → its current value as text (compared, never interpreted)."""
    row = session.connection().execute(_SIGNALS).one()
    return {key: str(value) for key, value in row._mapping.items()}


class LatestEntry(NamedTuple):
    entry_id: int
    name: str  # the member's
    points_x100: int
    category: str
    indicator: str
    day: date


_R = aliased(PointEntry.__table__)
_NOT_REVERSED = ~exists().where(_R.c.reverses_entry_id == _E.id)
_LATEST = (
    select(_E.id, _M.name, _E.points_x100, _E.category, _E.indicator, _E.day)
    .select_from(PointEntry.__table__)
    .join(Member.__table__, _M.id == _E.member_id)
    .where(_E.kind == "entry", _E.points_x100 > 0, _NOT_REVERSED)
    .order_by(_E.id.desc())
    .limit(bindparam("limit"))
)
_LATEST_OF_BRANCH = (
    select(_E.id, _M.name, _E.points_x100, _E.category, _E.indicator, _E.day)
    .select_from(PointEntry.__table__)
    .join(Member.__table__, _M.id == _E.member_id)
    .where(_E.kind == "entry", _E.points_x100 > 0, _NOT_REVERSED, _M.branch_id == bindparam("branch"))
    .order_by(_E.id.desc())
    .limit(bindparam("limit"))
)


def latest_entries(session: Session, limit: int, branch_id: int | None = None) -> list[LatestEntry]:
    """The newest ledger lines that gave a member points and were not reversed, newest first; of one
    branch's members when `branch_id` is given."""
    if branch_id is None:
        rows = session.connection().execute(_LATEST, {"limit": limit})
    else:
        rows = session.connection().execute(_LATEST_OF_BRANCH, {"limit": limit, "branch": branch_id})
    return [LatestEntry(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5]) for r in rows]


def branch_id(session: Session, name: str) -> int | None:
    """The id of the branch with this name, None when there is none."""
    found = session.execute(select(Branch.id).where(Branch.name == name)).scalar()
    return None if found is None else int(found)
