"""A member's own quiet hours (免打扰): NULL keeps the workshop's window, "" turns quiet hours off."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from storage.models import Member
from storage.prebuilt import Prebuilt

_M = Member.__table__.c
_GET = Prebuilt(select(_M.quiet_hours).where(_M.id == bindparam("member_id")))
_SET = update(Member.__table__).where(_M.id == bindparam("member_id")).values(quiet_hours=bindparam("quiet"))


def quiet_hours(session: Session, member_id: int) -> str | None:
    found = _GET.rows(session, {"member_id": member_id})
    return found[0][0] if found else None


def set_quiet_hours(session: Session, member_id: int, value: str | None) -> None:
    session.connection().execute(_SET, {"member_id": member_id, "quiet": value})
