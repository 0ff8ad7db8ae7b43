"""The "1+1+N" publicity records: articles (`投稿`, each an item `#N`), their authors, every channel
an article was accepted or published at, and the monthly figures per module and per branch.

An article is scored once, at its highest channel: `Article.best_points_x100` is what its authors
have been paid for so far, and a later, higher channel pays only the difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Text, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.items import Item
from storage.models import Member, MemberRole, Module, ts
from storage.people import Person
from storage.people import by_id as person_by_id
from storage.vocabulary import ItemState, Role

ARTICLE_KIND = "投稿"  # items.kind of an article


class Article(SQLModel, table=True):
    """An article submitted by a correspondent (or a module lead); the item with the same id holds its
    title, owner, state and decision."""

    __tablename__ = "articles"
    # A module's articles first accepted in a month, read on every correspondent's 我的.
    __table_args__ = (Index("ix_articles_module_accepted", "module", "accepted_at"),)
    id: int = Field(foreign_key="items.id", primary_key=True)
    module: str = Field(index=True)  # the publicity module's name as configured
    content: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    link: str = ""
    revisions: int = 0  # times it was sent back and submitted again
    closed: bool = False  # 不录用: refused for good (a 退回 leaves it open for a revision)
    best_channel: str = ""  # code of the highest channel it was accepted at
    best_points_x100: int = 0  # that channel's points: what the authors have been paid for
    submission_paid: bool = False  # the per-article submission points were booked
    accepted_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]  # first acceptance


class ArticleAuthor(SQLModel, table=True):
    """An author of an article; position 0 is the one who submitted it."""

    __tablename__ = "article_authors"
    article_id: int = Field(foreign_key="articles.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    position: int = 0


class ArticlePublication(SQLModel, table=True):
    """One channel an article was accepted or published at, with what that step paid in all."""

    __tablename__ = "article_publications"
    __table_args__ = (Index("ix_article_publications_article", "article_id"),)
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id")
    channel: str
    at: datetime = ts(nullable=False)  # type: ignore[assignment]
    by_id: int = Field(foreign_key="members.id")
    paid_x100: int = 0


_I = Item.__table__.c  # type: ignore[attr-defined]
_A = Article.__table__.c  # type: ignore[attr-defined]
_AU = ArticleAuthor.__table__.c  # type: ignore[attr-defined]
_AUTHORS = select(_AU.member_id).where(_AU.article_id == bindparam("article")).order_by(_AU.position)


def authors(session: Session, article_id: int) -> list[int]:
    """The article's authors' member ids, the submitter first."""
    return list(session.connection().execute(_AUTHORS, {"article": article_id}).scalars())


def set_authors(session: Session, article_id: int, member_ids: Sequence[int]) -> None:
    """Replace the article's authors (a revision may name other co-authors)."""
    session.execute(ArticleAuthor.__table__.delete().where(_AU.article_id == article_id))  # type: ignore[attr-defined]
    session.execute(
        ArticleAuthor.__table__.insert(),  # type: ignore[attr-defined]
        [{"article_id": article_id, "member_id": m, "position": i} for i, m in enumerate(member_ids)],
    )


def reopen(session: Session, item_id: int, title: str) -> bool:
    """Put an article that was sent back (退回) up for review again; False unless it was rejected."""
    done = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemState.REJECTED)
        .values(status=ItemState.PENDING, decided_by=None, decided_at=None, reason="", title=title)
    ).rowcount
    return bool(done)


def record_publication(
    session: Session, article_id: int, channel: str, at: datetime, by_id: int, paid_x100: int
) -> None:
    session.add(
        ArticlePublication(article_id=article_id, channel=channel, at=at, by_id=by_id, paid_x100=paid_x100)
    )


def publications(session: Session, article_id: int) -> list[ArticlePublication]:
    p = ArticlePublication
    return list(session.execute(select(p).where(p.article_id == article_id).order_by(p.id)).scalars())


def module_people(session: Session, module: str, role: str) -> list[Person]:
    """Active members of the publicity module `module` holding `role` (module_lead, correspondent)."""
    ids = session.execute(
        select(Member.id)
        .join(Module, Module.id == Member.module_id)
        .join(MemberRole, MemberRole.member_id == Member.id)
        .where(Module.name == module, MemberRole.role == role, Member.active.is_(True))
        .order_by(Member.id)
    ).scalars()
    return [p for p in (person_by_id(session, i) for i in ids) if p is not None]


def module_of(session: Session, member_id: int) -> str:
    """The name of a member's publicity module, or ""."""
    found = session.execute(
        select(Module.name).join(Member, Member.module_id == Module.id).where(Member.id == member_id)
    ).scalar_one_or_none()
    return found or ""


@dataclass
class ModuleMonth:
    """One module's articles in a period: submitted (new in it), accepted (first accepted in it),
    accepted by channel code, and the points booked for them in it."""

    submitted: int = 0
    accepted: int = 0
    by_channel: dict[str, int] | None = None
    points_x100: int = 0


def module_figures(session: Session, lo: datetime, hi: datetime) -> dict[str, ModuleMonth]:
    """Per module name: articles submitted in [lo, hi) (first submission, a revision does not count
    again), accepted in [lo, hi) (first acceptance) by their best channel, and the publication
    points paid in [lo, hi)."""
    out: dict[str, ModuleMonth] = defaultdict(lambda: ModuleMonth(by_channel={}))
    first_seen = (
        select(ArticlePublication.article_id, func.min(ArticlePublication.at).label("first"))
        .group_by(ArticlePublication.article_id)
        .subquery()
    )
    rows = session.execute(
        select(_A.module, _A.best_channel, first_seen.c.first, _I.created_at, _A.revisions, _A.id)
        .select_from(Article.__table__)  # type: ignore[attr-defined]
        .join(Item.__table__, _I.id == _A.id)  # type: ignore[attr-defined]
        .outerjoin(first_seen, first_seen.c.article_id == _A.id)
    ).all()
    for module, channel, first, created, _revisions, _id in rows:
        fig = out[module]
        if lo <= created < hi:
            fig.submitted += 1
        if first is not None and lo <= first < hi:
            fig.accepted += 1
            assert fig.by_channel is not None
            fig.by_channel[channel] = fig.by_channel.get(channel, 0) + 1
    paid = session.execute(
        select(_A.module, func.sum(ArticlePublication.paid_x100))
        .select_from(ArticlePublication)
        .join(Article.__table__, _A.id == ArticlePublication.article_id)  # type: ignore[attr-defined]
        .where(ArticlePublication.at >= lo, ArticlePublication.at < hi)
        .group_by(_A.module)
    ).all()
    for module, points in paid:
        out[module].points_x100 = int(points or 0)
    return dict(out)


@dataclass(frozen=True)
class BranchPublicity:
    """A branch's publicity for the 党建考评: articles accepted against the quota it owes."""

    accepted: int
    quota: float


def branch_publicity(
    session: Session, lo: datetime, hi: datetime, months: int, module_quotas: dict[str, int]
) -> dict[int, BranchPublicity]:
    """Per branch id, for the period [lo, hi) spanning `months` calendar months:

    - `accepted`: articles first accepted (录用) in [lo, hi) whose submitter belonged to the branch
      when submitting (items.branch_id); an article counts once whatever channels followed, and a
      voided one not at all;
    - `quota`: what the branch's correspondents owe: each module's monthly quota (`module_quotas`,
      module name → articles a month, from the publicity config) is shared equally among the
      module's active correspondents, and a branch owes its correspondents' shares × `months`.

    Branches with neither accepted articles nor correspondents are absent."""
    first = (
        select(ArticlePublication.article_id, func.min(ArticlePublication.at).label("first"))
        .group_by(ArticlePublication.article_id)
        .subquery()
    )
    accepted = dict(
        session.execute(
            select(_I.branch_id, func.count())
            .select_from(first)
            .join(Item.__table__, _I.id == first.c.article_id)  # type: ignore[attr-defined]
            .where(
                first.c.first >= lo,
                first.c.first < hi,
                _I.status == ItemState.APPROVED,
                _I.branch_id.is_not(None),
            )
            .group_by(_I.branch_id)
        ).all()
    )
    correspondents = session.execute(
        select(Member.branch_id, Module.name)
        .join(Module, Module.id == Member.module_id)
        .join(MemberRole, MemberRole.member_id == Member.id)
        .where(MemberRole.role == Role.CORRESPONDENT, Member.active.is_(True))
    ).all()
    per_module: dict[str, int] = defaultdict(int)
    for _branch, module in correspondents:
        per_module[module] += 1
    quota: dict[int, float] = defaultdict(float)
    for branch, module in correspondents:
        if branch is not None:
            quota[branch] += module_quotas.get(module, 0) / per_module[module] * months
    return {
        b: BranchPublicity(int(accepted.get(b, 0)), round(quota.get(b, 0.0), 2)) for b in {*accepted, *quota}
    }


def module_accepted(session: Session, module: str, lo: datetime, hi: datetime) -> int:
    """How many of `module`'s articles were first accepted in [lo, hi): `module_figures`' `accepted`
    for one module, read from the index (module, accepted_at) instead of from every article."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Article.__table__)  # type: ignore[attr-defined]
            .where(_A.module == module, _A.accepted_at >= lo, _A.accepted_at < hi)
        ).scalar_one()
    )


def member_month(session: Session, member_id: int, lo: datetime, hi: datetime) -> tuple[int, int]:
    """(articles the member co-wrote that were submitted in [lo, hi), those first accepted in it)."""
    mine = select(_AU.article_id).where(_AU.member_id == member_id)
    submitted = session.execute(
        select(func.count())
        .select_from(Item.__table__)
        .where(_I.id.in_(mine), _I.created_at >= lo, _I.created_at < hi)  # type: ignore[attr-defined]
    ).scalar_one()
    accepted = session.execute(
        select(func.count())
        .select_from(Article.__table__)  # type: ignore[attr-defined]
        .where(_A.id.in_(mine), _A.accepted_at >= lo, _A.accepted_at < hi)
    ).scalar_one()
    return int(submitted), int(accepted)
