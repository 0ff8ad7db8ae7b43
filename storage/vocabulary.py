"""The words the tables store, each defined once with its Chinese label: role codes, political
statuses, I-L-U-O skill levels and the states of an item (`#N`).

They live at the bottom layer so that `storage/`, `bot/` and `handlers/` import the same definitions;
the values are the strings written to the database and typed in CSV files, so they never change.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a member may do; everyone is a `member`, the rest are granted by the member import."""

    MEMBER = "member"
    CORRESPONDENT = "correspondent"
    MODULE_LEAD = "module_lead"
    COACH = "coach"
    TEAM_LEADER = "team_leader"
    GROUP_LEADER = "group_leader"
    SECRETARY = "secretary"
    COMMITTEE = "committee"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {
    Role.MEMBER: "成员",
    Role.CORRESPONDENT: "通讯员",
    Role.MODULE_LEAD: "模块管理骨干",
    Role.COACH: "带教师傅",
    Role.TEAM_LEADER: "班组长",
    Role.GROUP_LEADER: "党小组长",
    Role.SECRETARY: "支部书记",
    Role.COMMITTEE: "党总支",
    Role.ADMIN: "管理员",
}
ROLE_CODES: tuple[str, ...] = tuple(r.value for r in Role)


class PoliticalStatus(StrEnum):
    """政治面貌, stored as the Chinese word itself (it is what the member CSV holds)."""

    PARTY_MEMBER = "党员"
    PROBATIONARY = "预备党员"
    LEAGUE_MEMBER = "团员"
    MASSES = "群众"

    @property
    def label(self) -> str:
        return self.value


# Who counts as a Party member for 尽责 claims and the branch assessment: full and probationary.
PARTY_STATUSES: tuple[str, ...] = (PoliticalStatus.PARTY_MEMBER, PoliticalStatus.PROBATIONARY)


class SkillLevel(StrEnum):
    """The I-L-U-O scale, lowest first; `0` is untrained."""

    UNTRAINED = "0"
    I = "I"  # noqa: E741 - the scale's own letter
    L = "L"
    U = "U"
    O = "O"  # noqa: E741

    @property
    def label(self) -> str:
        return _LEVEL_LABELS[self]

    @property
    def rank(self) -> int:
        """0 for untrained … 4 for O, for comparisons such as `>= U`."""
        return list(SkillLevel).index(self)


_LEVEL_LABELS = {
    SkillLevel.UNTRAINED: "未培训",
    SkillLevel.I: "培训中，不可独立上岗",
    SkillLevel.L: "可在监护下操作",
    SkillLevel.U: "可独立上岗",
    SkillLevel.O: "可教他人（岗位教练）",
}
ILUO_ORDER: tuple[str, ...] = tuple(level.value for level in SkillLevel)


class ItemState(StrEnum):
    """Where an item (`#N`) stands. Only `pending` items wait for a decision."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    VOIDED = "voided"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    ItemState.PENDING: "待审",
    ItemState.APPROVED: "已通过",
    ItemState.REJECTED: "已驳回",
    ItemState.WITHDRAWN: "已撤销",
    ItemState.VOIDED: "已作废",
}
