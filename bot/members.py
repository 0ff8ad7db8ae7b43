"""Members and roles: who is writing, the polite refusal for strangers, and the CSV imports
(`python -m bot members import`, whose header is documented in the README)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, delete, exists, literal, select
from sqlalchemy.orm import Session

from bot.context import Sender
from storage import skills as skill_store
from storage.models import (
    AuditLog,
    Branch,
    Dialogue,
    InboxEntry,
    Member,
    MemberRole,
    Module,
    PartyGroup,
    SkillLevel,
    Team,
    UnknownUser,
)
from storage.prebuilt import Prebuilt
from storage.vocabulary import ILUO_ORDER, ROLE_CODES, PoliticalStatus

if TYPE_CHECKING:
    from bot.context import Context

POLITICAL_STATUSES = tuple(PoliticalStatus)
LEVELS = ILUO_ORDER

MEMBER_HEADER = ["userid", "name", "branch", "team", "party_group", "module", "political_status", "roles"]
MEMBER_OPTIONAL = ["post"]  # own post (岗位) for 多能工 targets; files without it still import
SKILL_HEADER = ["userid", "skill", "level"]
STRANGER = "你好！你还不是「先锋」的登记成员，暂时不能使用。请联系所在支部书记或管理员登记，登记后即可使用。"


def _sender_query() -> Select[Any]:
    """Everything the dispatcher needs before routing, in one statement (it runs for every message):
    whether this message was handled already, whether the sender has a dialogue open, and the
    member with their units and roles (one row per role)."""
    m, b, t, g, mod, r = (
        Member.__table__.c,
        Branch.__table__.c,
        Team.__table__.c,
        PartyGroup.__table__.c,
        Module.__table__.c,
        MemberRole.__table__.c,
    )
    inbox, dialogues = InboxEntry.__table__.c, Dialogue.__table__.c
    anchor = select(literal(1).label("one")).subquery()
    userid = bindparam("userid")
    return (
        select(
            exists().where(inbox.key == bindparam("key")).label("seen"),
            exists().where(dialogues.userid == userid).label("dialogue"),
            m.id,
            m.userid,
            m.name,
            m.political_status,
            m.branch_id,
            b.name,
            m.team_id,
            t.name,
            g.name,
            mod.name,
            r.role,
            m.quiet_hours,
        )
        .select_from(anchor)
        .outerjoin(Member.__table__, (m.userid == userid) & m.active.is_(True))
        .outerjoin(Branch.__table__, b.id == m.branch_id)
        .outerjoin(Team.__table__, t.id == m.team_id)
        .outerjoin(PartyGroup.__table__, g.id == m.party_group_id)
        .outerjoin(Module.__table__, mod.id == m.module_id)
        .outerjoin(MemberRole.__table__, r.member_id == m.id)
    )


# Built once: building a statement costs more than executing it; run on the driver's own cursor
# (storage/prebuilt.py).
_SENDER = Prebuilt(_sender_query())


@dataclass(frozen=True, slots=True)
class Arrival:
    """What is known about a message before it is routed."""

    seen: bool  # its inbox key is taken: a retry
    has_dialogue: bool
    sender: Sender | None


def arrival(session: Session, key: str, userid: str) -> Arrival:
    rows = _SENDER.rows(session, {"key": key, "userid": userid})
    first = rows[0]
    if first[2] is None:
        return Arrival(bool(first[0]), bool(first[1]), None)
    sender = Sender(
        id=first[2],
        userid=first[3],
        name=first[4],
        political_status=first[5],
        branch_id=first[6],
        branch=first[7] or "",
        team_id=first[8],
        team=first[9] or "",
        party_group=first[10] or "",
        module=first[11] or "",
        roles=frozenset({"member", *(r[12] for r in rows if r[12])}),
        quiet_hours=first[13],
    )
    return Arrival(bool(first[0]), bool(first[1]), sender)


def load_sender(session: Session, userid: str) -> Sender | None:
    """The member behind a WeCom userid, with names of their organisation units and their roles."""
    return arrival(session, "", userid).sender


def admin_userids(session: Session, configured: list[str]) -> list[str]:
    found = (
        session.execute(
            select(Member.userid)
            .join(MemberRole, MemberRole.member_id == Member.id)
            .where(MemberRole.role == "admin", Member.active.is_(True))
        )
        .scalars()
        .all()
    )
    return sorted({*configured, *found})


def refuse_unknown(ctx: Context) -> str:
    """A stranger gets a polite refusal; the admins hear about each stranger once."""
    userid = ctx.message.sender
    known = ctx.session.get(UnknownUser, userid)
    if known is not None:
        known.messages += 1
        return STRANGER
    ctx.session.add(UnknownUser(userid=userid, first_seen=ctx.now))
    for admin in admin_userids(ctx.session, ctx.config.admins):
        ctx.send(
            admin,
            f"未登记的企业微信用户「{userid}」给先锋发了消息。如需使用，请把他加入成员名单后导入："
            "python -m bot members import 成员.csv",
        )
    return STRANGER


# -- CSV imports ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"新增 {self.created}，更新 {self.updated}，未变 {self.unchanged}"


def read_csv(
    text: str, header: list[str], optional: list[str] | None = None
) -> tuple[list[dict[str, str]], list[str]]:
    """Rows as dicts keyed by `header` (plus whichever `optional` columns follow it, in order), or the
    problems with the file (BOM and blank lines tolerated)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    got = [h.strip() for h in (reader.fieldnames or [])]
    extra = optional or []
    if not any(got == header + extra[:n] for n in range(len(extra) + 1)):
        return [], [f"line 1: header must be {','.join(header)} (got {','.join(got) or 'nothing'})"]
    rows = []
    for row in reader:
        cleaned = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if any(cleaned.values()):
            cleaned["_line"] = str(reader.line_num)
            rows.append(cleaned)
    return rows, []


def _named(
    session: Session, model: type, name: str, cache: dict[tuple[type, str], int], **extra: object
) -> int | None:
    if not name:
        return None
    key = (model, name + repr(sorted(extra.items())))
    if key not in cache:
        stmt = select(model.id).where(model.name == name)  # type: ignore[attr-defined]
        for column, value in extra.items():
            stmt = stmt.where(getattr(model, column) == value)
        found = session.execute(stmt).scalar_one_or_none()
        if found is None:
            obj = model(name=name, **extra)
            session.add(obj)
            session.flush()
            found = obj.id  # type: ignore[attr-defined]
        cache[key] = found
    return cache[key]


def import_members(session: Session, text: str, actor: str = "cli") -> ImportReport:
    """Create or update members from CSV. All rows are checked before anything is written."""
    report = ImportReport()
    rows, report.problems = read_csv(text, MEMBER_HEADER, MEMBER_OPTIONAL)
    seen: set[str] = set()
    for row in rows:
        line = row["_line"]
        if not row["userid"] or not row["name"]:
            report.problems.append(f"line {line}: userid and name are required")
        if row["userid"] in seen:
            report.problems.append(f"line {line}: userid {row['userid']} appears twice")
        seen.add(row["userid"])
        if row["political_status"] not in POLITICAL_STATUSES:
            report.problems.append(
                f"line {line}: political_status must be one of {'/'.join(POLITICAL_STATUSES)}"
            )
        bad = [r for r in _roles(row["roles"]) if r not in ROLE_CODES]
        if bad:
            report.problems.append(
                f"line {line}: unknown role {', '.join(bad)} (known: {', '.join(ROLE_CODES)})"
            )
    if report.problems:
        return report
    cache: dict[tuple[type, str], int] = {}
    for row in rows:
        branch_id = _named(session, Branch, row["branch"], cache)
        values = {
            "name": row["name"],
            "branch_id": branch_id,
            "team_id": _named(session, Team, row["team"], cache),
            "party_group_id": _named(session, PartyGroup, row["party_group"], cache, branch_id=branch_id),
            "module_id": _named(session, Module, row["module"], cache),
            "political_status": row["political_status"],
            "active": True,
            "name_source": "csv",  # an admin's name: the directory sync never overwrites it
        }
        if "post" in row:  # an older file without the column leaves the posts as they are
            values["post"] = row["post"]
        roles = set(_roles(row["roles"])) - {"member"}
        member = session.execute(select(Member).where(Member.userid == row["userid"])).scalar_one_or_none()
        if member is None:
            member = Member(userid=row["userid"], **values)
            session.add(member)
            session.flush()
            report.created += 1
            before: set[str] = set()
        else:
            before = set(
                session.execute(select(MemberRole.role).where(MemberRole.member_id == member.id)).scalars()
            )
            changed = any(getattr(member, k) != v for k, v in values.items()) or before != roles
            for k, v in values.items():
                setattr(member, k, v)
            report.updated += changed
            report.unchanged += not changed
        if before != roles:
            session.execute(delete(MemberRole).where(MemberRole.member_id == member.id))
            session.add_all(MemberRole(member_id=member.id, role=r) for r in sorted(roles))
    session.add(AuditLog(at=datetime.now(UTC), actor=actor, action="members.import", detail=report.summary()))
    return report


def _roles(text: str) -> list[str]:
    return [r.strip() for r in text.replace("；", ";").replace(",", ";").split(";") if r.strip()]


def import_skills(
    session: Session,
    text: str,
    find_skill: Callable[[str], Any],
    actor: str = "cli",
    at: datetime | None = None,
) -> ImportReport:
    """Set the I-L-U-O levels people already hold (`python -m bot skills import`).

    `find_skill` resolves a name or alias to a configured post (the skills practice passes its own);
    `at` dates the levels (the demo's are older than its history), now by default.
    """
    report = ImportReport()
    rows, report.problems = read_csv(text, SKILL_HEADER)
    ids = dict(session.execute(select(Member.userid, Member.id)).all()) if rows else {}
    for row in rows:
        line = row["_line"]
        if row["userid"] not in ids:
            report.problems.append(
                f"line {line}: no member with userid {row['userid']!r} (import members first)"
            )
        skill = find_skill(row["skill"])
        if skill is None:
            report.problems.append(
                f"line {line}: unknown skill {row['skill']!r} (see skills.posts in config.yaml)"
            )
        else:
            row["skill"] = skill.name
        if row["level"].upper() not in LEVELS:
            report.problems.append(f"line {line}: level must be one of {'/'.join(LEVELS)}")
    if report.problems:
        return report
    now = at or datetime.now(UTC)
    for row in rows:
        key = (ids[row["userid"]], row["skill"])
        level = row["level"].upper()
        current = session.get(SkillLevel, key)
        if current is not None and current.level == level:
            report.unchanged += 1
            continue
        # Recorded as a change like 定级 and training, so that 技能 成员 shows where a level came from.
        skill_store.set_level(
            session, key[0], key[1], level, now, by_id=None, source="导入", actor=actor, subject=row["userid"]
        )
        report.created += current is None
        report.updated += current is not None
    session.add(AuditLog(at=now, actor=actor, action="skills.import", detail=report.summary()))
    return report


def list_members(session: Session) -> list[Sender]:
    userids = session.execute(select(Member.userid).order_by(Member.id)).scalars().all()
    return [s for u in userids if (s := load_sender(session, u)) is not None]
