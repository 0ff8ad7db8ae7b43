"""The configuration of 以技带岗 and the 多能工训练表: posts (skills) with their 工段, complexity,
learning cycle and ideal qualified count, the I-L-U-O labels and target levels, and the points that
the three-step training books. The `skills` section.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from bot.config import (
    ILUO_ORDER,
    Config,
    LevelCode,
    NamedEntry,
    NonNegative,
    PracticeSection,
    Problems,
    Section,
    certification_defaults,
    check_unique_names,
    config_section,
    find_named,
)
from handlers.points_config import indicator_refs
from storage.vocabulary import SkillLevel

# --- skills: 以技带岗, 多能工训练表 ----------------------------------------------------------------


class Skill(NamedEntry):
    """A post (岗位) = one column of the multi-skill matrix."""

    section: str  # 工段
    complexity: int = Field(ge=1, le=5)
    cycle_days: int | None = Field(default=None, ge=1)  # filled from complexity_cycle_days when left out
    ideal_qualified: int = Field(default=3, ge=1)  # Toyota "ideal number" of people at U or O
    recert_days: int | None = Field(default=None, ge=1)  # a level lapses this long after its last 定级/考核
    description: str = ""


class ILUOTargets(Section):
    """Target level by relation to one's own post: 本岗位精通、相关岗位熟悉、一般岗位随缺随补."""

    own: LevelCode = Field(default=SkillLevel.U, alias="本岗位")
    related: LevelCode = Field(default=SkillLevel.L, alias="相关岗位")  # same 工段
    general: LevelCode = Field(
        default=SkillLevel.I, alias="一般岗位"
    )  # other 工段, trained when a gap appears

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DEFAULT_LABELS = {level.value: level.label for level in SkillLevel}


class ILUOConfig(Section):
    labels: dict[str, str] = Field(default_factory=lambda: dict(_DEFAULT_LABELS))
    targets: ILUOTargets = ILUOTargets()
    coach_min_level: LevelCode = SkillLevel.U  # a coach (带教师傅) must be at least this in the skill
    coverage_min_level: LevelCode = SkillLevel.U  # from this level a person counts towards a post's coverage

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
    certification_points: dict[LevelCode, NonNegative] = Field(default_factory=certification_defaults)
    pass_score: float = Field(default=60.0, ge=0, le=100)  # step 3 成绩 (0–100) needed to pass


@config_section("skills")
class SkillsConfig(PracticeSection):
    sections: list[str] = Field(default_factory=list)  # 工段, in process order
    complexity_cycle_days: dict[int, int] = Field(
        default_factory=lambda: {1: 15, 2: 30, 3: 60, 4: 90, 5: 180}
    )
    iluo: ILUOConfig = ILUOConfig()
    training: TrainingConfig = TrainingConfig()
    posts: list[Skill] = Field(default_factory=list)

    def references(self, config: Config) -> list[tuple[str, str]]:
        return indicator_refs(
            config,
            [
                ("skills.training.indicator", self.training.indicator),
                ("skills.training.certification_indicator", self.training.certification_indicator),
            ],
        )

    @model_validator(mode="after")
    def _consistent(self) -> SkillsConfig:
        problems = Problems()
        check_unique_names(problems, "posts", self.posts)
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
        return find_named(self.posts, text)

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
