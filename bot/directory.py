"""Directory sync: the members list follows WeCom's address book (通讯录).

`python -m bot members sync [--dry-run]` and the `directory_sync` job read the departments under
`directory.root_department` (department/list, or department/simplelist when the app may not read
names) and each department's people (user/list, or user/simplelist when the app lacks the right:
apps created since 2022 get names and departments but no phones). Departments map to a branch and a
team through `directory.departments` (by id or by name; a sub-department inherits its nearest mapped
ancestor's place). Then:

- someone new becomes a member with no roles (political status 群众 until an admin's CSV says
  otherwise), named as in WeCom;
- someone no longer in the address book is marked inactive: their ledger, items and history stay;
- someone back is active again;
- a name is updated only if it came from WeCom: a name an admin set by CSV import is kept (reported);
- branch and team follow the mapping where it says something; roles and political status are never
  touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.scheduler import JobContext, job
from bot.wecom.errors import WeComError
from storage.models import AuditLog, Branch, Member, Team

if TYPE_CHECKING:
    from bot.config import Config, DirectoryDepartment
    from bot.wecom.client import WeComClient

log = logging.getLogger(__name__)

# Answers meaning "this app may not call that API" (no privilege on the contacts, API forbidden, or
# not from this IP since the 2022 tightening): fall back to the simpler list instead of failing.
NO_PERMISSION = frozenset({48002, 48009, 60011, 60020})
LEFT_STATUSES = frozenset({2, 5})  # user/list status: 2 disabled, 5 left the company


@dataclass(frozen=True)
class Department:
    id: int
    parentid: int
    name: str = ""  # "" when only department/simplelist could be read


@dataclass(frozen=True)
class Person:
    userid: str
    name: str
    departments: tuple[int, ...]  # main department first


@dataclass
class Directory:
    """What WeCom's address book says, and which APIs said it."""

    departments: dict[int, Department]
    people: dict[str, Person]
    notes: list[str] = field(default_factory=list)


async def fetch_directory(config: Config, client: WeComClient) -> Directory:
    root = config.directory.root_department
    notes: list[str] = []
    try:
        raw_depts = await client.department_list(root)
    except WeComError as exc:
        if exc.errcode not in NO_PERMISSION:
            raise
        notes.append(
            f"department/list 无权限（{exc.errcode}），改用 department/simplelist：部门只能按 id 对应"
        )
        raw_depts = await client.department_simplelist(root)
    departments = {
        int(d["id"]): Department(int(d["id"]), int(d.get("parentid") or 0), str(d.get("name") or ""))
        for d in raw_depts
    }
    people: dict[str, Person] = {}
    simple = False
    for dept_id in sorted(departments):
        users: list[dict[str, Any]] = []
        if not simple:
            try:
                users = await client.user_list(dept_id)
            except WeComError as exc:
                if exc.errcode not in NO_PERMISSION:
                    raise
                simple = True
                notes.append(
                    f"user/list 无权限（{exc.errcode}），改用 user/simplelist：姓名和部门照常同步，"
                    "但它不带账号状态，已禁用或已退出企业的账号在删除前仍算在通讯录里"
                )
        if simple:
            users = await client.user_simplelist(dept_id)
        for u in users:
            if int(u.get("status") or 1) in LEFT_STATUSES:
                continue
            userid = str(u["userid"])
            depts = [int(d) for d in u.get("department") or []]
            main = u.get("main_department")
            if main is not None and int(main) in depts:
                depts.remove(int(main))
                depts.insert(0, int(main))
            known = people.get(userid)
            if known is not None:
                depts = [*known.departments, *(d for d in depts if d not in known.departments)]
            name = str(u.get("name") or "")
            people[userid] = Person(userid, "" if name == userid else name, tuple(depts))
    return Directory(departments, people, notes)


def placement(config: Config, directory: Directory, person: Person) -> DirectoryDepartment | None:
    """The branch and team of the first of the person's departments (main first) that is mapped,
    itself or through its nearest mapped ancestor."""
    mapping = config.directory.departments
    for dept_id in person.departments:
        current, seen = dept_id, set()
        while current and current not in seen:
            seen.add(current)
            dept = directory.departments.get(current)
            for key in (str(current), dept.name if dept else ""):
                if key and key in mapping:
                    return mapping[key]
            current = dept.parentid if dept else 0
    return None


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    kept_names: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.left or self.returned or self.renamed or self.moved)

    def summary(self) -> str:
        verb = "将" if self.dry_run else "已"
        return (
            f"{verb}新增 {len(self.added)}，{verb}停用 {len(self.left)}，{verb}恢复 {len(self.returned)}，"
            f"{verb}改名 {len(self.renamed)}，{verb}调整支部/班组 {len(self.moved)}"
        )

    def lines(self) -> list[str]:
        out = [("（试运行，未做任何修改）" if self.dry_run else "") + self.summary()]
        for title, items in (
            ("新增（无角色，政治面貌待导入）", self.added),
            ("离开企业微信通讯录，停用（积分记录保留）", self.left),
            ("回到通讯录，恢复", self.returned),
            ("改名", self.renamed),
            ("支部/班组", self.moved),
            ("姓名由管理员导入，保留", self.kept_names),
            ("部门没有对应的支部/班组（directory.departments）", self.unmapped),
            ("说明", self.notes),
            ("问题", self.problems),
        ):
            out += [f"{title}：{item}" for item in items]
        return out


def _named_id(session: Session, model: type[Branch] | type[Team], name: str, create: bool) -> int | None:
    table = getattr(model, "__table__").c  # noqa: B009 - SQLModel types do not declare __table__
    found = session.execute(select(table.id).where(table.name == name)).scalar_one_or_none()
    if found is None and create:
        row = model(name=name)
        session.add(row)
        session.flush()
        found = row.id
    return found


def sync_members(
    session: Session, config: Config, directory: Directory, *, dry_run: bool = False, actor: str = "cli"
) -> SyncReport:
    """Compare the members with the directory; apply the changes unless `dry_run`."""
    report = SyncReport(dry_run=dry_run, notes=list(directory.notes))
    if not directory.people:
        report.problems.append(
            "企业微信通讯录里一个人也没有读到（应用的可见范围？directory.root_department？），什么也没改"
        )
        return report
    b, t = getattr(Branch, "__table__").c, getattr(Team, "__table__").c  # noqa: B009
    rows = session.execute(
        select(Member, b.name, t.name)
        .outerjoin(Branch, b.id == Member.branch_id)
        .outerjoin(Team, t.id == Member.team_id)
        .order_by(Member.id)  # type: ignore[arg-type]
    ).all()
    known = {m.userid: (m, branch or "", team or "") for m, branch, team in rows}
    write = not dry_run
    for person in sorted(directory.people.values(), key=lambda p: p.userid):
        place = placement(config, directory, person)
        if place is None:
            depts = "、".join(
                directory.departments[d].name or str(d) if d in directory.departments else str(d)
                for d in person.departments
            )
            report.unmapped.append(f"{person.name or person.userid}（{person.userid}，部门 {depts or '无'}）")
        branch = place.branch if place else ""
        team = place.team if place else ""
        found = known.get(person.userid)
        if found is None:
            name = person.name or person.userid
            report.added.append(
                f"{name}（{person.userid}）" + (f" {branch}" if branch else "") + (f" {team}" if team else "")
            )
            if write:
                session.add(
                    Member(
                        userid=person.userid,
                        name=name,
                        branch_id=_named_id(session, Branch, branch, True) if branch else None,
                        team_id=_named_id(session, Team, team, True) if team else None,
                        active=True,
                        name_source="wecom",
                    )
                )
            continue
        member, old_branch, old_team = found
        label = f"{member.name}（{member.userid}）"
        if not member.active:
            report.returned.append(label)
            if write:
                member.active = True
        if person.name and person.name != member.name:
            if member.name_source == "wecom":
                report.renamed.append(f"{label} → {person.name}")
                if write:
                    member.name = person.name
            else:
                report.kept_names.append(f"{label}，企业微信里叫「{person.name}」")
        if branch and branch != old_branch:
            report.moved.append(f"{label} 支部 {old_branch or '未登记'} → {branch}")
            if write:
                member.branch_id = _named_id(session, Branch, branch, True)
                member.party_group_id = None  # a 党小组 belongs to its branch
        if team and team != old_team:
            report.moved.append(f"{label} 班组 {old_team or '未登记'} → {team}")
            if write:
                member.team_id = _named_id(session, Team, team, True)
    for userid, (member, _, _) in known.items():
        if member.active and userid not in directory.people:
            report.left.append(f"{member.name}（{userid}）")
            if write:
                member.active = False
    if write:
        session.add(
            AuditLog(at=datetime.now(UTC), actor=actor, action="members.sync", detail=report.summary())
        )
    return report


@job("directory_sync", prepare=fetch_directory)
def directory_sync(ctx: JobContext) -> str:
    """Scheduled `members sync`: apply, and tell the admins what changed (nothing when nothing did)."""
    from bot.members import admin_userids

    report = sync_members(ctx.session, ctx.config, ctx.prepared, actor="directory_sync")
    if report.problems:
        raise RuntimeError("; ".join(report.problems))
    if report.changed:
        text = "【先锋通讯录同步】\n" + "\n".join(report.lines())
        for userid in admin_userids(ctx.session, ctx.config.admins):
            ctx.send(userid, text, ref="directory")
    return report.summary()
