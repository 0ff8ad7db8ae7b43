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
    indicator: str | None = None  # overrides activities.indicator (e.g. 三会一课 → 能力素质提升)
    description: str = ""


@config_section("activities")
class ActivitiesConfig(PracticeSection):
    indicator: str | None = None
    # Sign-in opens this long before the start and closes this long after it.
    signin_window_minutes: int = Field(default=20, ge=1)
    default_duration_minutes: int = Field(default=90, ge=1)
    types: list[ActivityType] = Field(default_factory=list)

    def references(self, config: Config) -> list[tuple[str, str]]:
        named = [("activities.indicator", self.indicator)]
        named += [(f"activities.types[{i}].indicator", t.indicator) for i, t in enumerate(self.types)]
        return indicator_refs(config, named)

    @model_validator(mode="after")
    def _consistent(self) -> ActivitiesConfig:
        problems = Problems()
        check_unique_names(problems, "types", self.types)
        problems.raise_if_any()
        return self

    def type(self, text: str) -> ActivityType | None:
        """An activity type by name or alias (e.g. "读书会" → 我来阅读)."""
        return find_named(self.types, text)

    def indicator_for(self, activity_type: ActivityType) -> str | None:
        return activity_type.indicator or self.indicator
