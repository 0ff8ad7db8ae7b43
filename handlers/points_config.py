"""The configuration of 我的岗位我尽责 and 创新积分: categories, the indicators and their points,
caps and deductions, who approves claims, how branches are ranked, and the innovation points table
with its split among a team. Registered as the `points` and `innovation` sections of `config.yaml`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bot.config import (
    Config,
    NamedEntry,
    NonNegative,
    Period,
    PracticeSection,
    Problems,
    RoleCode,
    Section,
    check_code,
    check_unique_names,
    comparison_key,
    config_section,
    find_named,
    names_of,
    roles,
    sub_path,
)

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
        return find_named(self.variants, text)

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

    roles: list[RoleCode] = Field(default_factory=lambda: roles("secretary"))


@config_section("points")
class PointsConfig(PracticeSection):
    categories: list[Category] = Field(default_factory=list)
    deductions: Category | None = None
    claim_backdate: bool = False
    branch_ranking: BranchRanking = BranchRanking()
    approval: Approval = Approval()

    @model_validator(mode="after")
    def _consistent(self) -> PointsConfig:
        problems = Problems()
        groups: list[tuple[str, Category]] = [(f"categories[{i}]", c) for i, c in enumerate(self.categories)]
        if self.deductions is not None:
            groups.append(("deductions", self.deductions))
        seen_categories: dict[str, str] = {}
        seen_codes: dict[str, str] = {}
        seen_names: dict[str, str] = {}
        for path, category in groups:
            check_code(problems, f"{path}.code", category.code)
            key = comparison_key(category.code)
            if key in seen_categories:
                problems.add(
                    f"{path}.code", f"duplicate category code {category.code!r} (also {seen_categories[key]})"
                )
            seen_categories[key] = category.name
            for j, ind in enumerate(category.indicators):
                ipath = f"{path}.indicators[{j}]"
                check_code(problems, f"{ipath}.code", ind.code)
                key = comparison_key(ind.code)
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
                    key = comparison_key(word)
                    if key in seen_names and seen_names[key] != ind.code:
                        problems.add(f"{ipath}.{word_path}", f"{word!r} is already used by {seen_names[key]}")
                    seen_names[key] = ind.code
                check_unique_names(problems, f"{ipath}.variants", ind.variants)
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
    def groups(self) -> list[Category]:
        """The categories in file order, then the deductions."""
        return [*self.categories, *([self.deductions] if self.deductions else [])]

    @property
    def indicators(self) -> list[Indicator]:
        """Every indicator, categories first (in file order), then the deductions."""
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return [ind for c in groups for ind in c.indicators]

    def indicator(self, code: str) -> Indicator | None:
        """The indicator with this code (case-insensitive, full-width accepted)."""
        key = comparison_key(code)
        return next((i for i in self.indicators if comparison_key(i.code) == key), None)

    def category_of(self, code: str) -> Category | None:
        """The category (or the deductions) that holds indicator `code`."""
        key = comparison_key(code)
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return next((c for c in groups if any(comparison_key(i.code) == key for i in c.indicators)), None)

    def category(self, text: str) -> Category | None:
        """A category by code or name, e.g. "A" or "攻坚克难" (for `排行 … [类别]`)."""
        key = comparison_key(text)
        groups = [*self.categories, *([self.deductions] if self.deductions else [])]
        return next((c for c in groups if key in (comparison_key(c.code), comparison_key(c.name))), None)

    def find_indicators(self, text: str, *, include_deductions: bool = True) -> list[Indicator]:
        """Candidates for what someone typed in `指标：…`.

        An exact code, name or alias gives exactly that indicator; otherwise every indicator whose
        name or alias contains the text (or is contained in it) is returned, in file order, so the
        caller can ask "did you mean …" when there are several and none.
        """
        key = comparison_key(text)
        if not key:
            return []
        pool = self.indicators if include_deductions else [i for c in self.categories for i in c.indicators]
        exact = [i for i in pool if key in {comparison_key(w) for w in (i.code, i.name, *i.aliases)}]
        if exact:
            return exact[:1]
        return [
            i
            for i in pool
            if any(
                key in comparison_key(w) or comparison_key(w) in key
                for w in (i.name, *i.aliases)
                if comparison_key(w)
            )
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
        return find_named(self.awards, text)


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


@config_section("innovation")
class InnovationConfig(PracticeSection):
    # Indicator under which innovation points also count in the 尽责 totals; None keeps them as a
    # ranking of their own (创新积分).
    indicator: str | None = None
    approval_roles: list[RoleCode] = Field(default_factory=lambda: roles("secretary", "committee"))
    types: list[InnovationType] = Field(default_factory=list)
    levels: list[NamedEntry] = Field(default_factory=list)  # lowest first
    grades: list[NamedEntry] = Field(default_factory=list)  # highest first
    default_grade: str | None = None  # used when 等次 is left out
    table: PointsTable = Field(default_factory=dict)
    split: InnovationSplit = InnovationSplit()

    def references(self, config: Config) -> list[tuple[str, str]]:
        return indicator_refs(config, [("innovation.indicator", self.indicator)])

    @model_validator(mode="after")
    def _consistent(self) -> InnovationConfig:
        problems = Problems()
        check_unique_names(problems, "types", self.types)
        check_unique_names(problems, "levels", self.levels)
        check_unique_names(problems, "grades", self.grades)
        if self.default_grade is not None and self.grade(self.default_grade) is None:
            problems.add("default_grade", f"unknown grade (grades are {names_of(self.grades)})")
        if self.table or any(t.use_table and t.table is None for t in self.types):
            self._check_table(problems, "table", self.table)
        for i, t in enumerate(self.types):
            check_unique_names(problems, f"types[{i}].awards", t.awards)
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

    def _check_table(self, problems: Problems, path: str, table: PointsTable) -> None:
        levels = {e.name for e in self.levels}
        grades = {e.name for e in self.grades}
        for level, row in table.items():
            if level not in levels:
                problems.add(sub_path(path, level), f"unknown level (levels are {names_of(self.levels)})")
                continue
            for grade in row:
                if grade not in grades:
                    problems.add(
                        sub_path(sub_path(path, level), grade),
                        f"unknown grade (grades are {names_of(self.grades)})",
                    )
            for missing in (g.name for g in self.grades if g.name not in row):
                problems.add(sub_path(path, level), f"missing grade {missing}")
        for missing in (e.name for e in self.levels if e.name not in table):
            problems.add(path, f"missing level {missing}")

    def type(self, text: str) -> InnovationType | None:
        """The innovation type named or aliased `text` (e.g. "QC" → QC成果)."""
        return find_named(self.types, text)

    def level(self, text: str) -> NamedEntry | None:
        """The level named or aliased `text` (e.g. "广西中烟" → 公司级)."""
        return find_named(self.levels, text)

    def grade(self, text: str) -> NamedEntry | None:
        """The grade named or aliased `text` (e.g. "示范级" → 一等)."""
        return find_named(self.grades, text)

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


def indicator_refs(config: Config, named: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Problems for indicator codes that a section names but the points section does not define."""
    points = PointsConfig.of(config)
    return [
        (path, f"unknown indicator {code!r}")
        for path, code in named
        if code and points.indicator(code) is None
    ]
