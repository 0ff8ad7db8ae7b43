"""Queries behind 排行, 我的 and the ranking broadcast: who stands where in a period's totals.

Everything here reads `member_totals` (kept in step with the ledger by `storage.points`) through its
indexes, plus `point_entries` by the (member, id) index for a member's last entries; nothing scans the
ledger. The functions return plain rows (named tuples, dicts, counts) and know no ranking rules: ties,
rank changes and the branch score rule are the handler's.

排行 and 我的 run for many messages, so their statements are built once, with bound parameters, and run
through Core: building a statement costs more than SQLite takes to execute it.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from storage import generations
from storage.models import Branch, Member, Team
from storage.points import BranchTotal, MemberTotal, PointEntry
from storage.prebuilt import Prebuilt

_T = MemberTotal.__table__.c
_TOTALS = MemberTotal.__table__
_M, _MEMBERS = Member.__table__.c, Member.__table__
_B, _BRANCHES = Branch.__table__.c, Branch.__table__
_TEAMS = Team.__table__
_BT = BranchTotal.__table__.c
_E = PointEntry.__table__.c

_IN_PERIOD = (_T.period == bindparam("period")) & (_T.category == bindparam("category"))


# -- members ----------------------------------------------------------------------------------------


class TopMember(NamedTuple):
    member_id: int
    name: str
    points_x100: int
    branch: str | None  # the member's branch name, None when they have none


class Places(NamedTuple):
    ranked: int  # members with points in the period and category
    ahead: int  # of them, how many have more than the given points
    branch_ranked: int  # the same within the branch
    branch_ahead: int


class RecentEntry(NamedTuple):
    day: date
    points_x100: int
    indicator: str
    category: str
    item_id: int | None
    kind: str  # entry | reversal


_TOP_MEMBERS = Prebuilt(
    select(_T.member_id, _M.name, _T.points_x100, _B.name)
    .select_from(_TOTALS)
    .join(_MEMBERS, _M.id == _T.member_id)
    .outerjoin(_BRANCHES, _B.id == _T.branch_id)
    .where(_IN_PERIOD)
    .order_by(_T.points_x100.desc(), _T.member_id)
    .limit(bindparam("top"))
)
_MEMBER_POINTS = Prebuilt(select(_T.points_x100).where(_IN_PERIOD, _T.member_id == bindparam("member")))
_MY_TOTALS = Prebuilt(
    select(_T.category, _T.points_x100).where(
        _T.member_id == bindparam("member"), _T.period == bindparam("period")
    )
)
_POINTS_OF = Prebuilt(
    select(_T.member_id, _T.points_x100).where(_IN_PERIOD, _T.member_id.in_(bindparam("ids", expanding=True)))
)


def top_members(session: Session, period: str, category: str, top: int) -> list[TopMember]:
    """The `top` members with the most points in the period key and category, best first (ties by
    member id), with their names and branch names."""
    rows = _TOP_MEMBERS.rows(session, {"period": period, "category": category, "top": top})
    return [TopMember(*r) for r in rows]


def member_points(session: Session, period: str, category: str, member_id: int) -> int | None:
    """The member's points in the period and category, None when they have none there."""
    params = {"period": period, "category": category, "member": member_id}
    found = _MEMBER_POINTS.rows(session, params)
    return int(found[0][0]) if found and found[0][0] is not None else None


def points_of(session: Session, period: str, category: str, member_ids: Sequence[int]) -> dict[int, int]:
    """Member id → points in the period and category, for those of `member_ids` that have any."""
    if not member_ids:
        return {}
    params = {"period": period, "category": category, "ids": list(member_ids)}
    return {int(m): int(p) for m, p in _POINTS_OF.rows(session, params)}


def my_totals(session: Session, member_id: int, period: str) -> dict[str, int]:
    """Category → the member's points in the period; the overall total is under `TOTAL` (""), and a
    category the member has no points in is absent."""
    return {c: p for c, p in _MY_TOTALS.rows(session, {"member": member_id, "period": period})}


class Standings(NamedTuple):
    """A period's and category's totals, ascending: everyone's, and each branch's."""

    points: list[int]
    by_branch: dict[int | None, list[int]]

    def ranked_above(self, value: int, branch: int | None = None, *, within: bool = False) -> tuple[int, int]:
        """(how many are ranked, how many have more than `value`), in the workshop or `within` a branch."""
        points = self.by_branch.get(branch, []) if within else self.points
        return len(points), len(points) - bisect_right(points, value)


_STANDINGS = select(_T.branch_id, _T.points_x100).where(_IN_PERIOD).order_by(_T.points_x100)
# Standings kept under the `totals` generation token (storage/generations.py): one read of the
# period's totals answers every place asked until a total changes. 排行 shows last period's places of
# the ten it lists and the asker's place; counted in SQL that was a pass over every total per question.
# 32 (period, category) pairs: this and last week, month, quarter and year, per category.
_KEPT: generations.Kept[Standings] = generations.Kept(generations.TOTALS, size=32)


def standings(session: Session, period: str, category: str) -> Standings:
    """The period's standings, read once per change of `member_totals`."""

    def read() -> Standings:
        everyone: list[int] = []
        by_branch: dict[int | None, list[int]] = {}
        for branch, points in session.connection().execute(
            _STANDINGS, {"period": period, "category": category}
        ):
            everyone.append(points)
            by_branch.setdefault(branch, []).append(points)
        return Standings(everyone, by_branch)

    return _KEPT.get(session, lambda: (period, category), read)


def count_above(session: Session, period: str, category: str, values: Sequence[int]) -> tuple[int, list[int]]:
    """(how many members have points in the period and category, how many of them have more than each
    of `values`), from the period's standings."""
    kept = standings(session, period, category)
    return len(kept.points), [kept.ranked_above(v)[1] for v in values]


def member_places(session: Session, period: str, category: str, points: int, branch_id: int | None) -> Places:
    """How many are ranked and how many are ahead of `points`, overall and within the branch (with no
    branch, the branch counts are 0), from the period's standings."""
    kept = standings(session, period, category)
    ranked, ahead = kept.ranked_above(points)
    if branch_id is None:
        return Places(ranked, ahead, 0, 0)
    return Places(ranked, ahead, *kept.ranked_above(points, branch_id, within=True))


@functools.lru_cache(maxsize=8)
def _recent_stmt(limit: int) -> Prebuilt:
    # A literal limit: a bound one costs SQLAlchemy more per execution than the query takes.
    return Prebuilt(
        select(_E.day, _E.points_x100, _E.indicator, _E.category, _E.item_id, _E.kind)
        .where(_E.member_id == bindparam("member"))
        .order_by(_E.id.desc())
        .limit(limit)
    )


def recent_entries(session: Session, member_id: int, limit: int = 5) -> list[RecentEntry]:
    """The member's last `limit` ledger lines, newest first."""
    rows = _recent_stmt(limit).rows(session, {"member": member_id})
    return [RecentEntry(*r) for r in rows]


# -- teams ------------------------------------------------------------------------------------------


class TeamSum(NamedTuple):
    team_id: int
    name: str
    points_x100: int  # the sum of its members' points
    people: int  # its members with points in the period and category


_TEAM_SUMS_BY_ID = (
    select(_T.team_id, func.sum(_T.points_x100).label("points"), func.count().label("people"))
    .where(_IN_PERIOD, _T.team_id.is_not(None))
    .group_by(_T.team_id)
    .subquery()
)
_TEAM_SUMS = select(
    _TEAM_SUMS_BY_ID.c.team_id, _TEAMS.c.name, _TEAM_SUMS_BY_ID.c.points, _TEAM_SUMS_BY_ID.c.people
).select_from(_TEAM_SUMS_BY_ID.join(_TEAMS, _TEAMS.c.id == _TEAM_SUMS_BY_ID.c.team_id))


# Kept under the `totals` token, which team names move too: 排行 班组 sums a period's totals by team
# (about 8 ms at 10,000 members), for this period and the last.
_KEPT_TEAMS: generations.Kept[tuple[TeamSum, ...]] = generations.Kept(generations.TOTALS, size=32)


def team_sums(session: Session, period: str, category: str) -> list[TeamSum]:
    """Every team with points in the period and category, in no particular order; summed along the
    (period, category, team) index, once per change of the totals or of a team."""

    def read() -> tuple[TeamSum, ...]:
        rows = session.connection().execute(_TEAM_SUMS, {"period": period, "category": category})
        return tuple(TeamSum(int(i), n, int(p), int(c)) for i, n, p, c in rows)

    return list(_KEPT_TEAMS.get(session, lambda: (period, category), read))


# -- branches ---------------------------------------------------------------------------------------


class BranchPoints(NamedTuple):
    branch_id: int
    name: str
    points_x100: int  # the sum of its members' points (only of the given statuses, when asked)
    people: int  # its active members whose political status is one of the given statuses
    branch_x100: int  # points given to the branch as a whole in the period (0 unless asked for)


_ALL_BRANCHES = select(_B.id, _B.name).order_by(_B.id)
_BRANCH_SUMS = select(_T.branch_id, func.sum(_T.points_x100)).where(_IN_PERIOD).group_by(_T.branch_id)
_BRANCH_SUMS_OF_STATUSES = (
    select(_T.branch_id, func.sum(_T.points_x100))
    .select_from(_TOTALS)
    .join(_MEMBERS, _M.id == _T.member_id)
    .where(_IN_PERIOD, _M.political_status.in_(bindparam("statuses", expanding=True)))
    .group_by(_T.branch_id)
)
_HEADS = (
    select(_M.branch_id, func.count())
    .where(_M.active.is_(True), _M.political_status.in_(bindparam("statuses", expanding=True)))
    .group_by(_M.branch_id)
)
_BRANCH_ITEMS = select(_BT.branch_id, _BT.points_x100).where(_BT.period == bindparam("period"))


def branch_points(
    session: Session,
    period: str,
    category: str,
    statuses: Sequence[str],
    *,
    only_statuses: bool,
    branch_items: bool,
) -> list[BranchPoints]:
    """Every branch, by id, with what its score is made of: its members' points in the period and
    category (only of members whose political status is in `statuses` when `only_statuses`), how many
    active members with those statuses it has, and (when `branch_items`) the points given to the branch
    as a whole in the period."""
    conn = session.connection()
    in_period: dict[str, Any] = {"period": period, "category": category}
    if only_statuses:
        sums = dict(conn.execute(_BRANCH_SUMS_OF_STATUSES, {**in_period, "statuses": list(statuses)}).all())
    else:
        sums = dict(conn.execute(_BRANCH_SUMS, in_period).all())
    heads = dict(conn.execute(_HEADS, {"statuses": list(statuses)}).all())
    extra = dict(conn.execute(_BRANCH_ITEMS, {"period": period}).all()) if branch_items else {}
    return [
        BranchPoints(int(i), name, int(sums.get(i) or 0), int(heads.get(i) or 0), int(extra.get(i) or 0))
        for i, name in conn.execute(_ALL_BRANCHES)
    ]
