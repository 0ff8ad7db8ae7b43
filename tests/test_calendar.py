"""The working calendar: 2026's National Day and Spring Festival from chinesecalendar, their 调休
Saturdays and Sundays, a year the library does not know (with and without overrides), schedules that
skip days off and the December notice to the admins."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot import workdays
from bot.workdays import WorkCalendar, library_knows
from tests.kit import BotKit, quiet_schedules
from tests.test_points import claim

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 9, 30), True),  # Wednesday before National Day
        (date(2026, 10, 1), False),  # 国庆节
        (date(2026, 10, 5), False),  # a Monday inside the holiday
        (date(2026, 10, 7), False),  # the last day off
        (date(2026, 10, 8), True),  # Thursday: back at work
        (date(2026, 9, 20), True),  # 调休: a Sunday worked for National Day
        (date(2026, 10, 10), True),  # 调休: a Saturday worked for National Day
        (date(2026, 10, 11), False),  # an ordinary Sunday
        (date(2026, 2, 14), True),  # 调休: the Saturday before Spring Festival
        (date(2026, 2, 17), False),  # 春节 (a Tuesday)
        (date(2026, 2, 23), False),  # the last day of Spring Festival, a Monday
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # 调休: the Saturday after
    ],
)
def test_2026_from_the_library(day: date, working: bool):
    assert WorkCalendar().is_workday(day) is working


def test_overrides_win_over_the_library():
    cal = WorkCalendar(holidays=frozenset({date(2026, 9, 30)}), workdays=frozenset({date(2026, 10, 1)}))
    assert not cal.is_workday(date(2026, 9, 30)) and cal.is_workday(date(2026, 10, 1))


def test_a_year_the_library_does_not_know(caplog: pytest.LogCaptureFixture):
    assert library_knows(2026) and not library_knows(2031)
    workdays._warned.discard(2031)
    plain = WorkCalendar()
    with caplog.at_level(logging.WARNING, logger="bot.workdays"):
        assert plain.is_workday(date(2031, 10, 1))  # a Wednesday: nobody said it is a holiday
        assert not plain.is_workday(date(2031, 10, 4))  # Saturday
        assert plain.is_workday(date(2031, 10, 2))
    gaps = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(gaps) == 1 and "calendar.holidays" in gaps[0].getMessage()  # the gap is said once
    assert not plain.covers(2031)
    filled = WorkCalendar(
        holidays=frozenset({date(2031, 10, d) for d in range(1, 8)}),
        workdays=frozenset({date(2031, 9, 28), date(2031, 10, 11)}),  # the Sunday and Saturday worked
    )
    assert filled.covers(2031)
    assert not filled.is_workday(date(2031, 10, 1)) and not filled.is_workday(date(2031, 10, 7))
    assert filled.is_workday(date(2031, 9, 28)) and filled.is_workday(date(2031, 10, 11))
    assert filled.is_workday(date(2031, 10, 8)) and not filled.is_workday(date(2031, 10, 12))


def at(y: int, m: int, d: int, hh: int = 8, mm: int = 17) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


async def runs(bot: BotKit, name: str) -> list[tuple[str, str]]:
    rows = await bot.query(
        lambda s: s.execute(
            text("SELECT status, trigger FROM job_runs WHERE job = :j ORDER BY id"), {"j": name}
        ).all()
    )
    return [(r[0], r[1]) for r in rows]


async def test_the_digest_skips_national_day_and_runs_on_the_make_up_saturday(bot: BotKit):
    await claim(bot, "wangfang")
    await bot.drain()
    before = len(bot.texts_to("zhangwei"))
    s = bot.app.scheduler
    assert (await s.run("pending_digest", at(2026, 10, 1))).status == "skipped"
    assert (await s.run("pending_digest", at(2026, 10, 3))).status == "skipped"  # Saturday, and a holiday
    r = await s.run("pending_digest", at(2026, 10, 5), trigger="catch-up")  # Monday inside the holiday
    assert r.status == "skipped" and "2026-10-05 is not a working day" in r.detail
    await bot.drain()
    assert len(bot.texts_to("zhangwei")) == before  # nothing went out on days off
    assert (await s.run("pending_digest", at(2026, 10, 10))).status == "done"  # 调休 Saturday
    await bot.drain()
    assert any("等你审核" in t for t in bot.texts_to("zhangwei")[before:])
    # A skipped firing is recorded, so that a later catch-up does not run it after all.
    assert (await s.run("pending_digest", at(2026, 10, 1))).status == "skipped"
    assert await runs(bot, "pending_digest") == [
        ("skipped", "schedule"),
        ("skipped", "schedule"),
        ("skipped", "catch-up"),
        ("done", "schedule"),
    ]
    # Someone running it by hand on a holiday gets it run.
    assert (await s.run("pending_digest", at(2026, 10, 2), trigger="manual")).status == "done"


async def test_spring_festival_and_its_make_up_saturdays(bot: BotKit):
    s = bot.app.scheduler
    assert (await s.run("pending_digest", at(2026, 2, 14))).status == "done"  # 调休 Saturday
    assert (await s.run("pending_digest", at(2026, 2, 16))).status == "skipped"  # 除夕
    assert (await s.run("pending_digest", at(2026, 2, 19))).status == "skipped"
    assert (await s.run("pending_digest", at(2026, 2, 24))).status == "done"
    assert (await s.run("pending_digest", at(2026, 2, 28))).status == "done"  # 调休 Saturday
    assert (await s.run("pending_digest", at(2026, 3, 1))).status == "skipped"  # an ordinary Sunday


async def test_every_day_jobs_and_a_schedule_that_says_every_day(make_bot):
    schedules = quiet_schedules()
    for sch in schedules:
        if sch["name"] == "pending_digest":
            sch["calendar"] = "every_day"
    bot = await make_bot(schedules=schedules)
    s = bot.app.scheduler
    assert (await s.run("pending_digest", at(2026, 10, 1))).status == "done"
    # The weekly ranking keeps its Monday even inside the holiday (its job's default is every_day).
    assert (await s.run("ranking_weekly", at(2026, 10, 5, 8, 47))).status == "done"


async def test_a_year_unknown_to_the_library_with_overrides_in_config(make_bot):
    bot = await make_bot(calendar={"holidays": ["2031-10-01", "2031-10-02"], "workdays": ["2031-09-28"]})
    s = bot.app.scheduler
    assert (await s.run("pending_digest", at(2031, 10, 1))).status == "skipped"
    assert (await s.run("pending_digest", at(2031, 9, 28))).status == "done"  # a Sunday worked
    assert (await s.run("pending_digest", at(2031, 10, 3))).status == "done"  # not listed: a Friday


async def test_the_config_refuses_a_day_both_off_and_worked(make_bot):
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="2031-10-01 listed both"):
        await make_bot(calendar={"holidays": ["2031-10-01"], "workdays": ["2031-10-01"]})
    with pytest.raises(ConfigError, match="schedules"):
        await make_bot(
            schedules=[{"name": "x", "cron": "1 8 * * *", "job": "pending_digest", "calendar": "sundays"}]
        )


async def test_december_tells_the_admins_when_next_year_is_not_covered(make_bot):
    bot = await make_bot(
        schedules=[{"name": "calendar_check", "cron": "0 0 29 2 *", "job": "calendar_check"}]
    )
    s = bot.app.scheduler
    r = await s.run("calendar_check", at(2026, 12, 1, 9, 3))
    assert r.status == "done" and "not covered: 2027" in r.detail
    await bot.drain()
    [notice] = [t for t in bot.texts_to("liqiang") if "工作日历" in t]  # liqiang is the cast's admin
    assert "2027" in notice and "calendar.holidays" in notice and "2026 年" in notice
    assert not [t for t in bot.texts_to("zhangwei") if "工作日历" in t]  # not an admin


async def test_december_says_nothing_when_the_admins_filled_next_year_in(make_bot):
    bot = await make_bot(
        schedules=[{"name": "calendar_check", "cron": "0 0 29 2 *", "job": "calendar_check"}],
        calendar={"holidays": ["2027-01-01"]},
    )
    r = await bot.app.scheduler.run("calendar_check", at(2026, 12, 1, 9, 3))
    assert r.status == "done" and r.detail == "2027 covered"
    await bot.drain()
    assert not [t for t in bot.texts_to("liqiang") if "工作日历" in t]
