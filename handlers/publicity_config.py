"""The configuration of "1+1+N" publicity: channels with their points (lowest first), the business
modules with their monthly quotas, and the default channel for 录用. The `publicity` section; the
commands that use it (投稿, 录用, 退回) belong to the publicity practice.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.config import (
    Config,
    NamedEntry,
    NonNegative,
    PracticeSection,
    Problems,
    check_code,
    check_unique_names,
    comparison_key,
    config_section,
    find_named,
    names_of,
)
from handlers.points_config import indicator_refs

# --- publicity: "1+1+N" 通讯员 ----------------------------------------------------------------------


class Channel(NamedEntry):
    """Where an accepted article (录用) appeared; points per article, scored once at its highest channel."""

    code: str
    points: NonNegative


class PublicityModule(NamedEntry):
    """A business module (宣传模块) with its lead and correspondents; quota = articles per month."""

    monthly_quota: int | None = Field(default=None, ge=0)
    description: str = ""


@config_section("publicity")
class PublicityConfig(PracticeSection):
    indicator: str | None = None
    submission_points: NonNegative = 0.5
    default_monthly_quota: int = Field(default=2, ge=0)
    default_channel: str | None = None  # used by `录用 #N` without a channel
    channels: list[Channel] = Field(default_factory=list)  # lowest first
    modules: list[PublicityModule] = Field(default_factory=list)

    def references(self, config: Config) -> list[tuple[str, str]]:
        return indicator_refs(config, [("publicity.indicator", self.indicator)])

    @model_validator(mode="after")
    def _consistent(self) -> PublicityConfig:
        problems = Problems()
        check_unique_names(problems, "channels", self.channels)
        check_unique_names(problems, "modules", self.modules)
        codes: set[str] = set()
        for i, ch in enumerate(self.channels):
            check_code(problems, f"channels[{i}].code", ch.code)
            if comparison_key(ch.code) in codes:
                problems.add(f"channels[{i}].code", f"duplicate channel code {ch.code!r}")
            codes.add(comparison_key(ch.code))
            if i and ch.points < self.channels[i - 1].points:
                problems.add(
                    f"channels[{i}].points", "must not be below the previous channel's (list lowest first)"
                )
        if self.default_channel is not None and self.channel(self.default_channel) is None:
            problems.add("default_channel", f"unknown channel (channels are {names_of(self.channels)})")
        problems.raise_if_any()
        return self

    def channel(self, text: str) -> Channel | None:
        """A channel by code, name or alias (e.g. "东方烟草报" → 行业媒体)."""
        key = comparison_key(text)
        return next((c for c in self.channels if comparison_key(c.code) == key), None) or find_named(
            self.channels, text
        )

    def module(self, text: str) -> PublicityModule | None:
        return find_named(self.modules, text)

    def module_quota(self, name: str) -> int:
        """Articles a module owes per month: its own quota, else the default."""
        found = self.module(name)
        return (
            found.monthly_quota if found and found.monthly_quota is not None else self.default_monthly_quota
        )
