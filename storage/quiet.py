"""A member's own quiet hours (免打扰): NULL keeps the workshop's window, "" turns quiet hours off.
They are read with the sender of each message (`bot.members.arrival`, `Sender.quiet_hours`)."""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from storage.models import Member

_M = Member.__table__.c
_SET = update(Member.__table__).where(_M.id == bindparam("member_id")).values(quiet_hours=bindparam("quiet"))


def set_quiet_hours(session: Session, member_id: int, value: str | None) -> None:
    session.connection().execute(_SET, {"member_id": member_id, "quiet": value})
