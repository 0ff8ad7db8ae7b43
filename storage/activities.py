"""Activities (主题教育, 宣讲, 我来阅读 …): each an item `#N` with its time, place, scope and sign-in
code; who signed in (once each); leave requests (items decided by the organiser); and the figures
per activity and per branch.

Signing in is the heaviest load the bot sees (a whole branch within minutes), so its statements are
built once with bindparams and run through Core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Index, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.items import Item, of_item
from storage.models import Branch, Member, Team, ts
from storage.prebuilt import Prebuilt
from storage.vocabulary import ItemState

ACTIVITY_KIND = "活动"
LEAVE_KIND = "活动请假"

WORKSHOP, BRANCH, TEAM = "workshop", "branch", "team"  # Activity.scope


class Activity(SQLModel, table=True):
    """An announced activity; the item with the same id holds its name (title), organiser (owner)
    and branch. Sign-in is open in [opens_at, closes_at)."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_code_closes", "code", "closes_at"),
        Index("ix_activities_starts_at", "starts_at"),  # a quarter's activities (我的, 党建考评)
        Index("ix_activities_reported_closes", "reported", "closes_at"),  # the tick's reports due
        Index("ix_activities_closes", "closes_at"),  # open for sign-in now (签到 without a code)
    )
    id: int = Field(foreign_key="items.id", primary_key=True)
    name: str
    type: str
    starts_at: datetime = ts(nullable=False)  # type: ignore[assignment]
    ends_at: datetime = ts(nullable=False)  # type: ignore[assignment]
    opens_at: datetime = ts(nullable=False)  # type: ignore[assignment]
    closes_at: datetime = ts(nullable=False)  # type: ignore[assignment]
    place: str = ""
    points_x100: int = 0  # per attendee
    organiser_points_x100: int = 0
    indicator: str = ""
    category: str = ""
    organiser_id: int = Field(foreign_key="members.id")
    scope: str = BRANCH  # workshop | branch | team
    scope_id: int | None = None  # the branch's or team's id
    scope_name: str = ""
    code: str  # 4 digits, unique among activities whose sign-in has not closed
    reminded: bool = False
    reported: bool = False


class Attendance(SQLModel, table=True):
    """One sign-in: at most one per member and activity (the primary key holds it)."""

    __tablename__ = "attendances"
    activity_id: int = Field(foreign_key="activities.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    at: datetime = ts(nullable=False)  # type: ignore[assignment]
    in_scope: bool = True
    points_x100: int = 0


class ActivityLeave(SQLModel, table=True):
    """A leave request for an activity; the item with the same id holds its state and decision."""

    __tablename__ = "activity_leaves"
    __table_args__ = (Index("ix_activity_leaves_activity", "activity_id", "member_id"),)
    id: int = Field(foreign_key="items.id", primary_key=True)
    activity_id: int = Field(foreign_key="activities.id")
    member_id: int = Field(foreign_key="members.id")
    reason: str = ""


_ACT = Activity.__table__.c  # type: ignore[attr-defined]
_ATT = Attendance.__table__.c  # type: ignore[attr-defined]
_I = Item.__table__.c  # type: ignore[attr-defined]
_M = Member.__table__.c  # type: ignore[attr-defined]

# Built once: these run for every sign-in.
_BY_CODE = (
    select(Activity)
    .join(Item.__table__, _I.id == _ACT.id)  # type: ignore[attr-defined]
    .where(
        _ACT.code == bindparam("code"),
        _ACT.closes_at > bindparam("since"),
        _I.status == ItemState.APPROVED,
    )
    .order_by(_ACT.starts_at.desc())
    .limit(1)
)
_SIGNED = select(_ATT.at).where(
    _ATT.activity_id == bindparam("activity"), _ATT.member_id == bindparam("member")
)
_SIGN = insert(Attendance.__table__)  # type: ignore[attr-defined]
_OPEN_CODES = select(_ACT.code).where(_ACT.closes_at > bindparam("now"))


def by_code(session: Session, code: str, since: datetime) -> Activity | None:
    """The live activity with sign-in code `code` whose sign-in closes after `since` (the newest)."""
    return session.execute(_BY_CODE, {"code": code, "since": since}).scalars().first()


def signed_at(session: Session, activity_id: int, member_id: int) -> datetime | None:
    """When the member signed in to the activity, or None."""
    row = session.connection().execute(_SIGNED, {"activity": activity_id, "member": member_id}).first()
    return row[0] if row else None


def sign_in(
    session: Session, activity_id: int, member_id: int, at: datetime, in_scope: bool, points_x100: int
) -> None:
    session.connection().execute(
        _SIGN,
        {
            "activity_id": activity_id,
            "member_id": member_id,
            "at": at,
            "in_scope": in_scope,
            "points_x100": points_x100,
        },
    )


def codes_in_use(session: Session, now: datetime) -> set[str]:
    """Sign-in codes of activities whose sign-in has not closed yet."""
    return set(session.connection().execute(_OPEN_CODES, {"now": now}).scalars())


# An activity not voided: its item read by primary key, so that the statements of the five-minute
# tick start from the activities, not from every approved item of the workshop (~200 ms each at a
# million items).
_APPROVED = of_item(_I.status, _ACT.id) == ItemState.APPROVED


def live(session: Session, now: datetime) -> list[Activity]:
    """Activities (not voided) whose sign-in window holds `now`, by start. A few at most: sorted here,
    since with an ORDER BY SQLite walked every activity along the start's index instead of finding
    the open ones along the close's."""
    found = session.execute(
        select(Activity).where(Activity.opens_at <= now, Activity.closes_at > now, _APPROVED)
    ).scalars()
    return sorted(found, key=lambda a: a.starts_at)


def starting_between(session: Session, lo: datetime, hi: datetime) -> list[Activity]:
    """Live activities starting in (lo, hi] not reminded yet."""
    return list(
        session.execute(
            select(Activity)
            .where(
                Activity.starts_at > lo,
                Activity.starts_at <= hi,
                Activity.reminded.is_(False),  # type: ignore[attr-defined]
                _APPROVED,
            )
            .order_by(Activity.starts_at)
        ).scalars()
    )


def ended_unreported(session: Session, now: datetime) -> list[Activity]:
    """Live activities whose sign-in has closed and whose organiser has not had the report."""
    return list(
        session.execute(
            select(Activity)
            .where(
                Activity.closes_at <= now,
                Activity.reported.is_(False),  # type: ignore[attr-defined]
                _APPROVED,
            )
            .order_by(Activity.ends_at)
        ).scalars()
    )


def claim_report(session: Session, activity_id: int) -> bool:
    """Mark the activity reported unless it already is; True for the one caller that marked it (a
    conditional update, so of two bot processes only one sends the report and books the organiser)."""
    result = session.execute(
        update(Activity)
        .where(Activity.id == activity_id, Activity.reported.is_(False))  # type: ignore[attr-defined]
        .values(reported=True)
    )
    return bool(getattr(result, "rowcount", 0))


def mark(session: Session, activity_id: int, *, reminded: bool = False, reported: bool = False) -> None:
    values = {k: True for k, v in (("reminded", reminded), ("reported", reported)) if v}
    if values:
        session.execute(update(Activity).where(Activity.id == activity_id).values(**values))


@dataclass(frozen=True, slots=True)
class Invitee:
    """A member in an activity's scope, with their team's name (the report groups by team)."""

    member_id: int
    userid: str
    name: str
    team: str
    branch_id: int | None


def scope_members(session: Session, scope: str, scope_id: int | None) -> list[Invitee]:
    """Active members an activity of this scope is for: the workshop, a branch or a team."""
    where = [_M.active.is_(True)]
    if scope == BRANCH:
        where.append(_M.branch_id == scope_id)
    elif scope == TEAM:
        where.append(_M.team_id == scope_id)
    rows = session.execute(
        select(_M.id, _M.userid, _M.name, Team.name, _M.branch_id)
        .select_from(Member.__table__)  # type: ignore[attr-defined]
        .outerjoin(Team, Team.id == _M.team_id)
        .where(*where)
        .order_by(_M.id)
    ).all()
    return [Invitee(r[0], r[1], r[2], r[3] or "", r[4]) for r in rows]


def attendances(session: Session, activity_id: int) -> list[tuple[Attendance, str, str]]:
    """(sign-in, name, team) for everyone who signed in, in order."""
    rows = session.execute(
        select(Attendance, Member.name, Team.name)
        .join(Member, Member.id == Attendance.member_id)
        .outerjoin(Team, Team.id == Member.team_id)
        .where(Attendance.activity_id == activity_id)
        .order_by(Attendance.at, Attendance.member_id)
    ).all()
    return [(r[0], r[1], r[2] or "") for r in rows]


def leaves(session: Session, activity_id: int) -> list[tuple[ActivityLeave, str]]:
    """(leave request, its item state) for an activity."""
    rows = session.execute(
        select(ActivityLeave, Item.status)
        .join(Item, Item.id == ActivityLeave.id)
        .where(ActivityLeave.activity_id == activity_id)
        .order_by(ActivityLeave.id)
    ).all()
    return [(r[0], r[1]) for r in rows]


def leave_of(session: Session, activity_id: int, member_id: int) -> tuple[int, str] | None:
    """(item id, state) of the member's newest leave request for the activity that is not withdrawn."""
    row = session.execute(
        select(ActivityLeave.id, Item.status)
        .join(Item, Item.id == ActivityLeave.id)
        .where(
            ActivityLeave.activity_id == activity_id,
            ActivityLeave.member_id == member_id,
            Item.status.in_([ItemState.PENDING, ItemState.APPROVED]),  # type: ignore[attr-defined]
        )
        .order_by(ActivityLeave.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else None


@dataclass(frozen=True)
class MyActivity:
    """One line of 我的's activities: what, when, and when I signed in (None: not yet)."""

    id: int
    name: str
    starts_at: datetime
    closes_at: datetime
    signed_at: datetime | None


_MEMBER = Member.__table__.c  # type: ignore[attr-defined]
_MY_SIGN_IN = (
    select(_ATT.at)
    .where(_ATT.activity_id == _ACT.id, _ATT.member_id == bindparam("member"))
    .scalar_subquery()
)
# Built once: it runs on every 我的 (docs/architecture.md, "The hot path").
_MINE = Prebuilt(
    select(_ACT.id, _ACT.name, _ACT.starts_at, _ACT.closes_at, _MY_SIGN_IN)
    .select_from(Activity.__table__)
    .join(Member.__table__, _MEMBER.id == bindparam("member"))
    .where(
        _ACT.starts_at >= bindparam("lo"),  # ix_activities_starts_at: this quarter's activities only
        _ACT.starts_at < bindparam("hi"),
        _APPROVED,
        (_ACT.scope == WORKSHOP)
        | ((_ACT.scope == BRANCH) & (_ACT.scope_id == _MEMBER.branch_id))
        | ((_ACT.scope == TEAM) & (_ACT.scope_id == _MEMBER.team_id))
        | (_ACT.organiser_id == _MEMBER.id)
        | _MY_SIGN_IN.is_not(None),
    )
    .order_by(_ACT.starts_at)
)


def mine(session: Session, member_id: int, lo: datetime, hi: datetime) -> list[MyActivity]:
    """Activities starting in [lo, hi) that the member signed in to, was invited to or organised.
    Invitation is read from the member's current branch and team."""
    rows = _MINE.rows(session, {"member": member_id, "lo": lo, "hi": hi})
    return [MyActivity(*r) for r in rows]


def in_period(session: Session, lo: datetime, hi: datetime, branch_id: int | None) -> list[Activity]:
    """Live activities starting in [lo, hi): all, or those of one branch (its own and workshop-wide)."""
    where = [_ACT.starts_at >= lo, _ACT.starts_at < hi, _APPROVED]
    if branch_id is not None:
        where.append((_ACT.scope == WORKSHOP) | (of_item(_I.branch_id, _ACT.id) == branch_id))
    return list(session.execute(select(Activity).where(*where).order_by(_ACT.starts_at)).scalars())


@dataclass(frozen=True)
class BranchAttendance:
    """A branch's attendance at activities for the 党建考评."""

    expected: int  # invitations, less approved leave
    present: int  # of those, signed in
    excused: int  # approved leave

    @property
    def rate(self) -> float:
        """present / expected, 0.0 when nothing was expected."""
        return self.present / self.expected if self.expected else 0.0


def closed_count(session: Session, lo: datetime, hi: datetime, now: datetime) -> int:
    """How many activities that started in [lo, hi) had their sign-in closed before `now`: what moves
    `branch_attendance` as time passes, with no change to any table (it only grows with `now`)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Activity)
            .where(_ACT.starts_at >= lo, _ACT.starts_at < hi, _ACT.closes_at <= now)
        ).scalar_one()
    )


def branch_attendance(
    session: Session, lo: datetime, hi: datetime, now: datetime
) -> dict[int, BranchAttendance]:
    """Per branch id, for activities (not voided) that started in [lo, hi) and whose sign-in closed
    before `now`:

    - `expected`: invitations of the branch's active members (each member once per activity whose
      scope holds them: the workshop, their branch or their team, read from their current branch and
      team), less those on approved leave for it and the organiser;
    - `present`: of those, the ones who signed in;
    - `excused`: invitations excused by approved leave;
    - `rate` (property): present / expected.

    Sign-ins from outside an activity's scope count nowhere. Branches with no invitation are absent."""
    acts = [
        a
        for a in session.execute(
            select(Activity).where(
                _ACT.starts_at >= lo,
                _ACT.starts_at < hi,
                _ACT.closes_at <= now,
                _APPROVED,
            )
        ).scalars()
    ]
    if not acts:
        return {}
    members = session.execute(select(_M.id, _M.branch_id, _M.team_id).where(_M.active.is_(True))).all()
    ids = [a.id for a in acts]
    present = set(
        session.execute(
            select(_ATT.activity_id, _ATT.member_id).where(_ATT.activity_id.in_(ids), _ATT.in_scope.is_(True))
        ).all()
    )
    excused = set(
        session.execute(
            select(ActivityLeave.activity_id, ActivityLeave.member_id)
            .join(Item, Item.id == ActivityLeave.id)
            .where(ActivityLeave.activity_id.in_(ids), Item.status == ItemState.APPROVED)  # type: ignore[attr-defined]
        ).all()
    )
    return attendance_figures(
        [(a.id, a.scope, a.scope_id, a.organiser_id) for a in acts],
        [(int(m), b, t) for m, b, t in members],
        present,
        excused,
    )


def attendance_figures(
    acts: Sequence[tuple[int, str, int | None, int]],
    members: Sequence[tuple[int, int | None, int | None]],
    present: set[tuple[int, int]],
    excused: set[tuple[int, int]],
) -> dict[int, BranchAttendance]:
    """`branch_attendance`'s counting. `acts`: (id, scope, scope id, organiser id); `members`: the
    active ones, (id, branch id, team id); `present` and `excused`: (activity id, member id).

    Each activity's invitations are counted per branch from the sizes of its scope (the workshop, a
    branch, a team), and only the organiser, the excused and the present are looked at one by one: a
    year of activities at 10,000 members took seconds when every activity met every member."""
    branch_of = {m: b for m, b, _t in members if b is not None}
    team_of = {m: t for m, b, t in members if b is not None}
    per_branch: dict[int, int] = defaultdict(int)
    per_team: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for member_id, branch_id in branch_of.items():
        per_branch[branch_id] += 1
        team = team_of[member_id]
        if team is not None:
            per_team[team][branch_id] += 1
    figures: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # expected, present, excused
    scopes: dict[int, tuple[str, int | None, int]] = {}
    for activity_id, scope, scope_id, organiser_id in acts:
        scopes[activity_id] = (scope, scope_id, organiser_id)
        if scope == WORKSHOP:
            invited: dict[int, int] = per_branch
        elif scope == BRANCH:
            invited = {scope_id: per_branch[scope_id]} if scope_id in per_branch else {}
        elif scope == TEAM:
            invited = per_team.get(scope_id, {}) if scope_id is not None else {}
        else:
            invited = {}
        for branch_id, n in invited.items():
            figures[branch_id][0] += n
        if _invited(scope, scope_id, organiser_id, branch_of, team_of):
            figures[branch_of[organiser_id]][0] -= 1  # the organiser runs it
    for activity_id, member_id in excused:
        scope, scope_id, organiser_id = scopes.get(activity_id, ("", None, 0))
        if member_id != organiser_id and _invited(scope, scope_id, member_id, branch_of, team_of):
            figures[branch_of[member_id]][0] -= 1
            figures[branch_of[member_id]][2] += 1
    for activity_id, member_id in present - excused:
        scope, scope_id, organiser_id = scopes.get(activity_id, ("", None, 0))
        if member_id != organiser_id and _invited(scope, scope_id, member_id, branch_of, team_of):
            figures[branch_of[member_id]][1] += 1
    return {b: BranchAttendance(e, p, x) for b, (e, p, x) in figures.items() if e or p or x}


def _invited(
    scope: str,
    scope_id: int | None,
    member_id: int,
    branch_of: dict[int, int],
    team_of: dict[int, int | None],
) -> bool:
    """Whether an active member with a branch is in the activity's scope."""
    if member_id not in branch_of:
        return False
    return (
        scope == WORKSHOP
        or (scope == BRANCH and scope_id == branch_of[member_id])
        or (scope == TEAM and scope_id == team_of[member_id])
    )


def count_attendances(session: Session, activity_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Attendance).where(Attendance.activity_id == activity_id)
        ).scalar_one()
    )


def units(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """({branch name: id}, {team name: id}): what an activity's 范围 may name."""
    branches = {r[0]: r[1] for r in session.execute(select(Branch.name, Branch.id)).all()}
    teams = {r[0]: r[1] for r in session.execute(select(Team.name, Team.id)).all()}
    return branches, teams
