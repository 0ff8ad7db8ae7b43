"""Tables of the points practice — numbered items, submissions, the ledger, totals, innovations — and
the queries that keep the ledger append-only and the totals in step with it.

Points are stored as whole hundredths (`points_x100`: 250 = 2.5 points) so that sums are exact and
ties are real ties on every database. Totals are kept per member, period key and category in the
same transaction as each entry; rankings and 我的 read them instead of scanning the ledger.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Date, Index, Text, bindparam, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.items import Item
from storage.models import ts, utcnow
from storage.prebuilt import Prebuilt
from storage.queries import insert_one
from storage.vocabulary import ItemState

TOTAL = ""  # the category key of a member's overall total (every category except innovation's own)
INNOVATION = "创新"  # the category of innovation points when they form a ranking of their own


class Submission(SQLModel, table=True):
    """申报: the points side of an item (尽责, 创新, 加分): indicator, day and points.

    Owner, title, state and decision are the item's (`storage/items.py`), shared by every kind.
    """

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_indicator_day", "indicator", "day"),)
    id: int = Field(foreign_key="items.id", primary_key=True)
    indicator: str = ""
    variant: str = ""
    category: str = ""
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    day: date = Field(sa_column=Column(Date, nullable=False))
    points_x100: int = 0


class PointEntry(SQLModel, table=True):
    """积分流水: one append-only ledger line. Corrections are reversal lines; nothing is updated or deleted.

    `member_id` is empty for points given to a branch as a whole (e.g. a 书记项目 accepted).
    """

    __tablename__ = "point_entries"
    __table_args__ = (
        Index("ix_point_entries_member", "member_id", "id"),
        Index("ix_point_entries_member_indicator_day", "member_id", "indicator", "day"),
        Index("ix_point_entries_item", "item_id"),
        Index("ix_point_entries_day", "day"),
    )
    id: int | None = Field(default=None, primary_key=True)
    item_id: int | None = Field(default=None, foreign_key="items.id")
    member_id: int | None = Field(default=None, foreign_key="members.id")
    branch_id: int | None = Field(default=None, foreign_key="branches.id")
    points_x100: int
    category: str
    indicator: str = ""
    day: date = Field(sa_column=Column(Date, nullable=False))  # the day it counts for (periods come from it)
    at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    approver_id: int | None = Field(default=None, foreign_key="members.id")
    kind: str = "entry"  # entry | reversal
    reverses_entry_id: int | None = Field(default=None, foreign_key="point_entries.id")
    note: str = ""


class MemberTotal(SQLModel, table=True):
    """A member's points in one period (`2026W48`, `2026-11`, `2026Q4`, `2026`) and category.

    Category `""` is the overall total. Branch and team are copied from the member on each update so
    that rankings, 我的 and the team table are covered by these indexes and never touch the ledger.
    """

    __tablename__ = "member_totals"
    __table_args__ = (
        Index("ix_member_totals_rank", "period", "category", "points_x100"),
        Index("ix_member_totals_branch_rank", "period", "category", "branch_id", "points_x100"),
        Index("ix_member_totals_team", "period", "category", "team_id", "points_x100"),
    )
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    period: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    points_x100: int = 0
    branch_id: int | None = Field(default=None, foreign_key="branches.id")
    team_id: int | None = Field(default=None, foreign_key="teams.id")


class BranchTotal(SQLModel, table=True):
    """Points given to a branch as a whole, per period (part of the quarterly 党建考评)."""

    __tablename__ = "branch_totals"
    branch_id: int = Field(foreign_key="branches.id", primary_key=True)
    period: str = Field(primary_key=True)
    points_x100: int = 0


class Innovation(SQLModel, table=True):
    """创新成果: one claim of a result at one level. `result_key` identifies the same result across claims."""

    __tablename__ = "innovations"
    id: int = Field(foreign_key="items.id", primary_key=True)
    result_key: str = Field(index=True)
    type: str
    name: str
    level: str
    level_rank: int
    grade: str = ""
    points_x100: int  # the table value for the result; members share it by the split rule
    leader_id: int = Field(foreign_key="members.id")


class InnovationMember(SQLModel, table=True):
    """A member's part in an innovation claim: their full share, and what this claim pays them."""

    __tablename__ = "innovation_members"
    innovation_id: int = Field(foreign_key="innovations.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    role: str = "成员"  # 组长 | 成员
    share_x100: int = 0
    paid_x100: int = 0  # share minus what earlier claims of the same result already paid


# -- the ledger -------------------------------------------------------------------------------------


@functools.cache
def _upsert_statement(dialect: str, table: Any, keys: tuple[str, ...], also: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT DO UPDATE for one row of bound values, built once per table: building and
    compiling it anew for every entry cost more than running it (a sign-in burst measured it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    values = {
        "points_x100": table.c.points_x100 + stmt.excluded.points_x100,
        **{c: stmt.excluded[c] for c in also},
    }
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=values)


def _upsert(
    session: Session,
    model: type[SQLModel],
    keys: Sequence[str],
    rows: list[dict[str, object]],
    also: Sequence[str] = (),
) -> None:
    """Add `points_x100` to existing rows (matched on `keys`) or insert them; `also` columns are
    overwritten."""
    if not rows:
        return
    connection = session.connection()
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _upsert_statement(connection.dialect.name, table, tuple(keys), tuple(also))
    connection.execute(stmt, rows)


def add_entry(
    session: Session,
    *,
    member_id: int | None,
    branch_id: int | None,
    team_id: int | None,
    points_x100: int,
    category: str,
    indicator: str,
    day: date,
    at: datetime,
    periods: Iterable[str],
    item_id: int | None,
    approver_id: int | None,
    note: str = "",
    kind: str = "entry",
    reverses_entry_id: int | None = None,
    in_total: bool = True,
) -> PointEntry:
    """Append one ledger line and move the totals of each period key by the same amount, in one go."""
    entry = PointEntry(
        item_id=item_id,
        member_id=member_id,
        branch_id=branch_id,
        points_x100=points_x100,
        category=category,
        indicator=indicator,
        day=day,
        at=at,
        approver_id=approver_id,
        kind=kind,
        reverses_entry_id=reverses_entry_id,
        note=note,
    )
    entry.id = insert_one(session, entry)
    periods = list(periods)
    if member_id is None:
        if branch_id is not None:
            _upsert(
                session,
                BranchTotal,
                ("branch_id", "period"),
                [{"branch_id": branch_id, "period": p, "points_x100": points_x100} for p in periods],
            )
        return entry
    categories = [category, TOTAL] if in_total else [category]
    _upsert(
        session,
        MemberTotal,
        ("member_id", "period", "category"),
        [
            {
                "member_id": member_id,
                "period": p,
                "category": c,
                "points_x100": points_x100,
                "branch_id": branch_id,
                "team_id": team_id,
            }
            for p in periods
            for c in categories
        ],
        also=("branch_id", "team_id"),
    )
    return entry


def entries_of_item(session: Session, item_id: int) -> list[PointEntry]:
    return list(
        session.execute(
            select(PointEntry).where(PointEntry.item_id == item_id).order_by(PointEntry.id)
        ).scalars()
    )


def unreversed(entries: Sequence[PointEntry]) -> list[PointEntry]:
    """The entries of an item that no reversal line cancels yet."""
    reversed_ids = {e.reverses_entry_id for e in entries if e.kind == "reversal"}
    return [e for e in entries if e.kind == "entry" and e.id not in reversed_ids]


def indicator_usage(
    session: Session, member_id: int, indicator: str, start: date, end: date, exclude_item: int | None = None
) -> tuple[int, int]:
    """(entries net of reversals, points_x100) a member has under an indicator in [start, end)."""
    e = PointEntry
    stmt = select(
        func.coalesce(func.sum(case((e.kind == "entry", 1), else_=-1)), 0),
        func.coalesce(func.sum(e.points_x100), 0),
    ).where(e.member_id == member_id, e.indicator == indicator, e.day >= start, e.day < end)
    if exclude_item is not None:
        stmt = stmt.where(e.item_id != exclude_item)
    count, points = session.execute(stmt).one()
    return int(count), int(points)


def pending_usage(
    session: Session, member_id: int, indicator: str, start: date, end: date
) -> tuple[int, int]:
    """(claims, points_x100) still waiting for a decision under an indicator in [start, end)."""
    s, i = Submission, Item
    count, points = session.execute(
        select(func.count(), func.coalesce(func.sum(s.points_x100), 0))
        .join(i, i.id == s.id)
        .where(
            i.member_id == member_id,
            i.status == ItemState.PENDING,
            s.indicator == indicator,
            s.day >= start,
            s.day < end,
        )
    ).one()
    return int(count), int(points)


# -- innovations: one result counts once, at its highest level -------------------------------------

_SUB_C = Submission.__table__.c  # type: ignore[attr-defined]
_IM, _INV = InnovationMember.__table__.c, Innovation.__table__.c  # type: ignore[attr-defined]
_IT = Item.__table__.c  # type: ignore[attr-defined]
_PAID = Prebuilt(
    select(_IM.member_id, func.sum(_IM.paid_x100))
    .select_from(InnovationMember.__table__)  # type: ignore[attr-defined]
    .join(Innovation.__table__, _INV.id == _IM.innovation_id)  # type: ignore[attr-defined]
    .join(Item.__table__, _IT.id == _INV.id)  # type: ignore[attr-defined]
    .where(
        _INV.result_key == bindparam("key"), _IT.status == ItemState.APPROVED, _INV.id != bindparam("exclude")
    )
    .group_by(_IM.member_id)
)
_CLAIMED = Prebuilt(select(_INV.id).where(_INV.result_key == bindparam("key")).limit(1))
_EARLIER = Prebuilt(
    select(_INV.id, _INV.level, _INV.grade, _INV.level_rank, _INV.points_x100, _IT.status)
    .select_from(Innovation.__table__)  # type: ignore[attr-defined]
    .join(Item.__table__, _IT.id == _INV.id)  # type: ignore[attr-defined]
    .where(_INV.result_key == bindparam("key"), _IT.status.in_((ItemState.PENDING, ItemState.APPROVED)))
)
_SHARES = select(_IM.member_id, _IM.share_x100, _IM.paid_x100, _IM.role).where(
    _IM.innovation_id == bindparam("id")
)


def result_claimed(session: Session, key: str) -> bool:
    """Has any claim of this result (same type and name) been made before?"""
    return bool(_CLAIMED.rows(session, {"key": key}))


def already_paid(session: Session, key: str, exclude: int | None = None) -> dict[int, int]:
    """What approved claims of a result paid each member so far (points_x100), `exclude` aside."""
    rows = _PAID.rows(session, {"key": key, "exclude": -1 if exclude is None else exclude})
    return {m: int(p) for m, p in rows}


def earlier_claims(session: Session, key: str) -> list[Any]:
    """Pending and approved claims of a result: id, level, grade, level_rank, points_x100, status."""
    return _EARLIER.rows(session, {"key": key})


def shares(session: Session, innovation_id: int) -> list[tuple[int, int, int, str]]:
    """(member id, full share, what this claim pays, 组长|成员) of one innovation claim, leader first."""
    rows = session.connection().execute(_SHARES, {"id": innovation_id}).all()
    return sorted(((int(m), int(s), int(p), r) for m, s, p, r in rows), key=lambda r: r[3] != "组长")


def set_paid(session: Session, innovation_id: int, paid: dict[int, int]) -> None:
    """Record what an approved claim paid each member (the top-up, decided at approval time)."""
    for member_id, amount in paid.items():
        row = session.get(InnovationMember, (innovation_id, member_id))
        if row is not None:
            row.paid_x100 = amount


_POINTS_OF = Prebuilt(
    select(_SUB_C.id, _SUB_C.points_x100).where(_SUB_C.id.in_(bindparam("ids", expanding=True)))
)


def points_of_items(session: Session, item_ids: Sequence[int]) -> dict[int, int]:
    """The points (x100) each of these claims is worth, by item id."""
    if not item_ids:
        return {}
    return {int(i): int(p) for i, p in _POINTS_OF.rows(session, {"ids": list(item_ids)})}
