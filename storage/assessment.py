"""Tables and queries of the quarterly 党建考评 that belong to it alone: the committee's additions
(`考评 加分`), each an item so that it is numbered, audited and voidable like any other, and the
list of branches the assessment ranks.
"""

from __future__ import annotations

from sqlalchemy import Column, Text, func, select
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.items import Item, of_item
from storage.models import Branch
from storage.vocabulary import ItemState


class AssessmentAddition(SQLModel, table=True):
    """考评加分: points the committee adds to (or takes from) a branch's quarterly score, with why."""

    __tablename__ = "assessment_additions"
    id: int = Field(foreign_key="items.id", primary_key=True)
    branch_id: int = Field(foreign_key="branches.id", index=True)
    period: str = Field(index=True)  # the quarter key, 2026Q4
    points_x100: int
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


def branches(session: Session) -> list[tuple[int, str]]:
    """Every branch (id, name), by id."""
    return [(int(i), n) for i, n in session.execute(select(Branch.id, Branch.name).order_by(Branch.id)).all()]


_I = Item.__table__.c  # type: ignore[attr-defined]


def additions_per_branch(session: Session, period: str) -> dict[int, int]:
    """Branch id → the sum of the additions in force (not voided) for the quarter, x100."""
    a = AssessmentAddition
    rows = session.execute(
        select(a.branch_id, func.sum(a.points_x100))
        .where(a.period == period, of_item(_I.status, a.id) == ItemState.APPROVED)  # the quarter's only
        .group_by(a.branch_id)
    ).all()
    return {int(b): int(p) for b, p in rows}
