"""Periods (周/月/季度/年) and their keys, as pure functions of a date in the configured time zone.

Totals and rankings are kept per period key: `2026W48` (ISO week), `2026-11`, `2026Q4`, `2026`.
`parse_period` reads what people type after `排行` or `导出` (本周, 上季度, 2026Q3, 2026-11 …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Kind = Literal["week", "month", "quarter", "year"]
KINDS: tuple[Kind, ...] = ("week", "month", "quarter", "year")
KIND_NAMES: dict[Kind, str] = {"week": "周", "month": "月", "quarter": "季度", "year": "年"}


@dataclass(frozen=True, slots=True)
class Period:
    """One week, month, quarter or year: its key, first day and the day after its last."""

    kind: Kind
    key: str
    start: date
    end: date  # exclusive

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        """How people read it: 2026年第四季度, 2026年11月, 2026年第48周, 2026年."""
        if self.kind == "year":
            return f"{self.start.year}年"
        if self.kind == "quarter":
            return f"{self.start.year}年第{'一二三四'[(self.start.month - 1) // 3]}季度"
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        iso = self.start.isocalendar()
        return f"{iso.year}年第{iso.week}周"

    @property
    def span(self) -> str:
        return f"{self.start:%Y-%m-%d} 至 {self.last:%Y-%m-%d}"

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes at midnight in `tz`."""
        return datetime.combine(self.start, time(), tz), datetime.combine(self.end, time(), tz)


def period_of(kind: Kind, day: date) -> Period:
    """The period of `kind` that holds `day`."""
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        return Period("week", f"{iso.year}W{iso.week:02d}", start, start + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        return Period("month", f"{day.year}-{day.month:02d}", start, _add_months(start, 1))
    if kind == "quarter":
        q = (day.month - 1) // 3
        start = date(day.year, 3 * q + 1, 1)
        return Period("quarter", f"{day.year}Q{q + 1}", start, _add_months(start, 3))
    start = date(day.year, 1, 1)
    return Period("year", str(day.year), start, date(day.year + 1, 1, 1))


def period_keys(day: date) -> tuple[str, str, str, str]:
    """The week, month, quarter and year keys that an entry dated `day` counts towards."""
    return tuple(period_of(k, day).key for k in KINDS)  # type: ignore[return-value]


def previous(period: Period) -> Period:
    """The period of the same kind just before `period`."""
    return period_of(period.kind, period.start - timedelta(days=1))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


_RELATIVE: dict[str, tuple[Kind, int]] = {
    "本周": ("week", 0),
    "这周": ("week", 0),
    "上周": ("week", -1),
    "本月": ("month", 0),
    "这个月": ("month", 0),
    "当月": ("month", 0),
    "上月": ("month", -1),
    "上个月": ("month", -1),
    "本季度": ("quarter", 0),
    "本季": ("quarter", 0),
    "当季": ("quarter", 0),
    "这季度": ("quarter", 0),
    "上季度": ("quarter", -1),
    "上季": ("quarter", -1),
    "本年": ("year", 0),
    "今年": ("year", 0),
    "本年度": ("year", 0),
    "去年": ("year", -1),
    "上年": ("year", -1),
}
# What schedules write in `arguments.period`.
_SCHEDULED: dict[str, tuple[Kind, int]] = {
    "current_week": ("week", 0),
    "previous_week": ("week", -1),
    "current_month": ("month", 0),
    "previous_month": ("month", -1),
    "current_quarter": ("quarter", 0),
    "previous_quarter": ("quarter", -1),
    "current_year": ("year", 0),
    "previous_year": ("year", -1),
}
_QUARTER = re.compile(r"(\d{4})(?:年)?(?:Q|第)([1-4一二三四])(?:季度?)?", re.IGNORECASE)
_MONTH = re.compile(r"(\d{4})(?:-|/|\.|年)(\d{1,2})月?")
_WEEK = re.compile(r"(\d{4})(?:年)?(?:W|第)(\d{1,2})周?", re.IGNORECASE)
_YEAR = re.compile(r"(\d{4})年?(?:度)?")


def relative(word: str, today: date) -> Period | None:
    """本周/上月/上季度/今年… or a schedule's `previous_quarter` etc., relative to `today`."""
    found = _RELATIVE.get(word) or _SCHEDULED.get(word)
    if found is None:
        return None
    kind, offset = found
    period = period_of(kind, today)
    for _ in range(-offset):
        period = previous(period)
    return period


def parse_period(text: str, today: date) -> Period | None:
    """A period from what people type: 本周, 上季度, 2026Q3, 2026年第3季度, 2026-11, 2026年11月, 2026W48,
    2026."""
    word = text.strip().replace(" ", "").replace("－", "-").upper()
    found = relative(text.strip(), today)
    if found is not None:
        return found
    m = _QUARTER.fullmatch(word)
    if m:
        q = "1234一二三四".index(m.group(2)) % 4 + 1
        return period_of("quarter", date(int(m.group(1)), 3 * q - 2, 1))
    m = _WEEK.fullmatch(word)
    if m:
        year, week = int(m.group(1)), int(m.group(2))
        try:
            return period_of("week", date.fromisocalendar(year, week, 1))
        except ValueError:
            return None
    m = _MONTH.fullmatch(word)
    if m and 1 <= int(m.group(2)) <= 12:
        return period_of("month", date(int(m.group(1)), int(m.group(2)), 1))
    m = _YEAR.fullmatch(word)
    if m and 2000 <= int(m.group(1)) <= 2100:
        return period_of("year", date(int(m.group(1)), 1, 1))
    return None


def looks_like_period(text: str) -> bool:
    """Whether a word is meant as a period (so a bad one can be refused rather than read as a category)."""
    word = text.strip()
    return word in _RELATIVE or bool(re.match(r"\d{4}", word))
