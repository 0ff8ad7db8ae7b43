"""Typed configuration: `config.yaml` validated once, at start, into pydantic objects.

Any value may be written `${ENV_VAR}` (or `${ENV_VAR:-default}`); substitution happens before
validation so typed fields see the real value. `python -m bot check` prints every problem with its
key path and exits 1.

Besides the spine (WeCom, server, database, jobs) the file holds the workshop's domain rules as data —
indicators, innovation points, publicity channels, skills, activities — so code never hard-codes them.
Lookups by what people type (code, name or alias; full-width or half-width) live on the section models.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
DEFAULT_CONFIG_PATH = "config.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- shared helpers for the domain sections -------------------------------------------------------


@functools.lru_cache(maxsize=8192)  # names and aliases are looked up on every claim: fold each once
def normalize(text: str) -> str:
    """Fold what people type into a comparable key: full-width → half-width, no spaces, case-free."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


class _Problems:
    """Collects `(sub.path, message)` pairs inside a validator so one run reports all of them.

    Raised as one pydantic error of type `config_problems`; `format_validation_error` expands it
    into one line per problem, each prefixed with the section's own path.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(f"{p}: {m}" if p else m for p, m in self.items)
            raise PydanticCustomError(
                "config_problems", "{summary}", {"summary": summary, "problems": self.items}
            )


def _sub(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


_CODE = re.compile(r"[A-Za-z0-9_-]+")


def _check_code(problems: _Problems, path: str, code: str) -> None:
    if not _CODE.fullmatch(code):
        problems.add(path, "must be letters, digits, '-' or '_' (e.g. A01)")


def _names_of(entries: Sequence[NamedEntry]) -> str:
    return ", ".join(e.name for e in entries)


def _check_unique_names(problems: _Problems, path: str, entries: Sequence[NamedEntry]) -> None:
    """Names and aliases must identify one entry each, after normalisation."""
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for key_path, word in [
            ("name", entry.name),
            *((f"aliases[{j}]", a) for j, a in enumerate(entry.aliases)),
        ]:
            key = normalize(word)
            if not key:
                problems.add(f"{path}[{i}].{key_path}", "must not be empty")
            elif key in seen and seen[key] != i:
                problems.add(
                    f"{path}[{i}].{key_path}", f"{word!r} is already used by {entries[seen[key]].name}"
                )
            else:
                seen[key] = i


class NamedEntry(Section):
    """Anything people pick by name: the canonical `name` plus `aliases` they may type instead."""

    name: str
    aliases: list[str] = Field(default_factory=list)

    def matches(self, text: str) -> bool:
        key = normalize(text)
        return bool(key) and any(key == normalize(w) for w in (self.name, *self.aliases))


_Entry = TypeVar("_Entry", bound="NamedEntry")


def _find(entries: Iterable[_Entry], text: str) -> _Entry | None:
    return next((e for e in entries if e.matches(text)), None)


# I-L-U-O skill levels, lowest first. "0" = untrained. YAML reads a bare 0 as a number, hence str().
ILUO_ORDER: tuple[str, ...] = ("0", "I", "L", "U", "O")
LevelCode = Annotated[Literal["0", "I", "L", "U", "O"], BeforeValidator(lambda v: str(v).upper())]
Period = Literal["week", "month", "quarter", "year"]
RoleCode = Literal[
    "member",
    "correspondent",
    "module_lead",
    "coach",
    "team_leader",
    "group_leader",
    "secretary",
    "committee",
    "admin",
]
NonNegative = Annotated[float, Field(ge=0)]


def _roles(*codes: RoleCode) -> list[RoleCode]:
    return list(codes)


def _certification_defaults() -> dict[Literal["0", "I", "L", "U", "O"], float]:
    return {"U": 3.0, "O": 5.0}


def level_rank(level: str) -> int:
    """Position of an I-L-U-O level (0 for untrained … 4 for O), for comparisons like `>= U`."""
    return ILUO_ORDER.index(str(level).upper())


# --- spine ----------------------------------------------------------------------------------------


class WeComConfig(Section):
    corp_id: str = ""
    agent_id: int | None = None
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = DEFAULT_API_BASE

    @property
    def configured(self) -> bool:
        """True when real credentials are present; otherwise `serve` starts in local mode."""
        return bool(self.corp_id and self.secret)

    @field_validator("agent_id", mode="before")
    @classmethod
    def _empty_agent_is_none(cls, v: Any) -> Any:
        # `${WECOM_AGENT_ID:-}` yields "" in local mode; that means "not configured", not a bad number.
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("api_base")
    @classmethod
    def _api_root(cls, v: str) -> str:
        # wechatpy and most WeCom documents write the base with /cgi-bin; the client adds it itself.
        from bot.wecom.client import api_root

        root = api_root(v)
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", root):
            raise ValueError(f"must be an http(s) URL such as {DEFAULT_API_BASE}, got {v!r}")
        return root

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9]{43}", v):
            raise ValueError("must be 43 letters or digits (the EncodingAESKey from the WeCom admin console)")
        return v


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    callback_path: str = "/wecom/callback"
    max_clock_skew: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    public_url: str = ""


class DatabaseConfig(Section):
    url: str = "sqlite:///data/pioneer.db"
    busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=10, ge=1)
    batch_max: int = Field(default=64, ge=1)


class HandlerConfig(Section):
    budget_seconds: float = Field(default=3.0, gt=0, le=4.5)
    form_ttl_minutes: int = Field(default=30, ge=1)


class OutboxConfig(Section):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    per_member_per_minute: int = Field(default=30, ge=1)
    # WeCom drops, without an error, app messages past 1,000 an hour to one member.
    per_member_per_hour: int = Field(default=1000, ge=1)
    per_webhook_per_minute: int = Field(default=20, ge=1)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # The group robot told when app messages cannot be sent at all (robots need no access token).
    alert_group: str = ""


class GroupConfig(Section):
    webhook: str
    description: str = ""

    @field_validator("webhook")
    @classmethod
    def _looks_like_url(cls, v: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+\S*", v):
            raise ValueError("must be an http(s) URL (the group robot's webhook address)")
        return v


class ScheduleConfig(Section):
    name: str
    cron: str
    job: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    grace_minutes: int = Field(default=60, ge=0)
    description: str = ""

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, v: str) -> str:
        from bot.cron import crontab_trigger

        try:
            crontab_trigger(v)
        except ValueError as exc:
            raise ValueError(f"not a cron expression ({exc})") from None
        return v


class LoggingConfig(Section):
    level: str = "INFO"
    json_lines: bool = Field(default=False, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- points: 我的岗位我尽责 ------------------------------------------------------------------------


class Cap(Section):
    """At most `count` entries and/or `points` points per member per `period` (e.g. 年度封顶)."""

    count: int | None = Field(default=None, ge=1)
    points: float | None = Field(default=None, gt=0)
    period: Period

    @model_validator(mode="after")
    def _has_a_limit(self) -> Cap:
        if self.count is None and self.points is None:
            raise ValueError("needs count or points (or both)")
        return self


class Variant(NamedEntry):
    """One of several point values of an indicator, e.g. 合理化建议: 提交 1 / 采纳 3 / 推广 5."""

    points: float


class Indicator(Section):
    """One scored item (指标). `points` applies when no variant is chosen; negative means a deduction."""

    code: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    points: float
    unit: str = "次"
    cap: Cap | None = None
    variants: list[Variant] = Field(default_factory=list)
    # False: booked by another flow (录用, 签到, 带教, 结题), never by a 尽责 claim.
    claimable: bool = True
    # 一票否决: an approved entry zeroes the member's total for the quarter; `points` is then ignored.
    veto: bool = False
    description: str = ""

    def variant(self, text: str) -> Variant | None:
        """The variant named (or aliased) `text`, if any."""
        return _find(self.variants, text)

    def points_for(self, variant: str | None = None) -> float | None:
        """Points for one entry: the named variant's, or the base points; None for an unknown variant."""
        if variant is None or not variant.strip():
            return self.points
        found = self.variant(variant)
        return found.points if found else None


class Category(Section):
    """A 类别 of indicators, e.g. A 攻坚克难."""

    code: str
    name: str
    description: str = ""
    indicators: list[Indicator] = Field(default_factory=list)


class BranchRanking(Section):
    """How branches (支部) are ranked against each other from their members' points."""

    rule: Literal["average_per_party_member", "total"] = "average_per_party_member"
    # Points given to a branch as a whole (e.g. a 书记项目 accepted) count towards its score.
    include_branch_items: bool = True
    description: str = ""


class Approval(Section):
    """Who decides claims. Nobody ever approves their own item — that is a rule, not a setting."""

    roles: list[RoleCode] = Field(default_factory=lambda: _roles("secretary"))


class PointsConfig(Section):
    categories: list[Category] = Field(default_factory=list)
    deductions: Category | None = None
    claim_backdate: bool = False
    branch_ranking: BranchRanking = BranchRanking()
    approval: Approval = Approval()

    @model_validator(mode="after")
    def _consistent(self) -> PointsConfig:
        problems = _Problems()
        groups: list[tuple[str, Category]] = [(f"categories[{i}]", c) for i, c in enumerate(self.categories)]
        if self.deductions is not None:
            groups.append(("deductions", self.deductions))
        seen_categories: dict[str, str] = {}
        seen_codes: dict[str, str] = {}
        seen_names: dict[str, str] = {}
        for path, category in groups:
            _check_code(problems, f"{path}.code", category.code)
            key = normalize(category.code)
            if key in seen_categories:
                problems.add(
                    f"{path}.code", f"duplicate category code {category.code!r} (also {seen_categories[key]})"
                )
            seen_categories[key] = category.name
            for j, ind in enumerate(category.indicators):
                ipath = f"{path}.indicators[{j}]"
                _check_code(problems, f"{ipath}.code", ind.code)
                key = normalize(ind.code)
                if key in seen_codes:
                    problems.add(
                        f"{ipath}.code",
                        f"duplicate indicator code {ind.code!r} (also in category {seen_codes[key]})",
                    )
                seen_codes[key] = category.code
                for word_path, word in [
                    ("name", ind.name),
                    *((f"aliases[{k}]", a) for k, a in enumerate(ind.aliases)),
                ]:
                    key = normalize(word)
                    if key in seen_names and seen_names[key] != ind.code:
                        problems.add(f"{ipath}.{word_path}", f"{word!r} is already used by {seen_names[key]}")
                    seen_names[key] = ind.code
                _check_unique_names(problems, f"{ipath}.variants", ind.variants)
                if path == "deductions":
                    if ind.points > 0:
                        problems.add(f"{ipath}.points", "must be zero or negative (this is a deduction)")
                    for k, v in enumerate(ind.variants):
                        if v.points > 0:
                            problems.add(
                                f"{ipath}.variants[{k}].points",
                                "must be zero or negative (this is a deduction)",
                            )
        problems.raise_if_any()
        return self

    @property
    def indicators(self) -> list[Indicator]:
        """Every indicator, categories first (in file order), then the deductions."""
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return [ind for c in groups for ind in c.indicators]

    def indicator(self, code: str) -> Indicator | None:
        """The indicator with this code (case-insensitive, full-width accepted)."""
        key = normalize(code)
        return next((i for i in self.indicators if normalize(i.code) == key), None)

    def category_of(self, code: str) -> Category | None:
        """The category (or the deductions) that holds indicator `code`."""
        key = normalize(code)
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return next((c for c in groups if any(normalize(i.code) == key for i in c.indicators)), None)

    def category(self, text: str) -> Category | None:
        """A category by code or name, e.g. "A" or "攻坚克难" (for `排行 … [类别]`)."""
        key = normalize(text)
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return next((c for c in groups if key in (normalize(c.code), normalize(c.name))), None)

    def find_indicators(self, text: str, *, include_deductions: bool = True) -> list[Indicator]:
        """Candidates for what someone typed in `指标：…`.

        An exact code, name or alias gives exactly that indicator; otherwise every indicator whose
        name or alias contains the text (or is contained in it) is returned, in file order, so the
        caller can ask "did you mean …" when there are several and none.
        """
        key = normalize(text)
        if not key:
            return []
        pool = self.indicators if include_deductions else [i for c in self.categories for i in c.indicators]
        exact = [i for i in pool if key in {normalize(w) for w in (i.code, i.name, *i.aliases)}]
        if exact:
            return exact[:1]
        return [
            i
            for i in pool
            if any(key in normalize(w) or normalize(w) in key for w in (i.name, *i.aliases) if normalize(w))
        ]


# --- innovation: 创新积分制 ------------------------------------------------------------------------

PointsTable = dict[str, dict[str, NonNegative]]


class InnovationAward(NamedEntry):
    """A level-independent award of one innovation type, e.g. 六西格玛 绿带结项 5, 专利 发明授权 8."""

    points: NonNegative


class InnovationType(NamedEntry):
    """A kind of result (QC成果, 六西格玛 …) and where its points come from.

    Lookup order: the type's own `awards` (matched by the grade typed), then — if `use_table` —
    the type's `table` when given, otherwise the shared level × grade table.
    """

    awards: list[InnovationAward] = Field(default_factory=list)
    use_table: bool = True
    table: PointsTable | None = None
    description: str = ""

    def award(self, text: str) -> InnovationAward | None:
        return _find(self.awards, text)


class InnovationSplit(Section):
    """How a result's points are shared among its team (课题组)."""

    # leader_share: leader × leader_share, every other member × member_share.
    # equal: the points divided equally among everyone named, leader included.
    rule: Literal["leader_share", "equal"] = "leader_share"
    leader_share: NonNegative = 1.0
    member_share: NonNegative = 0.5
    # The team's total for one result is at most this multiple of the result's points; above it every
    # share is scaled down in proportion (a 10-person QC circle must not earn 6× a solo patent).
    team_cap_factor: float | None = Field(default=None, gt=0)


class InnovationConfig(Section):
    # Indicator under which innovation points also count in the 尽责 totals; None keeps them as a
    # ranking of their own (创新积分).
    indicator: str | None = None
    approval_roles: list[RoleCode] = Field(default_factory=lambda: _roles("secretary", "committee"))
    types: list[InnovationType] = Field(default_factory=list)
    levels: list[NamedEntry] = Field(default_factory=list)  # lowest first
    grades: list[NamedEntry] = Field(default_factory=list)  # highest first
    default_grade: str | None = None  # used when 等次 is left out
    table: PointsTable = Field(default_factory=dict)
    split: InnovationSplit = InnovationSplit()

    @model_validator(mode="after")
    def _consistent(self) -> InnovationConfig:
        problems = _Problems()
        _check_unique_names(problems, "types", self.types)
        _check_unique_names(problems, "levels", self.levels)
        _check_unique_names(problems, "grades", self.grades)
        if self.default_grade is not None and self.grade(self.default_grade) is None:
            problems.add("default_grade", f"unknown grade (grades are {_names_of(self.grades)})")
        if self.table or any(t.use_table and t.table is None for t in self.types):
            self._check_table(problems, "table", self.table)
        for i, t in enumerate(self.types):
            _check_unique_names(problems, f"types[{i}].awards", t.awards)
            if t.table is not None:
                self._check_table(problems, f"types[{i}].table", t.table)
            if not t.use_table and not t.awards:
                problems.add(
                    f"types[{i}]", "has no awards and does not use the table, so it can never earn points"
                )
            if t.use_table:
                # Awards are looked up before the table; an award named like a grade would hide that grade.
                for j, a in enumerate(t.awards):
                    for word in (a.name, *a.aliases):
                        clash = self.grade(word)
                        if clash is not None:
                            problems.add(
                                f"types[{i}].awards[{j}]", f"{word!r} clashes with grade {clash.name}"
                            )
        problems.raise_if_any()
        return self

    def _check_table(self, problems: _Problems, path: str, table: PointsTable) -> None:
        levels = {e.name for e in self.levels}
        grades = {e.name for e in self.grades}
        for level, row in table.items():
            if level not in levels:
                problems.add(_sub(path, level), f"unknown level (levels are {_names_of(self.levels)})")
                continue
            for grade in row:
                if grade not in grades:
                    problems.add(
                        _sub(_sub(path, level), grade), f"unknown grade (grades are {_names_of(self.grades)})"
                    )
            for missing in (g.name for g in self.grades if g.name not in row):
                problems.add(_sub(path, level), f"missing grade {missing}")
        for missing in (e.name for e in self.levels if e.name not in table):
            problems.add(path, f"missing level {missing}")

    def type(self, text: str) -> InnovationType | None:
        """The innovation type named or aliased `text` (e.g. "QC" → QC成果)."""
        return _find(self.types, text)

    def level(self, text: str) -> NamedEntry | None:
        """The level named or aliased `text` (e.g. "广西中烟" → 公司级)."""
        return _find(self.levels, text)

    def grade(self, text: str) -> NamedEntry | None:
        """The grade named or aliased `text` (e.g. "示范级" → 一等)."""
        return _find(self.grades, text)

    def level_rank(self, text: str) -> int | None:
        """0 for the lowest level upwards; to keep "one result, counted once at its highest level"."""
        found = self.level(text)
        return None if found is None else self.levels.index(found)

    def points(self, type_: str, level: str | None, grade: str | None = None) -> float | None:
        """Points for one result, from names or aliases; None when the combination earns nothing.

        Resolve each field with `type`/`level`/`grade` first to tell people which one is wrong.
        """
        kind = self.type(type_)
        if kind is None:
            return None
        if grade:
            award = kind.award(grade)
            if award is not None:
                return award.points
        if not kind.use_table or level is None:
            return None
        found_level = self.level(level)
        found_grade = (
            self.grade(grade) if grade else (self.grade(self.default_grade) if self.default_grade else None)
        )
        if found_level is None or found_grade is None:
            return None
        table = kind.table if kind.table is not None else self.table
        return table.get(found_level.name, {}).get(found_grade.name)

    def shares(self, points: float, members: int) -> tuple[float, float]:
        """(leader's points, each other member's points) for a result with `members` people besides
        the leader."""
        if members < 0:
            raise ValueError("members must be >= 0")
        if self.split.rule == "equal":
            leader = member = points / (members + 1)
        else:
            leader, member = points * self.split.leader_share, points * self.split.member_share
        total = leader + member * members
        factor = self.split.team_cap_factor
        cap = None if factor is None else points * factor
        if cap is not None and total > cap:
            leader, member = leader * cap / total, member * cap / total
        return round(leader, 2), round(member, 2)


# --- publicity: "1+1+N" 通讯员 ----------------------------------------------------------------------


class Channel(NamedEntry):
    """Where an accepted article (录用) appeared; points per article, scored once at its highest channel."""

    code: str
    points: NonNegative


class PublicityModule(NamedEntry):
    """A business module (宣传模块) with its lead and correspondents; quota = articles per month."""

    monthly_quota: int | None = Field(default=None, ge=0)
    description: str = ""


class PublicityConfig(Section):
    indicator: str | None = None
    submission_points: NonNegative = 0.5
    default_monthly_quota: int = Field(default=2, ge=0)
    default_channel: str | None = None  # used by `录用 #N` without a channel
    channels: list[Channel] = Field(default_factory=list)  # lowest first
    modules: list[PublicityModule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PublicityConfig:
        problems = _Problems()
        _check_unique_names(problems, "channels", self.channels)
        _check_unique_names(problems, "modules", self.modules)
        codes: set[str] = set()
        for i, ch in enumerate(self.channels):
            _check_code(problems, f"channels[{i}].code", ch.code)
            if normalize(ch.code) in codes:
                problems.add(f"channels[{i}].code", f"duplicate channel code {ch.code!r}")
            codes.add(normalize(ch.code))
            if i and ch.points < self.channels[i - 1].points:
                problems.add(
                    f"channels[{i}].points", "must not be below the previous channel's (list lowest first)"
                )
        if self.default_channel is not None and self.channel(self.default_channel) is None:
            problems.add("default_channel", f"unknown channel (channels are {_names_of(self.channels)})")
        problems.raise_if_any()
        return self

    def channel(self, text: str) -> Channel | None:
        """A channel by code, name or alias (e.g. "东方烟草报" → 行业媒体)."""
        key = normalize(text)
        return next((c for c in self.channels if normalize(c.code) == key), None) or _find(
            self.channels, text
        )

    def module(self, text: str) -> PublicityModule | None:
        return _find(self.modules, text)

    def module_quota(self, name: str) -> int:
        """Articles a module owes per month: its own quota, else the default."""
        found = self.module(name)
        return (
            found.monthly_quota if found and found.monthly_quota is not None else self.default_monthly_quota
        )


# --- skills: 以技带岗, 多能工训练表 ----------------------------------------------------------------


class Skill(NamedEntry):
    """A post (岗位) = one column of the multi-skill matrix."""

    section: str  # 工段
    complexity: int = Field(ge=1, le=5)
    cycle_days: int | None = Field(default=None, ge=1)  # filled from complexity_cycle_days when left out
    ideal_qualified: int = Field(default=3, ge=1)  # Toyota "ideal number" of people at U or O
    description: str = ""


class ILUOTargets(Section):
    """Target level by relation to one's own post: 本岗位精通、相关岗位熟悉、一般岗位随缺随补."""

    own: LevelCode = Field(default="U", alias="本岗位")
    related: LevelCode = Field(default="L", alias="相关岗位")  # same 工段
    general: LevelCode = Field(default="I", alias="一般岗位")  # other 工段, trained when a gap appears

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DEFAULT_LABELS = {
    "0": "未培训",
    "I": "培训中，不可独立上岗",
    "L": "可在监护下操作",
    "U": "可独立上岗",
    "O": "可教他人（岗位教练）",
}


class ILUOConfig(Section):
    labels: dict[str, str] = Field(default_factory=lambda: dict(_DEFAULT_LABELS))
    targets: ILUOTargets = ILUOTargets()
    coach_min_level: LevelCode = "U"  # a coach (带教师傅) must be at least this in the skill
    coverage_min_level: LevelCode = "U"  # from this level a person counts towards a post's coverage

    @field_validator("labels", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        return {str(k).upper(): val for k, val in v.items()} if isinstance(v, dict) else v

    @field_validator("labels")
    @classmethod
    def _all_levels(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(ILUO_ORDER))
        if unknown:
            raise ValueError(f"unknown level {unknown[0]!r} (levels are 0, I, L, U, O)")
        missing = [lvl for lvl in ILUO_ORDER if lvl not in v]
        if missing:
            raise ValueError(f"missing label for {', '.join(missing)}")
        return v


class TrainingConfig(Section):
    """Points booked by the three-step training (带教) and by level certification."""

    indicator: str | None = None  # the coach's, when step 3 is passed
    points: NonNegative = 2.0
    certification_indicator: str | None = None  # the trainee's, on reaching a level below
    certification_points: dict[LevelCode, NonNegative] = Field(default_factory=_certification_defaults)
    pass_score: float = Field(default=60.0, ge=0, le=100)  # step 3 成绩 (0–100) needed to pass


class SkillsConfig(Section):
    sections: list[str] = Field(default_factory=list)  # 工段, in process order
    complexity_cycle_days: dict[int, int] = Field(
        default_factory=lambda: {1: 15, 2: 30, 3: 60, 4: 90, 5: 180}
    )
    iluo: ILUOConfig = ILUOConfig()
    training: TrainingConfig = TrainingConfig()
    posts: list[Skill] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SkillsConfig:
        problems = _Problems()
        _check_unique_names(problems, "posts", self.posts)
        for c in range(1, 6):
            if c not in self.complexity_cycle_days:
                problems.add("complexity_cycle_days", f"missing complexity {c}")
        for c, days in self.complexity_cycle_days.items():
            if not 1 <= c <= 5:
                problems.add(f"complexity_cycle_days.{c}", "complexity must be 1 to 5")
            if days < 1:
                problems.add(f"complexity_cycle_days.{c}", "must be at least 1")
        for i, post in enumerate(self.posts):
            if self.sections and post.section not in self.sections:
                problems.add(
                    f"posts[{i}].section", f"unknown section (sections are {', '.join(self.sections)})"
                )
            if post.cycle_days is None and post.complexity in self.complexity_cycle_days:
                # Resolved once here so every reader sees the effective cycle; frozen models need this bypass.
                object.__setattr__(post, "cycle_days", self.complexity_cycle_days[post.complexity])
        problems.raise_if_any()
        return self

    def skill(self, text: str) -> Skill | None:
        """A post by name or alias (e.g. "切丝" → 切叶丝岗)."""
        return _find(self.posts, text)

    def cycle_days(self, text: str) -> int | None:
        """Default learning cycle (轮训周期) in days for a post."""
        found = self.skill(text)
        return found.cycle_days if found else None

    def label(self, level: str) -> str:
        """The Chinese label of an I-L-U-O level."""
        return self.iluo.labels.get(str(level).upper(), str(level))

    def target(self, own_post: str | None, post: str) -> str:
        """The level a member should reach in `post` given their own post (本岗位/相关岗位/一般岗位)."""
        mine, other = (self.skill(own_post) if own_post else None), self.skill(post)
        if mine is not None and other is not None and mine.name == other.name:
            return self.iluo.targets.own
        if mine is not None and other is not None and mine.section == other.section:
            return self.iluo.targets.related
        return self.iluo.targets.general


# --- activities and secretary projects ------------------------------------------------------------


class ActivityType(NamedEntry):
    points: NonNegative = 1.0  # per attendee who signs in
    organiser_points: NonNegative = 0.0
    indicator: str | None = None  # overrides activities.indicator (e.g. 三会一课 → 能力素质提升)
    description: str = ""


class ActivitiesConfig(Section):
    indicator: str | None = None
    # Sign-in opens this long before the start and closes this long after it.
    signin_window_minutes: int = Field(default=20, ge=1)
    default_duration_minutes: int = Field(default=90, ge=1)
    types: list[ActivityType] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ActivitiesConfig:
        problems = _Problems()
        _check_unique_names(problems, "types", self.types)
        problems.raise_if_any()
        return self

    def type(self, text: str) -> ActivityType | None:
        """An activity type by name or alias (e.g. "读书会" → 我来阅读)."""
        return _find(self.types, text)

    def indicator_for(self, activity_type: ActivityType) -> str | None:
        return activity_type.indicator or self.indicator


class ProjectsConfig(Section):
    """书记项目: points to project members when a milestone is reached and when the project is accepted."""

    indicator: str | None = None
    milestone_points: NonNegative = 2.0
    completion_points: NonNegative = 5.0
    # Part of a branch's score when branch_ranking.include_branch_items is on.
    branch_completion_points: NonNegative = 0.0


# --- the whole file -------------------------------------------------------------------------------


class Config(Section):
    wecom: WeComConfig = WeComConfig()
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    timezone: str = "Asia/Shanghai"
    handlers: HandlerConfig = HandlerConfig()
    outbox: OutboxConfig = OutboxConfig()
    logging: LoggingConfig = LoggingConfig()
    admins: list[str] = Field(default_factory=list)
    groups: dict[str, GroupConfig] = Field(default_factory=dict)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    points: PointsConfig = PointsConfig()
    innovation: InnovationConfig = InnovationConfig()
    publicity: PublicityConfig = PublicityConfig()
    skills: SkillsConfig = SkillsConfig()
    activities: ActivitiesConfig = ActivitiesConfig()
    projects: ProjectsConfig = ProjectsConfig()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        """Cross-section references: indicator codes named by flows, groups named by schedules."""
        problems = _Problems()
        refs: list[tuple[str, str | None]] = [
            ("innovation.indicator", self.innovation.indicator),
            ("publicity.indicator", self.publicity.indicator),
            ("activities.indicator", self.activities.indicator),
            ("projects.indicator", self.projects.indicator),
            ("skills.training.indicator", self.skills.training.indicator),
            ("skills.training.certification_indicator", self.skills.training.certification_indicator),
            *((f"activities.types[{i}].indicator", t.indicator) for i, t in enumerate(self.activities.types)),
        ]
        for path, code in refs:
            if code is not None and self.points.indicator(code) is None:
                problems.add(path, f"unknown indicator {code!r}")
        names: set[str] = set()
        for i, s in enumerate(self.schedules):
            if s.name in names:
                problems.add(f"schedules[{i}].name", f"duplicate schedule name {s.name!r}")
            names.add(s.name)
            for key in ("group", "groups"):
                if key not in s.arguments:
                    continue
                value = s.arguments[key]
                path = f"schedules[{i}].arguments.{key}"
                if isinstance(value, str):
                    items = [(path, value)]
                elif isinstance(value, list):
                    items = [(f"{path}[{j}]", v) for j, v in enumerate(value)]
                else:
                    problems.add(path, "must be a group name or a list of group names")
                    continue
                for item_path, group in items:
                    if not isinstance(group, str) or group not in self.groups:
                        known = ", ".join(self.groups) or "none"
                        problems.add(item_path, f"unknown group {group!r} (configured: {known})")
        problems.raise_if_any()
        return self

    @model_validator(mode="after")
    def _alert_group_exists(self) -> Config:
        group = self.outbox.alert_group
        if group and group not in self.groups:
            problems = _Problems()
            known = ", ".join(self.groups) or "none"
            problems.add("outbox.alert_group", f"unknown group {group!r} (configured: {known})")
            problems.raise_if_any()
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def indicator(self, code: str) -> Indicator | None:
        """The indicator with this code, deductions included (`A01`, `a01` and `Ａ01` all match)."""
        return self.points.indicator(code)

    def find_indicators(self, text: str, *, include_deductions: bool = True) -> list[Indicator]:
        """Indicator candidates for a code or (part of) a name; see `PointsConfig.find_indicators`."""
        return self.points.find_indicators(text, include_deductions=include_deductions)

    def innovation_points(self, type_: str, level: str | None, grade: str | None = None) -> float | None:
        """Points for an innovation result, e.g. ("QC成果", "厂级", "一等") → 8; None if it earns nothing."""
        return self.innovation.points(type_, level, grade)

    def schedule(self, name: str) -> ScheduleConfig | None:
        """A declared schedule by name (for `jobs run NAME`)."""
        return next((s for s in self.schedules if s.name == name), None)


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as `key.path: what is wrong`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, path: str, problems: list[str], env: dict[str, str]) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: substitute_env(v, _join(path, str(k)), problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _ENV_PATTERN.sub(repl, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_MESSAGES = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
}

# Messages that need a value from the error's context, e.g. the bound that was crossed.
_TEMPLATES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}",
}


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
        ctx = err.get("ctx") or {}
        if err["type"] == "config_problems":
            for sub, message in ctx["problems"]:
                full = path + sub if sub.startswith("[") else _join(path, sub)
                problems.append(f"{full or '(top level)'}: {message}")
            continue
        message = _MESSAGES.get(err["type"])
        if message is None and err["type"] in _TEMPLATES:
            message = _TEMPLATES[err["type"]].format(**{k: _plain(v) for k, v in ctx.items()})
        if message is None:
            message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{path or '(top level)'}: {message}")
    return problems


def _plain(value: Any) -> Any:
    """Bounds arrive as floats (`0.0`); show `0` the way the YAML author wrote it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_config(raw: Any, env: dict[str, str] | None = None) -> Config:
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of keys to values"])
    data = substitute_env(raw, "", problems, dict(os.environ) if env is None else env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    p = config_path(str(path) if path else None)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{p}: not valid YAML ({exc})"]) from None
    return parse_config(raw, env)
