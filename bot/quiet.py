"""Quiet hours: a daily window (e.g. 21:30–07:30, passing midnight) during which pushes that are not
answers wait in the outbox. The workshop's window is `quiet_hours` in `config.yaml`; a member may set
their own with 免打扰 (stored on `members.quiet_hours`: NULL keeps the workshop's, "" turns it off).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot.config import QUIET_PATTERN, check_quiet_window


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # passes midnight

    def end_after(self, now: datetime) -> datetime:
        """The first moment at or after `now` (aware, local) when the window closes."""
        end = now.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end >= now else end + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@functools.lru_cache(maxsize=256)
def parse_window(text: str | None) -> Window | None:
    """ "22:00-06:00" (full-width digits and 至/到/~ accepted) → Window; "" or None → None.
    Raises ValueError for anything else."""
    if not text:
        return None
    start, end = check_quiet_window(text).split("-")
    return Window(time.fromisoformat(start), time.fromisoformat(end))


def looks_like_window(text: str) -> bool:
    return QUIET_PATTERN.fullmatch(text) is not None
