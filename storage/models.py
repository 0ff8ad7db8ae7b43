"""Tables of the spine: organisation and members, the inbox, dialogue state, the outbox and job runs.

Domain tables (points, training, publicity…) live beside these in their own modules so that each
practice's records are found in one place. Times are stored as UTC (naive in SQLite, aware in
PostgreSQL via `DateTime(timezone=True)`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(**kw: object) -> object:
    """A UTC timestamp column that always reads back timezone-aware."""
    return Field(sa_column=Column(UTCDateTime(), **kw))  # type: ignore[arg-type]


class Branch(SQLModel, table=True):
    """支部: a Party branch of the workshop's 党总支."""

    __tablename__ = "branches"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class PartyGroup(SQLModel, table=True):
    """党小组: a Party group inside a branch, usually tied to production teams."""

    __tablename__ = "party_groups"
    __table_args__ = (UniqueConstraint("branch_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str
    branch_id: int | None = Field(default=None, foreign_key="branches.id")


class Team(SQLModel, table=True):
    """班组: a production team (shift), e.g. 甲班."""

    __tablename__ = "teams"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class Module(SQLModel, table=True):
    """宣传模块: a business module with its publicity lead and correspondents ("1+1+N")."""

    __tablename__ = "modules"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class Member(SQLModel, table=True):
    """成员: a person known to the bot by their WeCom userid (the table row; handlers see a member as
    `Sender` when they write, `Person` when they are named or paid)."""

    __tablename__ = "members"
    id: int | None = Field(default=None, primary_key=True)
    userid: str = Field(unique=True)
    name: str = Field(index=True)
    branch_id: int | None = Field(default=None, foreign_key="branches.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="teams.id", index=True)
    party_group_id: int | None = Field(default=None, foreign_key="party_groups.id")
    module_id: int | None = Field(default=None, foreign_key="modules.id")
    political_status: str = "群众"
    active: bool = True
    post: str = ""  # own post (岗位) for 多能工 targets, the configured name; "" when not imported
    quiet_hours: str | None = None  # 免打扰 "22:00-06:00"; None: the workshop's window; "": none
    name_source: str = "csv"  # csv: set by an admin's import (directory sync keeps it) | wecom


class MemberRole(SQLModel, table=True):
    """A role held by a member (codes in `storage/vocabulary.py`; `member` is implicit for everyone)."""

    __tablename__ = "member_roles"
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    role: str = Field(primary_key=True)


class SkillLevel(SQLModel, table=True):
    """技能等级: a member's current I-L-U-O level in one skill (post); history lives in the audit log."""

    __tablename__ = "skill_levels"
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    skill: str = Field(primary_key=True)
    level: str = "0"
    updated_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    source: str = "import"


class AuditLog(SQLModel, table=True):
    """Who changed what, outside the points ledger (imports, direct level settings, role changes)."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    actor: str
    action: str
    subject: str = ""
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class UnknownUser(SQLModel, table=True):
    """A WeCom user who wrote to the bot without being a member; admins are told once."""

    __tablename__ = "unknown_users"
    userid: str = Field(primary_key=True)
    first_seen: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    messages: int = 1


class InboxEntry(SQLModel, table=True):
    """Every accepted callback, keyed for exactly-once handling, with the reply it got."""

    __tablename__ = "inbox"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    userid: str
    kind: str
    command: str = ""
    received_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    reply: str | None = Field(default=None, sa_column=Column(Text))
    reply_via_outbox: bool = False


class Dialogue(SQLModel, table=True):
    """A form being filled in over several messages; one per user, expires after `form_ttl_minutes`."""

    __tablename__ = "dialogues"
    userid: str = Field(primary_key=True)
    command: str
    values: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    awaiting: str
    expires_at: datetime = ts(nullable=False)  # type: ignore[assignment]


class OutboxMessage(SQLModel, table=True):
    """A message on its way out: queued → sending → sent, or dead after too many failures."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_target_sent", "target", "sent_at"),
        Index("ix_outbox_target_status_id", "target", "status", "id"),  # "is an older one still pending?"
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str  # app | webhook | card_update
    target: str  # userid, group name, or response code owner
    msgtype: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "queued"  # queued | held (quiet hours) | sending | sent | dead | superseded
    attempts: int = 0
    created_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    next_attempt_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    lease_until: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    sent_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    last_error: str = ""
    ref: str = ""  # what the message is about, e.g. "item:12" so cards can be updated later
    result: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class JobRun(SQLModel, table=True):
    """One firing of a scheduled job, claimed before it runs so it runs once across processes."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_at"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str
    scheduled_at: datetime = ts(nullable=False)  # type: ignore[assignment]
    started_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    finished_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]
    status: str = "running"  # done | failed | skipped (a workdays schedule on a day off)
    trigger: str = "schedule"  # schedule | catch-up | manual
    detail: str = ""


class MediaFile(SQLModel, table=True):
    """A file a member sent (e.g. a photo as evidence), fetched from WeCom's media API and kept.

    WeCom keeps media for 3 days only, so the bytes are fetched by the outbox worker soon after the
    message arrives and stored here.
    """

    __tablename__ = "media_files"
    id: int | None = Field(default=None, primary_key=True)
    media_id: str
    ref: str = Field(default="", index=True)  # what it belongs to, e.g. "item:12"
    userid: str = ""
    filename: str = ""
    content_type: str = ""
    size: int = 0
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: str = "pending"  # pending | fetched | failed
    created_at: datetime = ts(nullable=False, default=utcnow)  # type: ignore[assignment]
    fetched_at: datetime | None = ts(nullable=True)  # type: ignore[assignment]


class WsLease(SQLModel, table=True):
    """Who holds a long connection that only one process may keep (the AI bot's): renewed by the
    holder, taken over by another process once `expires_at` has passed."""

    __tablename__ = "ws_leases"
    name: str = Field(primary_key=True)
    holder: str
    expires_at: datetime = ts(nullable=False)  # type: ignore[assignment]
