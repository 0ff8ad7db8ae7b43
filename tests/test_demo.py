"""Local mode's demo history: replayed through the real handlers, once, and never outside local mode."""

from __future__ import annotations

import asyncio
import re
from contextlib import aclosing
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import event, func, select

import handlers
from bot.config import parse_config
from bot.serve import serve
from bot.simulator import demo
from bot.simulator.demo import Step, click, say, timeline
from handlers import activities_demo, points_demo, projects_demo, publicity_demo, skills_demo
from storage.models import InboxEntry, JobRun, OutboxMessage
from tests import kit
from tests.simkit import LocalKit, next_event, start_local, stop_local

SHANGHAI = ZoneInfo("Asia/Shanghai")


def count(model: Any, *where: Any) -> Any:
    return lambda s: s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@pytest.fixture
async def seeded(database_url: str, http: aiohttp.ClientSession) -> Any:
    kit_ = await start_local(database_url, http, history=True)
    yield kit_
    await stop_local(kit_)


# -- the script and the runner ------------------------------------------------------------------------


def test_the_points_history_is_collected_from_its_companion_module() -> None:
    steps = demo.histories(handlers.MODULES)
    # In the order of handlers.MODULES.
    assert steps == (
        points_demo.DEMO_HISTORY
        + skills_demo.DEMO_HISTORY
        + publicity_demo.DEMO_HISTORY
        + activities_demo.DEMO_HISTORY
        + projects_demo.DEMO_HISTORY
    )
    assert len(steps) > 50
    labels = {s.label for s in steps if s.label}
    for s in steps:  # every reference is to an item labelled somewhere in the script
        assert {m for m in re.findall(r"\{([^{}]+)\}", s.say)} <= labels, s
        assert not s.item or s.item in labels, s


def test_steps_are_ordered_in_time_and_none_lies_in_the_future() -> None:
    now = datetime(2026, 11, 30, 7, 0, tzinfo=SHANGHAI)  # early: the script's steps of today are ahead
    steps = [
        say("wangfang", 0, "09:05", "尽责 A01 换型"),
        say("zhoujie", 2, "17:00", "尽责 A04 顶岗"),
        say("zhangwei", 0, "08:30", "通过 #1"),
    ]
    placed = timeline(steps, now)
    assert [s.who for _, s in placed] == ["zhoujie", "zhangwei", "wangfang"]
    times = [at for at, _ in placed]
    assert times == sorted(times) and times[-1] < now and len(set(times)) == 3
    assert times[0] == datetime(2026, 11, 28, 17, 0, tzinfo=SHANGHAI)
    just_after_midnight = datetime(2026, 12, 1, 0, 2, tzinfo=SHANGHAI)  # the new month is two minutes old
    placed = timeline(steps, just_after_midnight)
    times = [at for at, _ in placed]
    assert [s.who for _, s in placed] == ["zhoujie", "zhangwei", "wangfang"]
    assert times == sorted(times) and len(set(times)) == 3
    assert times[0].date() == date(2026, 11, 29) and times[-1] < just_after_midnight
    assert all(at.date() == date(2026, 12, 1) for at in times[1:])  # today's steps stay in today
    with pytest.raises(ValueError):
        Step("wangfang", 0, "9点", say="帮助")
    with pytest.raises(ValueError):
        click("zhangwei", 0, "08:00", "通过", item="")


# -- seeded through the simulator's front door ----------------------------------------------------------


async def test_local_mode_opens_with_weeks_of_history(seeded: LocalKit) -> None:
    # The history spans about ten weeks before today; in a quarter's first weeks most of it lies in the
    # quarter before, so the standing is checked there then.
    today = datetime.now(SHANGHAI)
    first_weeks = today.month % 3 == 1 and today.day < 20
    quarter = "上季度" if first_weeks else "本季度"
    ranking = await seeded.say("zhangwei", f"排行 {quarter}")
    rows = re.findall(r"^\d+\. (\S+) \S+ ([\d.]+) 分 (\S+)$", ranking, re.M)
    assert len(rows) >= 6, ranking
    if not first_weeks:  # the arrows compare with the quarter before, which has standings too then
        assert any(c.startswith("↑") for *_, c in rows) and any(c.startswith("↓") for *_, c in rows), ranking
    for request in (
        "排行 上周",
        "排行 上月",
        f"排行 班组 {quarter}",
        f"排行 支部 {quarter}",
        f"排行 创新 {quarter}",
    ):
        assert "本期还没有积分记录" not in await seeded.say("wangfang", request), request
    mine = await seeded.say("wangfang", "我的")
    assert re.search(r"本季度积分（.+）：[\d.]+ 分", mine) and "最近记分" in mine and "待审：#" in mine

    # 待审: items still waiting for 张伟, dated on the days they were claimed (the dispatcher's clock).
    waiting = await seeded.say("zhangwei", "待审")
    pending = re.findall(r"^#(\d+) (\d\d-\d\d) ", waiting, re.M)
    assert len(pending) >= 2, waiting
    assert {d for _, d in pending} - {f"{today:%m-%d}"}, "some claims are from earlier days"
    # His cards are on the page, still to be clicked; what the past pushed is not replayed to anyone.
    async with aclosing(seeded.events()) as stream:
        for n, _ in pending:
            card = await next_event(stream, "app", users=["zhangwei"], msgtype="template_card")
            assert card["body"]["button_list"], card
            assert f"#{n}" in card["body"]["main_title"]["title"]
    for _ in range(100):  # the other approvers' cards may still be on their way
        if not await seeded.app.db.run(count(OutboxMessage, OutboxMessage.status != "sent")):
            break
        await asyncio.sleep(0.05)
    shown = [e for e in seeded.sim.log.since("") if e["kind"] == "app"]
    cards = [e for e in shown if e["msgtype"] == "template_card"]
    assert cards and all(e["body"]["button_list"] for e in cards)
    # Anything else is a job that the start caught up on (the scheduler runs a firing missed within its
    # grace: e.g. opened within an hour of the 09:37–09:45 training reminders), never the past's pushes.
    if others := [e for e in shown if e["msgtype"] != "template_card"]:
        caught_up = await seeded.app.db.run(count(JobRun, JobRun.trigger == "catch-up"))
        assert caught_up, others
    # The approvers, 孙丽 (a module lead) with an article to review, 刘洋 with a training step to confirm.
    assert {u for e in cards for u in e["users"]} == {"zhangwei", "wuhao", "liqiang", "sunli", "liuyang"}
    assert await seeded.app.db.run(count(OutboxMessage)) > 100  # the history's pushes, marked sent

    # 导出 has the quarter's points to write.
    async with aclosing(seeded.events()) as stream:
        assert "正在发送" in await seeded.say("zhangwei", "导出")
        sent = await next_event(stream, "app", users=["zhangwei"], msgtype="file")
    assert sent["file"]["name"].endswith(".xlsx") and sent["file"]["size"] > 5000

    # The weekly broadcast has last week's ranking to post.
    async with aclosing(seeded.events()) as stream:
        status, answer = await seeded.post("api/jobs/ranking_weekly", {})
        assert status == 200 and answer["status"] == "done", answer
        posted = await next_event(stream, "webhook", group="制丝车间群")
    assert "个人积分排行" in posted["body"]["content"]
    assert len(re.findall(r"分", posted["body"]["content"])) >= 3


def tables_read(session: Any, work: Any) -> set[str]:
    """The tables whose names appear in the statements `work()` runs on the session's connection."""
    from sqlmodel import SQLModel

    seen: list[str] = []
    engine, mine = session.get_bind(), session.connection()

    def listener(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if conn is mine:  # not the outbox worker's, which shares the engine on PostgreSQL
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    names = set(SQLModel.metadata.tables)
    return {n for sql in seen for n in names if re.search(rf"\b{n}\b", sql)}


async def test_the_assessment_reads_only_the_tables_whose_changes_move_its_token(seeded: LocalKit) -> None:
    """A kept 党建考评 is exact only if every table it reads is watched (storage/generations.py): read
    the demo's two quarters with every practice's data in them and compare."""
    from handlers.assessment import AssessmentConfig, _assess
    from handlers.periods import period_of, previous
    from storage.generations import ASSESSMENT, WATCHED

    config = seeded.app.config
    quarter = period_of("quarter", datetime.now(SHANGHAI).date())
    weights = AssessmentConfig.of(config).components

    def read(session: Any) -> set[str]:
        def work() -> None:
            for period in (quarter, previous(quarter)):
                assert _assess(session, config, period, weights)

        return tables_read(session, work)

    read_tables = await seeded.app.db.run(read)
    assert {"member_totals", "skill_levels", "activities", "attendances", "article_publications"} <= (
        read_tables
    )
    assert read_tables <= set(WATCHED[ASSESSMENT])


async def test_the_matrix_and_team_sums_read_only_the_tables_whose_changes_move_their_tokens(
    seeded: LocalKit,
) -> None:
    """The kept matrix (`skills`) and team sums (`totals`) are exact only if every table they read is
    watched: read them, uncached, on the demo's history."""
    from handlers.periods import period_of
    from storage import rankings, skills
    from storage.generations import SKILLS, TOTALS, WATCHED

    quarter = period_of("quarter", datetime.now(SHANGHAI).date())

    def read(session: Any) -> tuple[set[str], set[str]]:
        def matrix() -> None:
            assert skills._matrix(session, None, None)

        def sums() -> None:
            params = {"period": quarter.key, "category": ""}  # the overall total
            assert session.connection().execute(rankings._TEAM_SUMS, params).all()

        return tables_read(session, matrix), tables_read(session, sums)

    matrix_tables, sums_tables = await seeded.app.db.run(read)
    assert {"members", "skill_levels"} <= matrix_tables <= set(WATCHED[SKILLS])
    assert {"member_totals", "teams"} <= sums_tables <= set(WATCHED[TOTALS])


async def test_a_pending_card_can_be_clicked_from_the_page(seeded: LocalKit) -> None:
    async with aclosing(seeded.events()) as stream:
        card = await next_event(stream, "app", users=["zhangwei"], msgtype="template_card")
    button = next(b for b in card["body"]["button_list"] if b["text"] == "通过")
    status, answer = await seeded.post(
        "api/click",
        {
            "userid": "zhangwei",
            "event_key": button["key"],
            "task_id": card["body"]["task_id"],
            "response_code": card["response_code"],
        },
    )
    assert status == 200 and answer["reply"]["replace_button"].startswith("已通过 · 张伟"), answer


async def test_the_history_is_seeded_once_and_only_in_local_mode(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    # The test kit's local mode starts empty unless asked (so tests can count items).
    plain = await start_local(database_url, http)
    try:
        assert "本期还没有积分记录" in await plain.say("zhangwei", "排行")
    finally:
        await stop_local(plain)

    raw = kit.shipped_config()
    raw["database"] = {"url": database_url}
    raw["server"] = {"host": "127.0.0.1", "port": 0}
    config = parse_config(raw, env={})
    inbox = []
    for _ in range(2):  # `make run`, stopped, and started again
        stop = asyncio.Event()
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(config, stop, on_started=started.set_result))
        app = await asyncio.wait_for(asyncio.shield(started), 30)
        inbox.append(await app.db.run(count(InboxEntry)))
        stop.set()
        await task
    # The first start found a database someone had already written to (the test kit above): no history.
    assert inbox == [1, 1]


async def test_serve_seeds_a_fresh_database_once(database_url: str, http: aiohttp.ClientSession) -> None:
    raw = kit.shipped_config()
    raw["database"] = {"url": database_url}
    raw["server"] = {"host": "127.0.0.1", "port": 0}
    config = parse_config(raw, env={})
    inbox = []
    for _ in range(2):
        stop = asyncio.Event()
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(config, stop, on_started=started.set_result))
        app = await asyncio.wait_for(asyncio.shield(started), 30)
        inbox.append(await app.db.run(count(InboxEntry)))
        stop.set()
        await task
    assert inbox[0] == len(demo.histories(handlers.MODULES)) and inbox[1] == inbox[0]


def test_replayed_times_are_in_the_past_of_the_real_clock() -> None:
    now = datetime.now(SHANGHAI)
    placed = timeline(points_demo.DEMO_HISTORY, now)
    assert placed[-1][0] < now and placed[0][0] > now - timedelta(days=100)
