"""Members named by people: `成员：王芳、赵磊` or `学员：zhaolei`, resolved to one person each or a
Chinese sentence saying why not. Shared by every practice that names people.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.context import Sender
from bot.forms import FieldError, half_width
from storage import people
from storage.people import Person

__all__ = ["Person", "find_person", "person", "sender_person"]


def person(session: Session, member_id: int) -> Person | None:
    return people.by_id(session, member_id)


def find_person(session: Session, text: str) -> Person:
    """The member someone means by a name or userid; FieldError when none or several match."""
    word = half_width(text).strip().lstrip("@")
    if not word:
        raise FieldError("不能为空")
    found = people.by_userid_or_name(session, word)
    if not found:
        raise FieldError(f"找不到成员「{word}」，请写姓名或企业微信账号")
    if len(found) > 1:
        who = "、".join(f"{p.userid}（{p.branch or '未登记支部'}）" for p in found)
        raise FieldError(f"有 {len(found)} 位「{word}」：{who}，请改写账号")
    return found[0]


def sender_person(member: Sender) -> Person:
    """The sender of a message as a `Person`."""
    return Person(
        member.id,
        member.userid,
        member.name,
        member.branch_id,
        member.team_id,
        member.political_status,
        member.branch,
    )
