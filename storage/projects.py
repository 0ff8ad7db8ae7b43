"""Tables of 书记项目 — topics (出题), projects (选题), their teams, milestones and progress (答题), and the
closing put to the committee for acceptance (结题) — and the named queries the practice needs.

Topics, projects and closings are items (`storage/items.py`) so they share the one `#N` number space;
their rows here carry the same id. A project's state is never stored: it is read from its closings
(one pending: 待验收; one approved: 已验收; otherwise in progress), so a 退回 or a void reopens it
without a second write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Column, Date, Text, bindparam, func, select
from sqlalchemy.orm import Session, aliased
from sqlmodel import Field, SQLModel

from storage.items import Item, of_item
from storage.models import Branch, MediaFile, Member, ts, utcnow
from storage.prebuilt import Prebuilt
from storage.vocabulary import ItemState


class Topic(SQLModel, table=True):
    """课题: a topic the committee sets (党总支出题), with its background, target and points."""

    __tablename__ = "project_topics"
    id: int = Field(foreign_key="items.id", primary_key=True)
    name: str
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    deadline: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    points_x100: int = 0  # shared by the team when the project is accepted


class Project(SQLModel, table=True):
    """书记项目: a topic taken by a branch secretary (支部书记选题), the first responsible person."""

    __tablename__ = "projects"
    id: int = Field(foreign_key="items.id", primary_key=True)
    topic_id: int = Field(foreign_key="project_topics.id", index=True)
    branch_id: int | None = Field(default=None, foreign_key="branches.id")
    leader_id: int = Field(foreign_key="members.id", index=True)  # the projects 我的 lists


class ProjectMember(SQLModel, table=True):
    """A member of a project team (项目小组), besides its leader."""

    __tablename__ = "project_members"
    project_id: int = Field(foreign_key="projects.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True, index=True)


class Milestone(SQLModel, table=True):
    """里程碑: a dated step of a project, numbered 1, 2, … in date order when set."""

    __tablename__ = "project_milestones"
    project_id: int = Field(foreign_key="projects.id", primary_key=True)
    seq: int = Field(primary_key=True)
    due: date = Field(sa_column=Column(Date, nullable=False))
    title: str
    done_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    done_by: int | None = Field(default=None, foreign_key="members.id")


class Progress(SQLModel, table=True):
    """进展: what a team member reported on a project; photos sent right after are filed under it."""

    __tablename__ = "project_progress"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    member_id: int = Field(foreign_key="members.id")
    at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Closing(SQLModel, table=True):
    """结题: a project's outcome against its target, put to the committee for acceptance (验收)."""

    __tablename__ = "project_closings"
    id: int = Field(foreign_key="items.id", primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class ClosingShare(SQLModel, table=True):
    """What an accepted closing pays one team member (x100), fixed when the closing is submitted."""

    __tablename__ = "project_closing_shares"
    closing_id: int = Field(foreign_key="project_closings.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    role: str = "成员"  # 第一责任人 | 成员
    share_x100: int = 0


# -- reading one project ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamMember:
    id: int
    userid: str
    name: str
    leader: bool


def team(session: Session, project_id: int) -> list[TeamMember]:
    """The project's leader first, then its members in the order they were added."""
    p = session.get(Project, project_id)
    if p is None:
        return []
    leader = session.get(Member, p.leader_id)
    rows = session.execute(
        select(Member.id, Member.userid, Member.name)
        .join(ProjectMember, ProjectMember.member_id == Member.id)
        .where(ProjectMember.project_id == project_id, Member.id != p.leader_id)
        .order_by(Member.name, Member.id)
    ).all()
    head = [TeamMember(leader.id, leader.userid, leader.name, True)] if leader and leader.id else []
    return head + [TeamMember(int(i), u, n, False) for i, u, n in rows]


def set_members(session: Session, project_id: int, member_ids: Sequence[int]) -> None:
    """Replace the project's members (the leader is never one of these rows)."""
    for row in session.execute(select(ProjectMember).where(ProjectMember.project_id == project_id)).scalars():
        session.delete(row)
    session.flush()
    session.add_all(ProjectMember(project_id=project_id, member_id=m) for m in dict.fromkeys(member_ids))
    session.flush()


def milestones(session: Session, project_id: int) -> list[Milestone]:
    return list(
        session.execute(
            select(Milestone).where(Milestone.project_id == project_id).order_by(Milestone.seq)
        ).scalars()
    )


def set_milestones(session: Session, project_id: int, steps: Sequence[tuple[date, str]]) -> None:
    """Replace the milestones not yet done with `steps`; the done ones stay, and all are renumbered by
    date (done first on a tie)."""
    kept = [m for m in milestones(session, project_id) if m.done_at is not None]
    for m in milestones(session, project_id):
        session.delete(m)
    session.flush()
    rows = [(m.due, 0, m.title, m.done_at, m.done_by) for m in kept] + [
        (d, 1, t, None, None) for d, t in steps
    ]
    rows.sort(key=lambda r: (r[0], r[1]))
    session.add_all(
        Milestone(project_id=project_id, seq=i, due=d, title=t, done_at=at, done_by=by)
        for i, (d, _, t, at, by) in enumerate(rows, start=1)
    )
    session.flush()


def progress(session: Session, project_id: int, limit: int = 5) -> list[tuple[Progress, str, int]]:
    """(entry, author's name, photos) for the project's newest progress entries, newest first."""
    rows = session.execute(
        select(Progress, Member.name)
        .join(Member, Member.id == Progress.member_id)
        .where(Progress.project_id == project_id)
        .order_by(Progress.at.desc(), Progress.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    ).all()
    refs = {f"progress:{p.id}": p.id for p, _ in rows}
    photos = dict(
        session.execute(
            select(MediaFile.ref, func.count()).where(MediaFile.ref.in_(refs)).group_by(MediaFile.ref)
        ).all()
    )
    return [(p, name, int(photos.get(f"progress:{p.id}", 0))) for p, name in rows]


_LATEST_PROGRESS = (
    select(Progress.id)
    .where(Progress.member_id == bindparam("member"), Progress.at >= bindparam("since"))
    .order_by(Progress.at.desc(), Progress.id.desc())  # type: ignore[union-attr]
    .limit(1)
)


def latest_progress_since(session: Session, member_id: int, since: datetime) -> int | None:
    """The member's newest progress entry written after `since` (a photo sent now attaches to it)."""
    row = session.execute(_LATEST_PROGRESS, {"member": member_id, "since": since}).first()
    return int(row[0]) if row else None


def closings(session: Session, project_id: int) -> list[Item]:
    """The project's closing items, newest first."""
    return list(
        session.execute(
            select(Item)
            .join(Closing, Closing.id == Item.id)
            .where(Closing.project_id == project_id)
            .order_by(Item.id.desc())
        ).scalars()
    )


def shares(session: Session, closing_id: int) -> list[ClosingShare]:
    """What a closing pays each member, the leader first."""
    rows = session.execute(select(ClosingShare).where(ClosingShare.closing_id == closing_id)).scalars()
    return sorted(rows, key=lambda s: (s.role != "第一责任人", s.member_id))


# -- topics -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    project_id: int
    branch: str
    leader: str
    accepted: bool


def projects_of_topic(session: Session, topic_id: int) -> list[Taken]:
    """Who took a topic: each project with its branch, leader and whether it was accepted."""
    accepted = (
        select(Closing.project_id)
        .join(Item, Item.id == Closing.id)
        .where(Item.status == ItemState.APPROVED)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Project.id, Branch.name, Member.name, Project.id.in_(accepted))  # type: ignore[attr-defined]
        .outerjoin(Branch, Branch.id == Project.branch_id)
        .join(Member, Member.id == Project.leader_id)
        .where(Project.topic_id == topic_id)
        .order_by(Project.id)
    ).all()
    return [Taken(int(i), b or "", n, bool(a)) for i, b, n, a in rows]


def open_topics(session: Session, today: date) -> list[Topic]:
    """Topics whose deadline has not passed (or that have none), newest first."""
    rows = session.execute(
        select(Topic)
        .join(Item, Item.id == Topic.id)
        .where(Item.status == ItemState.APPROVED)
        .where((Topic.deadline.is_(None)) | (Topic.deadline >= today))  # type: ignore[union-attr]
        .order_by(Topic.id.desc())
    ).scalars()
    return list(rows)


# -- reminders --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenMilestone:
    project_id: int
    topic: str
    seq: int
    due: date
    title: str


def _open_projects() -> object:
    """Projects with no pending or approved closing: still being worked on."""
    return (
        select(Closing.project_id)
        .join(Item, Item.id == Closing.id)
        .where(Item.status.in_((ItemState.PENDING, ItemState.APPROVED)))
        .scalar_subquery()
    )


def milestones_due(session: Session, until: date) -> list[OpenMilestone]:
    """Milestones not done, due on or before `until`, of projects in progress, by date."""
    rows = session.execute(
        select(Milestone.project_id, Topic.name, Milestone.seq, Milestone.due, Milestone.title)
        .join(Project, Project.id == Milestone.project_id)
        .join(Topic, Topic.id == Project.topic_id)
        .where(
            Milestone.done_at.is_(None),  # type: ignore[union-attr]
            Milestone.due <= until,
            Project.id.not_in(_open_projects()),  # type: ignore[attr-defined,arg-type]
        )
        .order_by(Milestone.due, Milestone.project_id, Milestone.seq)
    ).all()
    return [OpenMilestone(int(p), t, int(s), d, title) for p, t, s, d, title in rows]


def idle_projects(session: Session) -> list[tuple[int, str, datetime]]:
    """(project id, topic name, the last sign of life: newest progress or when it was taken) for every
    project in progress."""
    last = (
        select(Progress.project_id, func.max(Progress.at).label("at"))
        .group_by(Progress.project_id)
        .subquery()
    )
    rows = session.execute(
        select(Project.id, Topic.name, func.coalesce(last.c.at, Item.created_at))
        .join(Topic, Topic.id == Project.topic_id)
        .join(Item, Item.id == Project.id)
        .outerjoin(last, last.c.project_id == Project.id)
        .where(Project.id.not_in(_open_projects()))  # type: ignore[attr-defined,arg-type]
        .order_by(Project.id)
    ).all()
    return [(int(i), t, at) for i, t, at in rows]


# -- the assessment and the workbook ----------------------------------------------------------------


def accepted_per_branch(session: Session, lo: datetime, hi: datetime) -> dict[int, int]:
    """Branch id → projects accepted (closing approved, not voided) with the decision in [lo, hi)."""
    rows = session.execute(
        select(Project.branch_id, func.count(func.distinct(Project.id)))
        .join(Closing, Closing.project_id == Project.id)
        # From the closings (a few a year), each one's item by primary key: joining the items let
        # SQLite start from every approved item of the workshop.
        .where(
            of_item(Item.status, Closing.id) == ItemState.APPROVED,
            of_item(Item.decided_at, Closing.id) >= lo,
            of_item(Item.decided_at, Closing.id) < hi,
        )
        .group_by(Project.branch_id)
    ).all()
    return {int(b): int(n) for b, n in rows if b is not None}


@dataclass(frozen=True, slots=True)
class ProjectRow:
    project_id: int
    topic_id: int
    topic: str
    branch: str
    leader: str
    taken: datetime
    milestones: int
    done: int
    last_progress: datetime | None
    state: str  # ItemState of the newest closing, or "" while in progress
    decided_at: datetime | None
    points_x100: int


def project_rows(session: Session, branch_id: int | None) -> list[ProjectRow]:
    """Every project (of one branch, or all), with what the workbook shows about it."""
    started = aliased(Item)
    counts = (
        select(
            Milestone.project_id,
            func.count().label("n"),
            func.count(Milestone.done_at).label("done"),
        )
        .group_by(Milestone.project_id)
        .subquery()
    )
    last = (
        select(Progress.project_id, func.max(Progress.at).label("at"))
        .group_by(Progress.project_id)
        .subquery()
    )
    stmt = (
        select(
            Project.id,
            Topic.id,
            Topic.name,
            Branch.name,
            Member.name,
            started.created_at,
            func.coalesce(counts.c.n, 0),
            func.coalesce(counts.c.done, 0),
            last.c.at,
        )
        .join(Topic, Topic.id == Project.topic_id)
        .join(started, started.id == Project.id)
        .join(Member, Member.id == Project.leader_id)
        .outerjoin(Branch, Branch.id == Project.branch_id)
        .outerjoin(counts, counts.c.project_id == Project.id)
        .outerjoin(last, last.c.project_id == Project.id)
        .order_by(Project.id)
    )
    if branch_id is not None:
        stmt = stmt.where(Project.branch_id == branch_id)
    out = []
    for r in session.execute(stmt).all():
        newest = next(iter(closings(session, int(r[0]))), None)
        paid = (
            sum(s.share_x100 for s in shares(session, newest.id or 0))
            if newest is not None and newest.status == ItemState.APPROVED
            else 0
        )
        out.append(
            ProjectRow(
                int(r[0]),
                int(r[1]),
                r[2],
                r[3] or "",
                r[4],
                r[5],
                int(r[6]),
                int(r[7]),
                r[8],
                newest.status if newest is not None else "",
                newest.decided_at if newest is not None else None,
                paid,
            )
        )
    return out


# Built once, run on the driver's own cursor: it runs on every 我的.
_LED_OR_JOINED = Prebuilt(
    select(Project.id)
    .where(Project.leader_id == bindparam("member"))
    .union(  # type: ignore[arg-type]
        select(ProjectMember.project_id).where(ProjectMember.member_id == bindparam("member"))  # type: ignore[arg-type]
    )
)


def projects_led_or_joined(session: Session, member_id: int) -> list[int]:
    """Ids of the projects a member leads or belongs to, newest first."""
    rows = _LED_OR_JOINED.rows(session, {"member": member_id})
    return sorted({int(r[0]) for r in rows}, reverse=True)


def active_names(session: Session) -> list[str]:
    """Names and userids of active members: the candidates of a did-you-mean."""
    rows = session.execute(select(Member.name, Member.userid).where(Member.active.is_(True))).all()
    return [w for name, userid in rows for w in (name, userid)]
