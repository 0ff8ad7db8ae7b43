"""Items — everything shown to people as `#N` — and who was asked to decide them.

One number space across kinds (尽责, 创新, 加分 today; 投稿, 带教, 结题, leave requests later). The
`items` row holds what every kind has: its kind, owner, branch, title, state and the decision; each
practice keeps the rest in its own table keyed by the item's id. Deciding is a conditional update
(pending → approved/rejected), so of two approvers clicking at once exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlmodel import Field, SQLModel

from storage.models import Branch, MediaFile, Member, ts, utcnow
from storage.prebuilt import Prebuilt
from storage.vocabulary import ItemState


class Item(SQLModel, table=True):
    """An item `#N` of any kind; kind-specific details live in the practice's table with the same id."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_member_status", "member_id", "status", "created_at"),
        Index("ix_items_status_created", "status", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str  # the registered kind's name: 尽责 | 创新 | 加分 | …
    member_id: int | None = Field(default=None, foreign_key="members.id")  # whose it is
    submitted_by: int | None = Field(default=None, foreign_key="members.id")
    branch_id: int | None = Field(default=None, foreign_key="branches.id")  # the owner's, at submission
    title: str = ""  # what it is, for lists and cards: "A01 参加党员突击队/攻坚任务", "QC成果《…》"
    status: str = ItemState.PENDING
    created_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    decided_by: int | None = Field(default=None, foreign_key="members.id")
    decided_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    reason: str = ""  # why it was rejected
    voided_by: int | None = Field(default=None, foreign_key="members.id")
    voided_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    void_reason: str = ""


class ApprovalRequest(SQLModel, table=True):
    """Who was asked to decide an item (and got its card): what `待审` and the digest read."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_approver", "approver_id", "item_id"),)
    item_id: int = Field(foreign_key="items.id", primary_key=True)
    approver_id: int = Field(foreign_key="members.id", primary_key=True)


# Built once: a claim takes a number and asks its approvers on the hot path.
_I, _A = Item.__table__.c, ApprovalRequest.__table__.c  # type: ignore[attr-defined]


def of_item(column: Any, own_id: Any) -> Any:
    """`column` of the item that shares the row's id (`own_id`, e.g. a training step's or an
    activity's): one primary-key step for each row the statement starts from. A join would let the
    planner start from every item in that state instead: PostgreSQL does when its statistics still
    think few are pending, SQLite when nothing else is indexed (every approved item of the workshop,
    on every 我的; docs/PERFORMANCE.md)."""
    return select(column).where(_I.id == own_id).scalar_subquery()


_NEW_ITEM = Prebuilt(insert(Item.__table__).returning(_I.id))  # type: ignore[attr-defined]
_ASK = Prebuilt(insert(ApprovalRequest.__table__))  # type: ignore[attr-defined]
_LATEST_PENDING = Prebuilt(
    select(_I.id)
    .where(
        _I.member_id == bindparam("member"),
        _I.status == ItemState.PENDING,
        _I.created_at >= bindparam("since"),
    )
    .order_by(_I.created_at.desc(), _I.id.desc())
    .limit(1)
)
_MY_PENDING = Prebuilt(
    select(_I.id, _I.kind, _I.title)
    .where(_I.member_id == bindparam("member"), _I.status == ItemState.PENDING)
    # The order of ix_items_member_status (SQLite keeps the id after its columns): the first few are
    # read from the index, however many the member has pending, instead of all of them sorted.
    .order_by(_I.created_at, _I.id)
    .limit(bindparam("limit"))
)


def new_item(
    session: Session,
    kind: str,
    at: datetime,
    *,
    member_id: int | None,
    submitted_by: int | None,
    branch_id: int | None,
    title: str,
    status: str = ItemState.PENDING,
    decided_by: int | None = None,
) -> int:
    """Take the next `#N` for an item of `kind` (pending, or already decided as a direct 加分 is)."""
    values = {
        "kind": kind,
        "created_at": at,
        "member_id": member_id,
        "submitted_by": submitted_by,
        "branch_id": branch_id,
        "title": title,
        "status": status,
        "reason": "",
        "void_reason": "",
        "decided_by": decided_by,
        "decided_at": at if decided_by is not None else None,
    }
    return int(_NEW_ITEM.rows(session, values)[0][0])


def ask(session: Session, item_id: int, approver_ids: Sequence[int]) -> None:
    """Record who is asked to decide `item_id`."""
    if approver_ids:
        _ASK.execute(session, [{"item_id": item_id, "approver_id": a} for a in approver_ids])


def asked(session: Session, item_id: int) -> list[int]:
    """The members asked to decide an item."""
    a = ApprovalRequest
    return list(session.execute(select(a.approver_id).where(a.item_id == item_id)).scalars())


def decide(session: Session, item_id: int, status: str, by: int, at: datetime, reason: str = "") -> bool:
    """Move a pending item to `status`; False when someone else decided it first.

    The conditional update is the claim: of two approvers clicking at once, exactly one sees a row.
    """
    done = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemState.PENDING)
        .values(status=status, decided_by=by, decided_at=at, reason=reason)
    ).rowcount
    return bool(done)


def void(session: Session, item_id: int, by: int, at: datetime, reason: str) -> bool:
    """Mark an approved item voided (its reversal lines are written by its kind)."""
    done = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemState.APPROVED)
        .values(status=ItemState.VOIDED, voided_by=by, voided_at=at, void_reason=reason)
    ).rowcount
    return bool(done)


def latest_pending_since(session: Session, member_id: int, since: datetime) -> int | None:
    """The member's newest pending item created after `since` (a photo sent now attaches to it)."""
    rows = _LATEST_PENDING.rows(session, {"member": member_id, "since": since})
    return int(rows[0][0]) if rows else None


def pending_of(session: Session, member_id: int, limit: int = 6) -> list[tuple[int, str, str]]:
    """(id, kind, title) of a member's own pending items, oldest first (for 我的, on its hot path)."""
    rows = _MY_PENDING.rows(session, {"member": member_id, "limit": limit})
    return [(int(r[0]), r[1], r[2]) for r in rows]


def evidence_counts(session: Session, item_ids: Sequence[int]) -> dict[int, int]:
    """How many files (photos, documents) are attached to each item."""
    if not item_ids:
        return {}
    refs = {f"item:{i}": i for i in item_ids}
    rows = session.execute(
        select(MediaFile.ref, func.count()).where(MediaFile.ref.in_(refs)).group_by(MediaFile.ref)
    ).all()
    return {refs[ref]: int(n) for ref, n in rows}


@dataclass(frozen=True, slots=True)
class Waiting:
    """Items waiting for one approver: how many, and the oldest ones."""

    total: int
    items: list[Item]
    owners: dict[int, str]  # member id → name


def waiting_for(session: Session, approver_id: int, limit: int) -> Waiting:
    """Pending items an approver was asked to decide, oldest first."""
    i, a = Item, ApprovalRequest
    waiting = (
        select(i)
        .join(a, a.item_id == i.id)
        .where(a.approver_id == approver_id, i.status == ItemState.PENDING)
    )
    total = session.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
    if not total:
        return Waiting(0, [], {})
    items = list(session.execute(waiting.order_by(i.created_at, i.id).limit(limit)).scalars())
    owners = dict(
        session.execute(
            select(Member.id, Member.name).where(Member.id.in_({x.member_id for x in items}))
        ).all()
    )
    return Waiting(int(total), items, owners)


def digest(session: Session) -> list[tuple[str, int, datetime, int]]:
    """(approver userid, items waiting, oldest created_at, oldest id) for every active approver."""
    i, a = Item, ApprovalRequest
    rows = session.execute(
        select(Member.userid, func.count(), func.min(i.created_at), func.min(i.id))
        .select_from(a)
        .join(i, i.id == a.item_id)
        .join(Member, Member.id == a.approver_id)
        .where(i.status == ItemState.PENDING, Member.active.is_(True))
        .group_by(Member.userid)
        .order_by(Member.userid)
    ).all()
    return [(r[0], int(r[1]), r[2], int(r[3])) for r in rows]


def open_and_rejected(
    session: Session, lo: datetime, hi: datetime, branch_id: int | None
) -> list[tuple[Item, str, str, str]]:
    """(item, owner's name, branch, decider's name): items still pending, and those rejected in [lo, hi)."""
    i = Item
    owner, decider = aliased(Member), aliased(Member)
    rejected = (i.status == ItemState.REJECTED) & (i.decided_at >= lo) & (i.decided_at < hi)
    rows = session.execute(
        select(i, owner.name, Branch.name, decider.name)
        .outerjoin(owner, owner.id == i.member_id)
        .outerjoin(Branch, Branch.id == i.branch_id)
        .outerjoin(decider, decider.id == i.decided_by)
        .where(
            or_(i.status == ItemState.PENDING, rejected),
            *([i.branch_id == branch_id] if branch_id is not None else []),
        )
        .order_by(i.status, i.id)
    ).all()
    return [(r[0], r[1] or "", r[2] or "", r[3] or "") for r in rows]


def member_name(session: Session, member_id: int | None) -> str:
    """A member's name, or "" when unknown."""
    if member_id is None:
        return ""
    found = session.get(Member, member_id)
    return found.name if found else ""
