"""The configuration of "1+1+N" publicity: channels with their points (lowest first), the business
modules with their monthly quotas, and the default channel for 录用. The `publicity` section; the
commands that use it (投稿, 录用, 退回) belong to the publicity practice.
"""

from __future__ import annotations

from typing import Literal

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
    default_channel: str | None = None  # this module's channel for `录用 #N` alone; else the section's
    description: str = ""


@config_section("publicity")
class PublicityConfig(PracticeSection):
    indicator: str | None = None
    submission_points: NonNegative = 0.5
    default_monthly_quota: int = Field(default=2, ge=0)
    default_channel: str | None = None  # used by `录用 #N` without a channel
    # How a channel's points are shared by co-authors: `equal` (split evenly) or `each` (every author
    # earns the channel's full points).
    coauthor_split: Literal["equal", "each"] = "equal"
    announce_group: str | None = None  # a group robot told of every accepted article (None: nobody)
    channels: list[Channel] = Field(default_factory=list)  # lowest first
    modules: list[PublicityModule] = Field(default_factory=list)

    def references(self, config: Config) -> list[tuple[str, str]]:
        problems = indicator_refs(config, [("publicity.indicator", self.indicator)])
        if self.announce_group and self.announce_group not in config.groups:
            problems.append(("publicity.announce_group", f"unknown group {self.announce_group!r}"))
        return problems

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
        for i, m in enumerate(self.modules):
            if m.default_channel is not None and self.channel(m.default_channel) is None:
                problems.add(
                    f"modules[{i}].default_channel",
                    f"unknown channel (channels are {names_of(self.channels)})",
                )
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

    def shares(self, points_x100: int, authors: int) -> list[int]:
        """What each of `authors` earns of `points_x100` (hundredths), the submitter first: an equal
        split gives the remainder of the division to the first authors, so the shares add up."""
        if authors <= 0:
            return []
        if self.coauthor_split == "each":
            return [points_x100] * authors
        base, rest = divmod(points_x100, authors)
        return [base + (1 if i < rest else 0) for i in range(authors)]

    def channel_rank(self, code: str) -> int:
        """0 for the lowest channel; -1 for none."""
        return next((i for i, c in enumerate(self.channels) if c.code == code), -1)

    def default_for(self, module: str) -> Channel | None:
        """The channel `录用 #N` (or the card's button) uses for an article of `module`."""
        found = self.module(module)
        code = (found.default_channel if found else None) or self.default_channel
        return self.channel(code) if code else (self.channels[0] if self.channels else None)

    def module_quota(self, name: str) -> int:
        """Articles a module owes per month: its own quota, else the default."""
        found = self.module(name)
        return (
            found.monthly_quota if found and found.monthly_quota is not None else self.default_monthly_quota
        )
