"""Standard 5-field crontab expressions turned into APScheduler 3 triggers, weekdays included.

APScheduler 3 numbers weekdays from Monday = 0, while crontab numbers them from Sunday = 0 (and 7),
so `CronTrigger.from_crontab("17 8 * * 1-5")` would fire Tuesday to Saturday. Numbers in the
weekday field are therefore rewritten as names before the trigger is built.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"(?P<a>\d+)(?:-(?P<b>\d+))?(?P<step>/\d+)?")


def _weekday_part(part: str) -> str:
    m = _PART.fullmatch(part)
    if m is None:  # names, `*` and `*/n` mean the same in both conventions
        return part
    a, b, step = int(m["a"]), m["b"], m["step"] or ""
    if a > 7 or (b is not None and int(b) > 7):
        raise ValueError(f"weekday {part!r} out of range 0-7")
    if b is None:
        return _NAMES[a] + step
    end = int(b)
    if a == 0 and not step:  # Sunday first in crontab, last in APScheduler: split it off
        return "sun" if end == 0 else f"sun,mon-{_NAMES[end]}" if end < 7 else "*"
    if a == 0 or end < a:
        raise ValueError(f"weekday range {part!r}: write it with names, e.g. mon-fri")
    return f"{_NAMES[a]}-{_NAMES[end]}{step}" if end < 7 else f"{_NAMES[a]}-sun{step}"


def crontab_trigger(expr: str, timezone: tzinfo | str | None = None) -> CronTrigger:
    """A trigger for a standard crontab line (minute hour day month weekday)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    weekday = ",".join(_weekday_part(p) for p in weekday.lower().split(","))
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=timezone)
