"""The configuration of activities (主题教育, 宣讲, 我来阅读 …): their types with points per attendee
and organiser, the default duration and the sign-in window. The `activities` section.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.config import (
    Config,
    NamedEntry,
    NonNegative,
    PracticeSection,
    Problems,
    check_unique_names,
    config_section,
    find_named,
)
from handlers.points_config import indicator_refs


class ActivityType(NamedEntry):
    points: NonNegative = 1.0  # per attendee who signs in
    organiser_points: NonNegative = 0.0
    duration_minutes: int | None = Field(default=None, ge=1)  # else activities.default_duration_minutes
    indicator: str | None = None  # overrides activities.indicator (e.g. 三会一课 → 能力素质提升)
    description: str = ""


@config_section("activities")
class ActivitiesConfig(PracticeSection):
    indicator: str | None = None
    # Sign-in opens this long before the start …
    signin_window_minutes: int = Field(default=20, ge=1)
    # … and closes this long after the end (0: at the end).
    signin_after_end_minutes: int = Field(default=0, ge=0)
    default_duration_minutes: int = Field(default=90, ge=1)
    reminder_minutes: int = Field(default=60, ge=1)  # the reminder goes out this long before the start
    out_of_scope_points: bool = False  # whether someone outside the activity's scope earns its points
    workshop_group: str | None = None  # group robot for workshop-wide activities
    branch_groups: dict[str, str] = Field(default_factory=dict)  # branch name → its group robot
    types: list[ActivityType] = Field(default_factory=list)

    def references(self, config: Config) -> list[tuple[str, str]]:
        named = [("activities.indicator", self.indicator)]
        named += [(f"activities.types[{i}].indicator", t.indicator) for i, t in enumerate(self.types)]
        problems = indicator_refs(config, named)
        groups = [("activities.workshop_group", self.workshop_group)]
        groups += [(f"activities.branch_groups.{b}", g) for b, g in self.branch_groups.items()]
        problems += [(path, f"unknown group {g!r}") for path, g in groups if g and g not in config.groups]
        return problems

    @model_validator(mode="after")
    def _consistent(self) -> ActivitiesConfig:
        problems = Problems()
        check_unique_names(problems, "types", self.types)
        problems.raise_if_any()
        return self

    def type(self, text: str) -> ActivityType | None:
        """An activity type by name or alias (e.g. "读书会" → 我来阅读)."""
        return find_named(self.types, text)

    def duration_for(self, activity_type: ActivityType) -> int:
        return activity_type.duration_minutes or self.default_duration_minutes

    def indicator_for(self, activity_type: ActivityType) -> str | None:
        return activity_type.indicator or self.indicator
