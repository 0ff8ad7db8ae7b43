"""以技带岗 and 多能工 records: the three-step training (带教) steps, the history of every skill-level
change, and the named queries behind 技能, 技能 缺口, the 多能工训练表 and the branch assessment.

A member's current level in a post is `storage.models.SkillLevel` (one row per member and post); every
change to it — by import, by 定级, by a passed and confirmed step 3 — is a `SkillChange` row here, so
`技能 成员` can show who set what, when, from which level and why. A training step is an item `#N`
(`storage/items.py`) with a `TrainingStep` row of the same id; it counts once the trainee confirmed
it (the item is `approved`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Date, Index, Text, bindparam, case, func, select, true
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage import generations
from storage.items import Item, of_item
from storage.models import AuditLog, Member, SkillLevel, Team, ts, utcnow
from storage.prebuilt import Prebuilt
from storage.vocabulary import ItemState
from storage.vocabulary import SkillLevel as Level


class TrainingStep(SQLModel, table=True):
    """One step of the three-step method (1 示范, 2 指导, 3 考核) recorded by a coach for a trainee."""

    __tablename__ = "training_steps"
    __table_args__ = (Index("ix_training_steps_trainee_skill", "trainee_id", "skill", "id"),)
    id: int = Field(foreign_key="items.id", primary_key=True)
    trainee_id: int = Field(foreign_key="members.id")
    coach_id: int = Field(foreign_key="members.id")
    skill: str  # the post's configured name
    step: int  # 1, 2 or 3
    attempt: int = 1  # the how-manieth step 2 (or step 3) of this round
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # 点评
    score: float | None = None  # step 3: 0–100 (合格 = 100, 不合格 = 0)
    passed: bool | None = None  # step 3 only
    reminded_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]


class TrainingPlan(SQLModel, table=True):
    """轮训: a rotation-training plan (an item `#N` with no owner, opened by a team leader), open until
    the trainee passes step 3 of the skill; reminders are sent once at start, halfway and two days
    before it is due."""

    __tablename__ = "training_plans"
    __table_args__ = (Index("ix_training_plans_trainee_skill", "trainee_id", "skill"),)
    id: int = Field(foreign_key="items.id", primary_key=True)
    trainee_id: int = Field(foreign_key="members.id")
    coach_id: int | None = Field(default=None, foreign_key="members.id")
    skill: str
    start: date = Field(sa_column=Column(Date, nullable=False))
    due: date = Field(sa_column=Column(Date, nullable=False))
    cycle_days: int
    reminded: str = ""  # which reminders went out: "start", "half", "due" separated by commas


class SkillChange(SQLModel, table=True):
    """A change of a member's level in one post: who, when, from → to, why (定级, 带教 or import)."""

    __tablename__ = "skill_level_changes"
    __table_args__ = (Index("ix_skill_level_changes_member", "member_id", "skill", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    skill: str
    from_level: str
    to_level: str
    at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    by_id: int | None = Field(default=None, foreign_key="members.id")  # None: an import
    source: str  # 定级 | 带教 | 导入
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    item_id: int | None = Field(default=None, foreign_key="items.id")  # the step 3 that raised it
    coach_id: int | None = Field(default=None, foreign_key="members.id")


_L = SkillLevel.__table__.c  # type: ignore[attr-defined]
_NEVER = datetime(1900, 1, 1, tzinfo=UTC)  # older than any level: "this post does not lapse"
_S = TrainingStep.__table__.c  # type: ignore[attr-defined]
_P = TrainingPlan.__table__.c  # type: ignore[attr-defined]
_C = SkillChange.__table__.c  # type: ignore[attr-defined]
_I = Item.__table__.c  # type: ignore[attr-defined]
_M = Member.__table__.c  # type: ignore[attr-defined]
_T = Team.__table__.c  # type: ignore[attr-defined]

_LEVEL = select(_L.level).where(_L.member_id == bindparam("member"), _L.skill == bindparam("skill"))
_LEVELS_OF = Prebuilt(select(_L.skill, _L.level, _L.updated_at).where(_L.member_id == bindparam("member")))
_STEPS = (
    select(_S.id, _S.step, _S.attempt, _S.passed, _I.status, _S.coach_id)
    .join(Item.__table__, _I.id == _S.id)  # type: ignore[attr-defined]
    .where(_S.trainee_id == bindparam("member"), _S.skill == bindparam("skill"))
    .order_by(_S.id)
)
_HISTORY = (
    select(
        _C.skill, _C.from_level, _C.to_level, _C.at, _C.by_id, _C.source, _C.reason, _C.coach_id, _C.item_id
    )
    .where(_C.member_id == bindparam("member"))
    .order_by(_C.at.desc(), _C.id.desc())
)
_NAMES = select(_M.name).where(_M.active.is_(True)).order_by(_M.id)


def level(session: Session, member_id: int, skill: str) -> str:
    """The member's current level in `skill` ("0" when none is recorded)."""
    found = session.connection().execute(_LEVEL, {"member": member_id, "skill": skill}).scalar()
    return str(found) if found is not None else Level.UNTRAINED.value


def levels_of(session: Session, member_id: int) -> dict[str, tuple[str, datetime]]:
    """Every post where the member holds a recorded level: skill → (level, since when)."""
    rows = _LEVELS_OF.rows(session, {"member": member_id})
    return {r[0]: (r[1], r[2]) for r in rows}


def set_level(
    session: Session,
    member_id: int,
    skill: str,
    to_level: str,
    at: datetime,
    *,
    by_id: int | None,
    source: str,
    reason: str = "",
    item_id: int | None = None,
    coach_id: int | None = None,
    actor: str = "",
    subject: str = "",
) -> str:
    """Set a level, recording the change and an audit line; returns the level it had before."""
    current = session.get(SkillLevel, (member_id, skill))
    before = current.level if current is not None else Level.UNTRAINED.value
    if current is None:
        session.add(
            SkillLevel(member_id=member_id, skill=skill, level=to_level, updated_at=at, source=source)
        )
    else:
        current.level, current.updated_at, current.source = to_level, at, source
    session.add(
        SkillChange(
            member_id=member_id,
            skill=skill,
            from_level=before,
            to_level=to_level,
            at=at,
            by_id=by_id,
            source=source,
            reason=reason,
            item_id=item_id,
            coach_id=coach_id,
        )
    )
    session.add(
        AuditLog(
            at=at,
            actor=actor or str(by_id or ""),
            action=f"skill.{source}",
            subject=subject,
            detail=f"{skill}: {before} → {to_level}" + (f"（{reason}）" if reason else ""),
        )
    )
    session.flush()
    return before


@dataclass(frozen=True, slots=True)
class StepRow:
    id: int
    step: int
    attempt: int
    passed: bool | None
    status: str
    coach_id: int


def steps(session: Session, member_id: int, skill: str) -> list[StepRow]:
    """Every step recorded for the member in `skill`, oldest first, with the state of its item."""
    rows = session.connection().execute(_STEPS, {"member": member_id, "skill": skill}).all()
    return [StepRow(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Change:
    skill: str
    from_level: str
    to_level: str
    at: datetime
    by_id: int | None
    source: str
    reason: str
    coach_id: int | None
    item_id: int | None


def history(session: Session, member_id: int) -> list[Change]:
    """Every level change of the member, newest first."""
    return [Change(*r) for r in session.connection().execute(_HISTORY, {"member": member_id}).all()]


def member_names(session: Session) -> list[str]:
    """The names of active members, for a did-you-mean when a typed name matches nobody."""
    return list(session.connection().execute(_NAMES).scalars())


def member_post(session: Session, member_id: int) -> str:
    """The member's own post as imported ("" when none)."""
    found = session.get(Member, member_id)
    return found.post if found is not None else ""


_TEAM_ID = select(_T.id).where(_T.name == bindparam("name"))  # built once: 技能 班组 asks it every time


def team_id(session: Session, name: str) -> int | None:
    return session.connection().execute(_TEAM_ID, {"name": name}).scalar_one_or_none()


def team_names(session: Session) -> list[str]:
    return list(session.execute(select(_T.name).order_by(_T.id)).scalars())


@dataclass(frozen=True, slots=True)
class Row:
    """One person's row of the 多能工训练表."""

    id: int
    userid: str
    name: str
    post: str
    team: str
    levels: dict[str, str]  # post → level, as recorded
    since: dict[str, datetime] = field(default_factory=dict)  # post → when the level was last set
    expired: dict[str, str] = field(default_factory=dict)  # post → a level that lapsed (re-certification)


# A team's or branch's matrix is asked for often (技能 班组, 技能 缺口, the gaps job) and changes only
# when a level, a member or a team does: it is kept under the `skills` generation token
# (storage/generations.py). Rows are never changed in place (`handlers.skills.effective` replaces them).
_KEPT: generations.Kept[tuple[Row, ...]] = generations.Kept(generations.SKILLS, size=64)


def matrix(session: Session, *, team_id: int | None = None, branch_id: int | None = None) -> tuple[Row, ...]:
    """The active members of a team, a branch or (neither) the workshop with their levels per post: the
    kept tuple itself, the same object until the skills change (`handlers.skills` keeps what it
    computes from it by its identity)."""
    return _KEPT.get(session, lambda: (team_id, branch_id), lambda: _matrix(session, team_id, branch_id))


def _matrix(session: Session, team_id: int | None, branch_id: int | None) -> tuple[Row, ...]:
    # The levels are joined to the same members, not asked for by a list of their ids: for a team of
    # 200 that IN list took 10 ms of SQLite's time against 4 for both statements together.
    where = [_M.active.is_(True)]
    if team_id is not None:
        where.append(_M.team_id == team_id)
    if branch_id is not None:
        where.append(_M.branch_id == branch_id)
    people = session.execute(
        select(_M.id, _M.userid, _M.name, _M.post, _T.name)
        .select_from(Member.__table__)  # type: ignore[attr-defined]
        .outerjoin(Team.__table__, _T.id == _M.team_id)  # type: ignore[attr-defined]
        .where(*where)
        .order_by(_M.id)
    ).all()
    levels: dict[int, dict[str, str]] = {p[0]: {} for p in people}
    since: dict[int, dict[str, datetime]] = {p[0]: {} for p in people}
    if people:
        for member_id, skill, lvl, at in session.execute(
            select(_L.member_id, _L.skill, _L.level, _L.updated_at)
            .join(Member.__table__, _M.id == _L.member_id)  # type: ignore[attr-defined]
            .where(*where)
        ):
            levels[member_id][skill] = lvl
            since[member_id][skill] = at
    return tuple(Row(p[0], p[1], p[2], p[3] or "", p[4] or "", levels[p[0]], since[p[0]]) for p in people)


def unconfirmed_steps(session: Session, older_than: datetime) -> list[tuple[int, int, str, int]]:
    """Steps still waiting for the trainee's confirmation since before `older_than` and not yet
    reminded: (item id, trainee id, skill, step)."""
    stmt = (
        select(_S.id, _S.trainee_id, _S.skill, _S.step)
        .join(Item.__table__, _I.id == _S.id)  # type: ignore[attr-defined]
        .where(_I.status == ItemState.PENDING, _I.created_at <= older_than, _S.reminded_at.is_(None))
        .order_by(_S.id)
    )
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(stmt)]


# Built once: it runs on every 我的.
_UNCONFIRMED = Prebuilt(
    select(_S.id, of_item(_I.title, _S.id))
    .where(_S.trainee_id == bindparam("trainee"), of_item(_I.status, _S.id) == ItemState.PENDING)
    .order_by(_S.id)
)


def unconfirmed_for(session: Session, trainee_id: int) -> list[tuple[int, str]]:
    """Steps waiting for this trainee's confirmation: (item id, title), oldest first."""
    return [(r[0], r[1]) for r in _UNCONFIRMED.rows(session, {"trainee": trainee_id})]


def mark_reminded(session: Session, item_ids: Sequence[int], at: datetime) -> None:
    for item_id in item_ids:
        step = session.get(TrainingStep, item_id)
        if step is not None:
            step.reminded_at = at


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A 带教记录 line for the workbook."""

    id: int
    created_at: datetime
    trainee: str
    coach: str
    skill: str
    step: int
    attempt: int
    comment: str
    score: float | None
    passed: bool | None
    status: str
    decided_at: datetime | None


def step_records(
    session: Session, lo: datetime, hi: datetime, branch_id: int | None = None
) -> list[StepRecord]:
    """Training steps recorded in [lo, hi), in one branch (the trainee's) or all, oldest first."""
    trainee, coach = Member.__table__.alias("trainee"), Member.__table__.alias("coach")  # type: ignore[attr-defined]
    stmt = (
        select(
            _S.id,
            _I.created_at,
            trainee.c.name,
            coach.c.name,
            _S.skill,
            _S.step,
            _S.attempt,
            _S.comment,
            _S.score,
            _S.passed,
            _I.status,
            _I.decided_at,
        )
        .join(Item.__table__, _I.id == _S.id)  # type: ignore[attr-defined]
        .join(trainee, trainee.c.id == _S.trainee_id)
        .join(coach, coach.c.id == _S.coach_id)
        .where(_I.created_at >= lo, _I.created_at < hi)
        .order_by(_S.id)
    )
    if branch_id is not None:
        stmt = stmt.where(_I.branch_id == branch_id)
    return [StepRecord(*tuple(r)) for r in session.execute(stmt).all()]


@dataclass(frozen=True, slots=True)
class BranchCoverage:
    """Training coverage of one branch (see `training_coverage`)."""

    branch_id: int
    posts: int  # posts of the catalogue
    covered: int  # posts with at least their ideal number of qualified members in the branch
    members: int  # active members with a post of their own
    at_target: int  # of those, members at or above their own post's target level
    coverage: float  # covered / posts, 0.0–1.0 (0.0 when the catalogue is empty)


def training_coverage(
    session: Session,
    ideal: dict[str, int],
    own_target: str,
    qualified_from: str = Level.U,
    *,
    lapse_days: dict[str, int] | None = None,
    at: datetime | None = None,
) -> dict[int, BranchCoverage]:
    """Per branch, the 多能工 coverage measure for the quarterly 党建考评.

    `ideal` maps every post of the catalogue to its ideal qualified count (`skills.posts[].
    ideal_qualified`); a member is *qualified* in a post when their current level there ranks at or
    above `qualified_from` (U by default, i.e. U or O). Returns, for every branch with members, a
    `BranchCoverage` whose `coverage` is the share (0.0–1.0) of the catalogue's posts in which the
    branch's active members hold at least the ideal number of qualified people; `members`/`at_target`
    count the branch's active members who have an own post (`members.post`) and those whose level in
    it ranks at or above `own_target`. Levels of posts not in `ideal` are ignored. With `lapse_days`
    (post → `recert_days`) and `at`, a level set more than that many days before `at` has lapsed and
    counts as untrained, as it does in 技能 缺口.
    """
    # Counted by SQLite (grouped joins over the levels' table), not row by row in Python: at 10,000
    # members this part of 排行 支部 went from ~300 ms to a few.
    ranks = {lvl.value: lvl.rank for lvl in Level}
    floor, target_rank = ranks[str(qualified_from)], ranks[str(own_target)]
    qualifying = [v for v, r in ranks.items() if r >= floor]
    fresh: Any = true()
    if at is not None and lapse_days:
        # A level set before its post's cutoff has lapsed; posts without recertification never lapse.
        when = {
            skill: bindparam(f"cut_{i}", at - timedelta(days=days), type_=_L.updated_at.type)
            for i, (skill, days) in enumerate(sorted(lapse_days.items()))
        }
        fresh = _L.updated_at >= case(
            when, value=_L.skill, else_=bindparam("never", _NEVER, type_=_L.updated_at.type)
        )
    mine = (_M.active.is_(True), _M.branch_id.is_not(None))
    conn = session.connection()
    qualified: dict[int, dict[str, int]] = {
        int(b): {} for b in conn.execute(select(_M.branch_id).where(*mine).distinct()).scalars()
    }
    # Driven by the levels (one pass) with each holder's branch looked up by primary key: joining
    # from members instead walked the branch index and probed the levels per member, twice as slow.
    branch_of = select(_M.branch_id).where(_M.id == _L.member_id, _M.active.is_(True)).scalar_subquery()
    for branch, skill, n in conn.execute(
        select(branch_of.label("branch"), _L.skill, func.count())
        .where(_L.level.in_(qualifying), _L.skill.in_(list(ideal)), fresh)
        .group_by("branch", _L.skill)
    ):
        if branch is not None and int(branch) in qualified:
            qualified[int(branch)][skill] = int(n)
    has_post = (_M.post.is_not(None), _M.post != "")
    own = dict(
        conn.execute(select(_M.branch_id, func.count()).where(*mine, *has_post).group_by(_M.branch_id)).all()
    )
    if target_rank == 0:
        at_target = own
    else:
        at_own_post = SkillLevel.__table__.join(  # type: ignore[attr-defined]
            Member.__table__, (_M.id == _L.member_id) & (_L.skill == _M.post)
        )
        at_target = dict(
            conn.execute(
                select(_M.branch_id, func.count())
                .select_from(at_own_post)
                .where(
                    *mine, *has_post, _L.level.in_([v for v, r in ranks.items() if r >= target_rank]), fresh
                )
                .group_by(_M.branch_id)
            ).all()
        )
    out: dict[int, BranchCoverage] = {}
    for branch, counts in qualified.items():
        covered = sum(1 for post, need in ideal.items() if counts.get(post, 0) >= need)
        out[branch] = BranchCoverage(
            branch_id=branch,
            posts=len(ideal),
            covered=covered,
            members=int(own.get(branch, 0)),
            at_target=int(at_target.get(branch, 0)),
            coverage=covered / len(ideal) if ideal else 0.0,
        )
    return out


_PLAN_C = TrainingPlan.__table__.c  # type: ignore[attr-defined]
# Built once: it runs on every 我的 (which asks "any open plan of mine?" before loading one).
_HAS_OPEN_PLAN = Prebuilt(
    select(_PLAN_C.id)
    .where(_PLAN_C.trainee_id == bindparam("trainee"), of_item(_I.status, _PLAN_C.id) == ItemState.PENDING)
    .limit(1)
)


def has_open_plan(session: Session, trainee_id: int) -> bool:
    return bool(_HAS_OPEN_PLAN.rows(session, {"trainee": trainee_id}))


def open_plans(
    session: Session, *, trainee_id: int | None = None, skill: str | None = None
) -> list[tuple[TrainingPlan, Item]]:
    """Open (pending) rotation plans, of one trainee and skill or all, oldest first."""
    stmt = (
        select(TrainingPlan, Item)
        .join(Item, Item.id == TrainingPlan.id)  # type: ignore[arg-type]
        .where(Item.status == ItemState.PENDING)  # type: ignore[arg-type]
        .order_by(TrainingPlan.id)  # type: ignore[arg-type]
    )
    if trainee_id is not None:
        stmt = stmt.where(TrainingPlan.trainee_id == trainee_id)  # type: ignore[arg-type]
    if skill is not None:
        stmt = stmt.where(TrainingPlan.skill == skill)  # type: ignore[arg-type]
    return [(r[0], r[1]) for r in session.execute(stmt).all()]


def overdue_plans(session: Session, today: date) -> list[tuple[TrainingPlan, int | None, str]]:
    """(plan, its branch, the trainee's name) for open rotation plans due before `today`, oldest first."""
    stmt = (
        select(TrainingPlan, Item.branch_id, Member.name)
        .join(Item, Item.id == TrainingPlan.id)  # type: ignore[arg-type]
        .join(Member, Member.id == TrainingPlan.trainee_id)  # type: ignore[arg-type]
        .where(Item.status == ItemState.PENDING, TrainingPlan.due < today)  # type: ignore[arg-type]
        .order_by(TrainingPlan.id)  # type: ignore[arg-type]
    )
    return [(r[0], r[1], r[2]) for r in session.execute(stmt).all()]


def levels_in(session: Session, skills: Sequence[str]) -> list[tuple[int, str, str, datetime]]:
    """Every recorded level above untrained in these posts: (member id, skill, level, set at)."""
    if not skills:
        return []
    stmt = (
        select(_L.member_id, _L.skill, _L.level, _L.updated_at)
        .where(_L.skill.in_(list(skills)), _L.level != Level.UNTRAINED.value)
        .order_by(_L.member_id, _L.skill)
    )
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(stmt).all()]


def recorded_pairs(session: Session) -> set[tuple[str, str]]:
    """(userid, skill) of every level recorded, whatever it is."""
    stmt = select(_M.userid, _L.skill).join(Member.__table__, _M.id == _L.member_id)  # type: ignore[attr-defined]
    return {(r[0], r[1]) for r in session.execute(stmt).all()}
