"""The configuration of the quarterly 党建考评: which components make a branch's score, with what
weight and on what scale, and the limit on the committee's additions. The `assessment` section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bot.config import PracticeSection, Problems, Section, config_section


class Weighted(Section):
    """One component of the score: its key (as registered by a practice), weight and scale."""

    key: str
    weight: float = Field(ge=0)
    # relative: against the best branch (best = the full weight); rate: a fraction 0–1 of the weight;
    # direct: the value itself, times the weight, on top of the 100 (the committee's additions).
    scale: Literal["relative", "rate", "direct"] = "relative"
    label: str = ""  # overrides the registered label in 考评 and the workbook


@config_section("assessment")
class AssessmentConfig(PracticeSection):
    """党建考评: the components and the committee's additions."""

    components: list[Weighted] = Field(default_factory=list)
    max_addition: float = Field(10.0, gt=0)  # one 考评 加分 entry, either way

    @model_validator(mode="after")
    def _unique(self) -> AssessmentConfig:
        problems = Problems()
        seen: set[str] = set()
        for i, c in enumerate(self.components):
            if c.key in seen:
                problems.add(f"components[{i}].key", f"component {c.key!r} listed twice")
            seen.add(c.key)
        problems.raise_if_any()
        return self
