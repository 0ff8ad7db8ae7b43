"""The configuration of 书记项目: the indicator accepted projects book under, a topic's points when the
committee sets none, how they are split in the team, milestone points, whether several branches may
take one topic, and when reminders go out. The `projects` section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.config import Config, NonNegative, PracticeSection, Section, config_section
from handlers.points_config import indicator_refs


class Reminders(Section):
    """When the `project_reminders` job nags, and whom."""

    before_days: int = Field(default=3, ge=0)  # a milestone this many days ahead (and on its day): the team
    idle_days: int = Field(default=14, ge=1)  # no progress for this long: the leader (then every 7 days)
    committee_weekday: int = Field(default=1, ge=1, le=7)  # overdue milestones to the committee, ISO weekday


@config_section("projects")
class ProjectsConfig(PracticeSection):
    """书记项目: what acceptance books, and to whom."""

    indicator: str | None = None
    points: NonNegative = 20.0  # a topic's points when 出题 gives no 积分
    # equal: the same for everyone; leader_share: the leader takes `leader_share` of it, the members
    # share the rest equally; proposed: the leader writes each member's part in 结题 (分配：…).
    split: Literal["equal", "leader_share", "proposed"] = "leader_share"
    leader_share: float = Field(0.4, ge=0, le=1)
    milestone_points: NonNegative = 2.0  # each team member, per milestone done, booked on acceptance
    several_branches: bool = False  # may one topic be taken by more than one branch?
    groups: list[str] = Field(default_factory=list)  # where new topics are announced (configured groups)
    reminders: Reminders = Reminders()

    def references(self, config: Config) -> list[tuple[str, str]]:
        refs = indicator_refs(config, [("projects.indicator", self.indicator)])
        for i, group in enumerate(self.groups):
            if group not in config.groups:
                refs.append((f"projects.groups[{i}]", f"no group named {group!r} (see groups)"))
        return refs
