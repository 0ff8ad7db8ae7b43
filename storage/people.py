"""Members as the practices look them up: by id, userid, name or role, with their branch's name.

Statements are built once (a claim looks people up on the hot path, and building a statement costs
more than SQLite takes to run it) and run through Core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from storage.models import Branch, Member, MemberRole
from storage.prebuilt import Prebuilt


@dataclass(frozen=True, slots=True)
class Person:
    """An active member as the practices' rules need them (who is paid, who decides, who is named).

    The sender of a message is a `bot.context.Sender` (with roles and names, loaded once per
    message); the table row is `storage.models.Member`."""

    id: int
    userid: str
    name: str
    branch_id: int | None
    team_id: int | None
    political_status: str
    branch: str = ""


_M, _R = Member.__table__.c, MemberRole.__table__.c  # type: ignore[attr-defined]
_B = Branch.__table__.c  # type: ignore[attr-defined]
_PEOPLE = (
    select(_M.id, _M.userid, _M.name, _M.branch_id, _M.team_id, _M.political_status, _B.name)
    .select_from(Member.__table__)  # type: ignore[attr-defined]
    .outerjoin(Branch.__table__, _B.id == _M.branch_id)  # type: ignore[attr-defined]
    .where(_M.active.is_(True))
    .order_by(_M.id)
)
_ROLE_HOLDERS = select(_R.member_id).where(_R.role == bindparam("role"))
_BY_ID = Prebuilt(_PEOPLE.where(_M.id == bindparam("value")))
_BY_USERID = Prebuilt(_PEOPLE.where(_M.userid == bindparam("value")))
_BY_NAME = Prebuilt(_PEOPLE.where(_M.name == bindparam("value")))
_WITH_ROLE = Prebuilt(_PEOPLE.where(_M.id.in_(_ROLE_HOLDERS)))
_WITH_ROLE_IN_BRANCH = Prebuilt(_PEOPLE.where(_M.id.in_(_ROLE_HOLDERS), _M.branch_id == bindparam("branch")))


def _people(session: Session, stmt: Prebuilt, **params: Any) -> list[Person]:
    rows = stmt.rows(session, params)
    return [Person(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "") for r in rows]


def by_id(session: Session, member_id: int) -> Person | None:
    found = _people(session, _BY_ID, value=member_id)
    return found[0] if found else None


def by_userid_or_name(session: Session, word: str) -> list[Person]:
    """Active members whose userid is `word`, or else whose name is `word` (several share a name)."""
    return _people(session, _BY_USERID, value=word) or _people(session, _BY_NAME, value=word)


def with_role(session: Session, role: str, branch_id: int | None = None) -> list[Person]:
    """Active members holding `role`, in one branch or anywhere."""
    if branch_id is None:
        return _people(session, _WITH_ROLE, role=role)
    return _people(session, _WITH_ROLE_IN_BRANCH, role=role, branch=branch_id)


def branch_name(session: Session, branch_id: int | None) -> str:
    found = session.get(Branch, branch_id) if branch_id is not None else None
    return found.name if found else ""


def branch_id(session: Session, name: str) -> int | None:
    """The id of the branch called `name`, if there is one."""
    return session.execute(select(Branch.id).where(Branch.name == name)).scalar_one_or_none()
