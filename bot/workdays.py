"""The Chinese working calendar: which days are working days, for schedules with `calendar: workdays`.

The official calendar (statutory holidays, and the 调休 Saturdays and Sundays worked in exchange)
comes from the `chinesecalendar` library, which knows the years up to its release and raises
`NotImplementedError` for later ones. `calendar.holidays` and `calendar.workdays` in `config.yaml`
win over it: an admin fills them in for a year the library does not know yet (the `calendar_check`
job says so every December). For a year known to neither, Monday to Friday are working days, and the
gap is logged once per year.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

import chinese_calendar

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger(__name__)

_warned: set[int] = set()  # years whose gap was logged, once per process


def library_knows(year: int) -> bool:
    """Whether the installed `chinesecalendar` has the State Council's arrangement for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def last_known_year() -> int:
    """The last year the installed `chinesecalendar` knows."""
    return max(d.year for d in chinese_calendar.holidays)


class WorkCalendar:
    """Working days: the overrides first, then the library, then Monday to Friday."""

    def __init__(self, holidays: frozenset[date] = frozenset(), workdays: frozenset[date] = frozenset()):
        self.holidays = holidays
        self.workdays = workdays

    @classmethod
    def of(cls, config: Config) -> WorkCalendar:
        return cls(frozenset(config.calendar.holidays), frozenset(config.calendar.workdays))

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in _warned and not self.overridden(day.year):
                _warned.add(day.year)
                log.warning(
                    "working calendar: %d is not in chinesecalendar %s and config.yaml calendar lists no "
                    "day of it; Monday to Friday count as working days (upgrade chinesecalendar, or fill "
                    "in calendar.holidays and calendar.workdays)",
                    day.year,
                    _library_version(),
                )
            return day.weekday() < 5

    def overridden(self, year: int) -> bool:
        """Whether the admins listed any day of `year` (taken as: they have entered that year)."""
        return any(d.year == year for d in (*self.holidays, *self.workdays))

    def covers(self, year: int) -> bool:
        """Whether `year`'s holidays are known, from the library or from the overrides."""
        return library_knows(year) or self.overridden(year)


def _library_version() -> str:
    return str(getattr(chinese_calendar, "__version__", "?"))
