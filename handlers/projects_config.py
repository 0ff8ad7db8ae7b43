"""The configuration of 书记项目: the indicator project points book under, and the points for a
reached milestone and an accepted project (to its members, and to the branch). The `projects` section.
"""

from __future__ import annotations

from bot.config import (
    Config,
    NonNegative,
    PracticeSection,
    config_section,
)
from handlers.points_config import indicator_refs


@config_section("projects")
class ProjectsConfig(PracticeSection):
    """书记项目: points to project members when a milestone is reached and when the project is accepted."""

    indicator: str | None = None
    milestone_points: NonNegative = 2.0
    completion_points: NonNegative = 5.0
    # Part of a branch's score when branch_ranking.include_branch_items is on.
    branch_completion_points: NonNegative = 0.0

    def references(self, config: Config) -> list[tuple[str, str]]:
        return indicator_refs(config, [("projects.indicator", self.indicator)])
