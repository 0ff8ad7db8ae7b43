"""The scheduler: one run per scheduled time across bot instances, catch-up after downtime, failures.

The test schedules fire once a day at a minute computed from the clock (a few minutes ago, or well
before), so no test can cross into another firing while it runs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from bot.cron import crontab_trigger
from bot.scheduler import JobContext, last_fire_time
from storage.models import AuditLog, JobRun
from tests.kit import BotKit, wait_until


def ping(ctx: JobContext) -> str:
    """A job the tests define: it records a row and posts to the group named in its arguments."""
    ctx.session.execute(
        insert(AuditLog).values(at=ctx.now, actor="scheduler", action="ping", subject=ctx.now.isoformat())
    )
    ctx.broadcast(ctx.arguments["group"], f"**ping** {ctx.now:%H:%M}")
    ctx.send("zhangwei", "定时提醒")
    return "pinged"


def broken(ctx: JobContext) -> str:
    ctx.session.execute(insert(AuditLog).values(at=ctx.now, actor="scheduler", action="broken"))
    raise RuntimeError("the job has a bug")


JOBS = {"ping": ping, "broken": broken}
TZ = ZoneInfo("Asia/Shanghai")


def daily_at(minutes_ago: int) -> str:
    """A crontab line firing once a day, `minutes_ago` minutes before now (Asia/Shanghai)."""
    at = datetime.now(TZ) - timedelta(minutes=minutes_ago)
    return f"{at.minute} {at.hour} * * *"


def schedules(grace: int = 10, cron: str | None = None) -> list[dict[str, object]]:
    return [
        {
            "name": "ping_daily",
            "cron": cron or daily_at(2),  # missed two minutes ago: within the grace period
            "job": "ping",
            "grace_minutes": grace,
            "arguments": {"group": "制丝车间群"},
        },
        {"name": "broken_daily", "cron": "17 3 * * *", "job": "broken", "grace_minutes": 0},
    ]


async def runs(bot: BotKit, job: str | None = None) -> list[JobRun]:
    stmt = select(JobRun).order_by(JobRun.id)
    if job:
        stmt = stmt.where(JobRun.job == job)
    return await bot.query(lambda s: s.execute(stmt).scalars().all())


async def pings(bot: BotKit) -> int:
    return await bot.query(
        lambda s: s.execute(select(func.count()).where(AuditLog.action == "ping")).scalar_one()
    )


@pytest.mark.parametrize(
    ("weekdays", "fires_on"),
    [
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("1", ["Mon"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("0-2", ["Sun", "Mon", "Tue"]),
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("6,0", ["Sun", "Sat"]),
        ("*", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(weekdays: str, fires_on: list[str]):
    # APScheduler 3 counts Monday as 0; crontab counts Sunday as 0. 2026-11-22 is a Sunday.
    trigger = crontab_trigger(f"17 8 * * {weekdays}", TZ)
    t, days = datetime(2026, 11, 22, 0, 0, tzinfo=TZ), []
    while (t := trigger.get_next_fire_time(t, t + timedelta(seconds=1))) < datetime(2026, 11, 29, tzinfo=TZ):
        days.append(t.strftime("%a"))
    assert days == fires_on


def test_last_fire_time_looks_back_within_the_window():
    trigger = crontab_trigger("17 8 * * 1-5", TZ)
    tz = TZ
    monday_9 = datetime(2026, 11, 23, 9, 0, tzinfo=tz)
    assert last_fire_time(trigger, monday_9, timedelta(hours=2)) == datetime(2026, 11, 23, 8, 17, tzinfo=tz)
    assert last_fire_time(trigger, monday_9, timedelta(minutes=30)) is None
    sunday = datetime(2026, 11, 22, 9, 0, tzinfo=tz)
    assert last_fire_time(trigger, sunday, timedelta(hours=30)) is None


async def test_a_missed_firing_runs_at_start_within_its_grace(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(jobs=JOBS, schedules=schedules(grace=10))
    (run,) = await runs(bot, "ping_daily")
    assert (run.status, run.trigger, run.detail) == ("done", "catch-up", "pinged")
    await bot.drain()
    (posted,) = bot.fake.webhooks("制丝车间群")
    assert posted.body["content"].startswith("**ping**")
    assert bot.texts_to("zhangwei") == ["定时提醒"]


async def test_no_catch_up_outside_the_grace_period(make_bot):  # type: ignore[no-untyped-def]
    # Missed 30 minutes ago with 10 minutes' grace: too late to run it now.
    bot = await make_bot(jobs=JOBS, schedules=schedules(grace=10, cron=daily_at(30)))
    assert await runs(bot) == []
    assert await pings(bot) == 0
    await bot.drain()
    assert bot.fake.webhooks() == []


async def test_two_bot_instances_on_one_database_run_a_firing_once(make_bot):  # type: ignore[no-untyped-def]
    both = schedules()  # one crontab line for both: computed twice, a minute could turn in between
    a = await make_bot(jobs=JOBS, schedules=both)
    b = await make_bot(jobs=JOBS, schedules=both, members=False)
    assert len(await runs(a, "ping_daily")) == 1  # b's catch-up found a's run and skipped it
    when = datetime.now(a.app.config.tz).replace(second=0, microsecond=0) + timedelta(minutes=7)
    results = await asyncio.gather(
        a.app.scheduler.run("ping_daily", when), b.app.scheduler.run("ping_daily", when)
    )
    assert sorted(r.status for r in results) == ["done", "skipped"]
    assert await pings(a) == 2


async def test_apscheduler_firing_claims_its_scheduled_time(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(jobs=JOBS, schedules=schedules())
    (caught_up,) = await runs(bot, "ping_daily")
    skipped = bot.app.metrics.job_runs.labels("ping_daily", "skipped")
    aps = bot.app.scheduler._aps
    assert aps is not None
    aps.get_job("ping_daily").modify(next_run_time=datetime.now(bot.app.config.tz))  # fire now, for real
    await wait_until(lambda: skipped._value.get() == 1, what="the APScheduler firing")
    # The firing computes the same scheduled time the catch-up already ran, so it is skipped.
    assert await runs(bot, "ping_daily") == [caught_up]
    assert await pings(bot) == 1


async def test_a_failing_job_is_recorded_and_its_effects_rolled_back(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(jobs=JOBS, schedules=schedules(grace=0))
    result = await bot.app.scheduler.run_now("broken_daily")
    assert result.status == "failed" and "the job has a bug" in result.detail
    (run,) = await runs(bot, "broken_daily")
    assert (run.status, run.trigger) == ("failed", "manual")
    assert (
        await bot.query(
            lambda s: s.execute(select(func.count()).where(AuditLog.action == "broken")).scalar_one()
        )
        == 0
    )


async def test_run_now_runs_even_when_the_schedule_already_ran(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(jobs=JOBS, schedules=schedules())
    result = await bot.app.scheduler.run_now("ping_daily")
    assert result.status == "done"
    assert [r.trigger for r in await runs(bot, "ping_daily")] == ["catch-up", "manual"]
    assert await pings(bot) == 2
