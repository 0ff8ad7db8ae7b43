"""Queries behind 导出: a period's members with their totals, its ledger lines and its innovation claims.

A module of its own rather than part of `storage.rankings`: those are the hot path of 排行 and 我的,
prebuilt statements over the indexed totals that must never scan the ledger, while an export is a
rare report that reads every ledger line and claim of a period (and runs off the hot path, often from
the command line). Keeping them apart keeps that rule checkable by reading one module.

The functions return plain rows (named tuples and dicts); the workbook is built by `handlers.export`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from storage.items import Item
from storage.models import Branch, Member, Team
from storage.points import Innovation, InnovationMember, MemberTotal, PointEntry, Submission


class ExportMember(NamedTuple):
    member_id: int
    name: str
    userid: str
    branch: str | None
    team: str | None
    political_status: str


class LedgerLine(NamedTuple):
    id: int
    day: date
    at: datetime
    member: str | None  # None for points given to a branch as a whole
    branch: str | None
    category: str
    indicator: str
    points_x100: int
    kind: str  # entry | reversal
    reverses_entry_id: int | None
    item_id: int | None
    approver: str | None
    note: str


class InnovationClaim(NamedTuple):
    id: int
    type: str
    name: str
    level: str
    grade: str
    points_x100: int  # the table value of the result
    leader: str
    claimed_x100: int  # what this claim pays, all members together
    status: str
    created_at: datetime
    description: str


class InnovationShare(NamedTuple):
    name: str
    role: str  # 组长 | 成员
    paid_x100: int


def _in_scope(branch_id: int | None) -> list[ColumnElement[bool]]:
    return [Member.active.is_(True)] + ([Member.branch_id == branch_id] if branch_id is not None else [])


def active_members(session: Session, branch_id: int | None) -> list[ExportMember]:
    """The active members of the branch (None: of every branch) by id, with branch and team names."""
    rows = session.execute(
        select(Member.id, Member.name, Member.userid, Branch.name, Team.name, Member.political_status)
        .outerjoin(Branch, Branch.id == Member.branch_id)
        .outerjoin(Team, Team.id == Member.team_id)
        .where(*_in_scope(branch_id))
        .order_by(Member.id)
    )
    return [ExportMember(*r) for r in rows]


def period_totals(session: Session, period: str, branch_id: int | None) -> dict[int, dict[str, int]]:
    """Member id → category → points in the period key, for the active members of the branch (None: of
    every branch) that have any; the overall total is under `TOTAL` ("")."""
    t = MemberTotal
    totals: dict[int, dict[str, int]] = {}
    for member_id, category, points in session.execute(
        select(t.member_id, t.category, t.points_x100)
        .join(Member, Member.id == t.member_id)
        .where(t.period == period, *_in_scope(branch_id))
    ):
        totals.setdefault(member_id, {})[category] = points
    return totals


def ledger_lines(session: Session, start: date, end: date, branch_id: int | None) -> list[LedgerLine]:
    """Every ledger line dated in [start, end) — of the branch when given — by id, with the member's,
    the branch's and the approver's names."""
    e, approver = PointEntry, aliased(Member)
    rows = session.execute(
        select(
            e.id,
            e.day,
            e.at,
            Member.name,
            Branch.name,
            e.category,
            e.indicator,
            e.points_x100,
            e.kind,
            e.reverses_entry_id,
            e.item_id,
            approver.name,
            e.note,
        )
        .outerjoin(Member, Member.id == e.member_id)
        .outerjoin(Branch, Branch.id == e.branch_id)
        .outerjoin(approver, approver.id == e.approver_id)
        .where(
            e.day >= start,
            e.day < end,
            *([e.branch_id == branch_id] if branch_id is not None else []),
        )
        .order_by(e.id)
    )
    return [LedgerLine(*r) for r in rows]


def innovation_claims(
    session: Session, lo: datetime, hi: datetime, branch_id: int | None
) -> list[InnovationClaim]:
    """Innovation claims made in [lo, hi) — of the branch when given — by number, with the leader's
    name and the claim's status."""
    s, i = Submission, Item
    rows = session.execute(
        select(
            Innovation.id,
            Innovation.type,
            Innovation.name,
            Innovation.level,
            Innovation.grade,
            Innovation.points_x100,
            Member.name,
            s.points_x100,
            i.status,
            i.created_at,
            s.description,
        )
        .join(s, s.id == Innovation.id)
        .join(i, i.id == Innovation.id)
        .join(Member, Member.id == Innovation.leader_id)
        .where(
            i.created_at >= lo,
            i.created_at < hi,
            *([i.branch_id == branch_id] if branch_id is not None else []),
        )
        .order_by(i.id)
    )
    return [InnovationClaim(*r) for r in rows]


def innovation_shares(session: Session, claim_ids: Sequence[int]) -> dict[int, list[InnovationShare]]:
    """Claim id → its members (leader first, then by member id) and what the claim pays each."""
    if not claim_ids:
        return {}
    im = InnovationMember
    shares: dict[int, list[InnovationShare]] = {}
    for claim_id, name, role, paid in session.execute(
        select(im.innovation_id, Member.name, im.role, im.paid_x100)
        .join(Member, Member.id == im.member_id)
        .where(im.innovation_id.in_(list(claim_ids)))
        .order_by(im.innovation_id, im.role.desc(), Member.id)
    ):
        shares.setdefault(claim_id, []).append(InnovationShare(name, role, paid))
    return shares
