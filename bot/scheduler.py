"""Scheduled jobs: declared in `config.yaml`, fired by APScheduler, run once per scheduled time.

A firing first claims its (job, scheduled time) row in the database, in the same transaction as the
job's own effects, so however many bot processes are up the job runs once; a firing missed while the
bot was down runs at start if it is still within the job's grace period. Jobs are plain functions
over a `JobContext`, registered with `@job("name")`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import outbox
from bot.cron import crontab_trigger
from bot.replies import Image, Markdown, Reply
from bot.workdays import WorkCalendar, last_known_year
from storage.models import JobRun

if TYPE_CHECKING:
    from bot.config import Config, ScheduleConfig
    from bot.outbox import OutboxWorker
    from bot.wecom.client import WeComClient
    from storage.database import Database

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a job may use: the transaction, the configuration, the firing time and its arguments."""

    session: Session
    config: Config
    now: datetime  # the scheduled time, in the configured zone
    arguments: dict[str, Any] = field(default_factory=dict)
    prepared: Any = None  # what the job's `prepare` fetched before the transaction (e.g. the directory)
    out: outbox.Outgoing = field(init=False)

    def __post_init__(self) -> None:
        # A job's pushes are never answers to someone: all of them wait through quiet hours.
        self.out = outbox.Outgoing(
            self.session, quiet=outbox.QuietRule(self.config, self.now), channel=self.config.personal_channel
        )

    def send(self, userid: str, reply: Reply | str, *, ref: str = "") -> None:
        self.out.send(userid, reply, ref=ref)

    def broadcast(self, group: str, content: Markdown | Image | str) -> None:
        """Post markdown (`tone` spans allowed) or an image to a configured group robot."""
        self.out.broadcast(group, content)


JobFunc = Callable[[JobContext], str | None]
# Runs before the job's transaction, outside it, for what must come from the network first.
Prepare = Callable[["Config", "WeComClient"], Awaitable[Any]]
JOBS: dict[str, JobFunc] = {}
# The calendar a job keeps when its schedule names none: "workdays" for jobs whose every run repeats
# what is still open (a skipped holiday loses nothing), "every_day" for the rest (docs/configuration.md).
JOB_CALENDARS: dict[str, str] = {}
JOB_PREPARES: dict[str, Prepare] = {}


def job(
    name: str, *, calendar: str = "every_day", prepare: Prepare | None = None
) -> Callable[[JobFunc], JobFunc]:
    """Register a job function under the name that `schedules[].job` refers to, with its default
    calendar (`workdays` or `every_day`) and an optional async `prepare(config, client)` whose result
    the job reads as `ctx.prepared`."""
    if calendar not in ("workdays", "every_day"):
        raise ValueError(f"calendar must be workdays or every_day, not {calendar!r}")

    def register(func: JobFunc) -> JobFunc:
        JOBS[name] = func
        JOB_CALENDARS[name] = calendar
        if prepare is not None:
            JOB_PREPARES[name] = prepare
        return func

    return register


def calendar_of(schedule: ScheduleConfig) -> str:
    """The schedule's own `calendar`, else its job's default."""
    return schedule.calendar or JOB_CALENDARS.get(schedule.job, "every_day")


class JobObserver(Protocol):
    def job_run(self, job: str, result: str) -> None: ...


class _NullObserver:
    def job_run(self, job: str, result: str) -> None:
        pass


@dataclass(frozen=True)
class RunResult:
    name: str
    status: str  # done | failed | skipped
    detail: str = ""


def trigger_for(schedule: ScheduleConfig, config: Config) -> CronTrigger:
    return crontab_trigger(schedule.cron, config.tz)


def last_fire_time(trigger: CronTrigger, now: datetime, window: timedelta) -> datetime | None:
    """The latest time the trigger fired at or before `now`, looking back no further than `window`."""
    t = trigger.get_next_fire_time(None, now - window)
    last = None
    while t is not None and t <= now:
        last = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return last


class Scheduler:
    """Wires the configured schedules into an `AsyncIOScheduler` and runs jobs exactly once."""

    def __init__(
        self,
        db: Database,
        config: Config,
        worker: OutboxWorker | None = None,
        observer: JobObserver | None = None,
        jobs: dict[str, JobFunc] | None = None,
    ):
        self.db = db
        self.config = config
        self.worker = worker
        self.observer = observer or _NullObserver()
        self.jobs = JOBS if jobs is None else jobs
        self._aps: AsyncIOScheduler | None = None

    @property
    def running(self) -> bool:
        return self._aps is not None and self._aps.running

    def schedule(self, name: str) -> ScheduleConfig:
        for s in self.config.schedules:
            if s.name == name:
                return s
        raise KeyError(name)

    async def start(self) -> None:
        self._aps = AsyncIOScheduler(timezone=self.config.tz)
        for s in self.config.schedules:
            if s.job not in self.jobs:
                log.error("schedule %s names unknown job %s; not scheduled", s.name, s.job)
                continue
            self._aps.add_job(
                self._fire,
                trigger_for(s, self.config),
                args=[s.name],
                id=s.name,
                misfire_grace_time=max(1, s.grace_minutes * 60),
                coalesce=True,
                max_instances=1,
            )
        self._aps.start()
        await self.catch_up()

    async def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    async def catch_up(self, now: datetime | None = None) -> list[RunResult]:
        """Run each firing missed while no bot was up, if still within its grace period."""
        now = now or datetime.now(self.config.tz)
        results = []
        for s in self.config.schedules:
            if s.job not in self.jobs or not s.grace_minutes:
                continue
            when = last_fire_time(trigger_for(s, self.config), now, timedelta(minutes=s.grace_minutes))
            if when is not None:
                results.append(await self.run(s.name, when, trigger="catch-up"))
        return results

    async def _fire(self, name: str) -> None:
        s = self.schedule(name)
        now = datetime.now(self.config.tz)
        when = last_fire_time(trigger_for(s, self.config), now, timedelta(minutes=max(1, s.grace_minutes)))
        await self.run(name, when or now)

    async def run_now(self, name: str) -> RunResult:
        """`python -m bot jobs run NAME`: run one job now, whatever its schedule."""
        return await self.run(name, datetime.now(self.config.tz), trigger="manual")

    async def run(self, name: str, scheduled_at: datetime, *, trigger: str = "schedule") -> RunResult:
        s = self.schedule(name)
        func = self.jobs[s.job]
        local = scheduled_at.astimezone(self.config.tz)
        # A manual run is an admin's decision; scheduled and caught-up firings follow the calendar.
        if trigger != "manual" and calendar_of(s) == "workdays":
            if not WorkCalendar.of(self.config).is_workday(local.date()):
                return await self._skip_holiday(name, scheduled_at, trigger)
        prepared = None
        prepare = JOB_PREPARES.get(s.job)
        if prepare is not None:
            if self.worker is None:
                raise RuntimeError(f"job {name} needs the WeCom client (a scheduler with a worker)")
            try:
                prepared = await prepare(self.config, self.worker.client)
            except Exception as exc:  # noqa: BLE001 - recorded and reported like a failing job
                log.exception("job %s (%s) failed to prepare", name, trigger)
                await self._record_failure(name, scheduled_at, trigger, exc)
                self.observer.job_run(name, "failed")
                return RunResult(name, "failed", f"{type(exc).__name__}: {exc}")

        def work(session: Session) -> tuple[str, int]:
            if session.execute(
                select(JobRun.id).where(JobRun.job == name, JobRun.scheduled_at == scheduled_at)
            ).first():
                raise _AlreadyClaimed
            run_id = session.execute(
                insert(JobRun)
                .values(
                    job=name,
                    scheduled_at=scheduled_at,
                    started_at=datetime.now(self.config.tz),
                    status="running",
                    trigger=trigger,
                )
                .returning(JobRun.id)
            ).scalar_one()
            ctx = JobContext(session, self.config, local, dict(s.arguments), prepared)
            detail = func(ctx) or ""
            enqueued = ctx.out.flush()
            session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(status="done", finished_at=datetime.now(self.config.tz), detail=detail[:500])
            )
            return detail, enqueued

        try:
            detail, enqueued = await self.db.run(work)
        except (_AlreadyClaimed, IntegrityError):
            self.observer.job_run(name, "skipped")
            return RunResult(name, "skipped", f"{local:%Y-%m-%d %H:%M} already ran")
        except Exception as exc:  # noqa: BLE001 - a failing job is recorded and reported, never fatal
            log.exception("job %s (%s) failed", name, trigger)
            await self._record_failure(name, scheduled_at, trigger, exc)
            self.observer.job_run(name, "failed")
            return RunResult(name, "failed", f"{type(exc).__name__}: {exc}")
        if enqueued and self.worker is not None:
            self.worker.wake()
        self.observer.job_run(name, "done")
        log.info("job %s ran for %s (%s): %s", name, f"{local:%Y-%m-%d %H:%M}", trigger, detail)
        return RunResult(name, "done", detail)

    async def _skip_holiday(self, name: str, scheduled_at: datetime, trigger: str) -> RunResult:
        """A `workdays` schedule on a day off: recorded as skipped (no catch-up runs it) and logged."""
        local = scheduled_at.astimezone(self.config.tz)
        detail = f"{local:%Y-%m-%d} is not a working day (calendar: workdays)"

        def record(session: Session) -> None:
            session.execute(
                insert(JobRun).values(
                    job=name,
                    scheduled_at=scheduled_at,
                    status="skipped",
                    started_at=datetime.now(self.config.tz),
                    finished_at=datetime.now(self.config.tz),
                    trigger=trigger,
                    detail=detail,
                )
            )

        try:
            await self.db.run(record)
        except IntegrityError:  # recorded already (another process, or an earlier catch-up)
            pass
        log.info("job %s skipped for %s (%s): %s", name, f"{local:%Y-%m-%d %H:%M}", trigger, detail)
        self.observer.job_run(name, "skipped")
        return RunResult(name, "skipped", detail)

    async def _record_failure(self, name: str, scheduled_at: datetime, trigger: str, exc: Exception) -> None:
        def record(session: Session) -> None:
            session.execute(
                insert(JobRun).values(
                    job=name,
                    scheduled_at=scheduled_at,
                    status="failed",
                    started_at=datetime.now(self.config.tz),
                    trigger=trigger,
                    finished_at=datetime.now(self.config.tz),
                    detail=f"{type(exc).__name__}: {exc}"[:500],
                )
            )

        try:
            await self.db.run(record)
        except IntegrityError:  # another process ran this firing meanwhile
            pass


class _AlreadyClaimed(Exception):
    pass


@job("calendar_check")
def calendar_check(ctx: JobContext) -> str:
    """December (and any time run by hand): tell the admins when this or next year's holidays are known
    neither to the installed `chinesecalendar` nor to `calendar.holidays` / `calendar.workdays`."""
    from bot.members import admin_userids

    cal = WorkCalendar.of(ctx.config)
    missing = [y for y in (ctx.now.year, ctx.now.year + 1) if not cal.covers(y)]
    if not missing:
        return f"{ctx.now.year + 1} covered"
    years = "、".join(str(y) for y in missing)
    text = (
        f"【先锋工作日历】{years} 年的法定节假日和调休安排还不知道：已安装的 chinesecalendar 只到 "
        f"{last_known_year()} 年，"
        "config.yaml 的 calendar.holidays / calendar.workdays 也没有填。\n"
        "国务院办公厅公布安排后，请升级 chinesecalendar（pip install -U chinesecalendar），"
        "或把放假日期填入 calendar.holidays、调休上班日填入 calendar.workdays。"
        "在此之前，按“工作日”运行的提醒在周一至周五发送，节假日照发。"
    )
    admins = admin_userids(ctx.session, ctx.config.admins)
    for userid in admins:
        ctx.send(userid, text, ref="calendar")
    log.warning("working calendar: %s not covered; told %d admins", years, len(admins))
    return f"not covered: {years}; told {len(admins)} admins"


# The runtime's other job (it needs the WeCom client, hence its own module): registered with the rest.
from bot import directory as _directory  # noqa: E402, F401
