"""Quiet hours: what is not an answer to the one who wrote waits in the outbox through the recipient's
window (the workshop's 21:30–07:30, or their own 免打扰) and leaves after it, in order; answers never wait.

The dispatcher's clock says what time the messages are written at; the worker's clock is moved past
the window to play the morning.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.scheduler import JobContext
from storage.models import OutboxMessage
from tests.kit import BotKit
from tests.test_points import cards, claim

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def qbot(make_bot) -> BotKit:
    return await make_bot(quiet_hours="21:30-07:30")


def write_at(bot: BotKit, hh: int, mm: int, day: int = 9) -> datetime:
    """Messages are handled as if written at hh:mm on 2026-12-`day` (a Wednesday for 9)."""
    when = datetime(2026, 12, day, hh, mm, tzinfo=TZ)
    bot.app.dispatcher.clock = lambda: when
    return when


async def morning(bot: BotKit, hours: float = 12) -> None:
    """Play the end of the night: the worker believes `hours` have passed, then everything due leaves."""
    bot.app.outbox.clock = lambda: datetime.now(UTC) + timedelta(hours=hours)
    await bot.drain()


async def held(bot: BotKit, target: str) -> list[tuple[str, float]]:
    """(msgtype, hours it waits) of `target`'s held rows, in order."""
    o = OutboxMessage
    rows = await bot.query(
        lambda s: s.execute(
            select(o.msgtype, o.created_at, o.next_attempt_at)
            .where(o.target == target, o.status == "held")
            .order_by(o.id)
        ).all()
    )
    return [(r[0], round((r[2] - r[1]).total_seconds() / 3600, 2)) for r in rows]


async def test_an_approval_card_written_at_night_waits_until_half_past_seven(qbot: BotKit):
    write_at(qbot, 22, 0)
    woken = qbot.watch_wakes()
    n = await claim(qbot, "wangfang")  # the answer to wangfang is immediate (passive)
    assert woken == []  # nothing of it may leave before the morning: the worker is not woken for it
    await qbot.drain()
    assert cards(qbot, "zhangwei") == []
    assert await held(qbot, "zhangwei") == [("template_card", 9.5)]
    await morning(qbot)
    [card] = cards(qbot, "zhangwei")
    assert f"#{n}" in str(card)
    assert await held(qbot, "zhangwei") == []


async def test_answers_to_the_one_who_wrote_are_never_held(qbot: BotKit):
    write_at(qbot, 23, 40)
    woken = qbot.watch_wakes()
    reply = await qbot.say("liqiang", "导出 本季度")  # the workbook follows through the outbox
    assert woken == ["woken"]
    await qbot.drain()
    assert [m.msgtype for m in qbot.sent_to("liqiang")] == ["file"], reply
    assert await held(qbot, "liqiang") == [] and await held(qbot, "wangfang") == []


async def test_the_day_is_not_held_and_the_edges_of_the_window(qbot: BotKit):
    write_at(qbot, 21, 29)
    await claim(qbot, "wangfang")
    write_at(qbot, 7, 30, day=10)
    await claim(qbot, "wangfang", "A04", "节假日保产顶岗")
    await qbot.drain()
    assert len(cards(qbot, "zhangwei")) == 2
    write_at(qbot, 7, 29, day=10)
    await claim(qbot, "wangfang", "A04", "梗丝线保产")
    assert await held(qbot, "zhangwei") == [("template_card", 0.02)]  # one minute


async def test_a_jobs_pushes_wait_and_leave_in_order(qbot: BotKit):
    write_at(qbot, 10, 0)
    await claim(qbot, "wangfang")
    await qbot.drain()
    first = len(qbot.texts_to("zhangwei"))
    s = qbot.app.scheduler
    await s.run("pending_digest", datetime(2026, 12, 9, 22, 5, tzinfo=TZ), trigger="manual")
    await s.run("training_reminders", datetime(2026, 12, 9, 22, 6, tzinfo=TZ), trigger="manual")
    write_at(qbot, 22, 10)
    await claim(qbot, "zhaolei", "A04", "节假日保产顶岗")
    await qbot.drain()
    assert len(qbot.texts_to("zhangwei")) == first and len(cards(qbot, "zhangwei")) == 1
    waiting = await held(qbot, "zhangwei")
    assert [m for m, _ in waiting] == ["text", "template_card"]
    await morning(qbot)
    after = [m for m in qbot.sent_to("zhangwei")][first + 1 :]
    assert [m.msgtype for m in after] == ["text", "template_card"]  # the digest first, as written
    assert "等你审核" in after[0].body["content"]


async def test_group_robots_follow_the_workshops_window(make_bot):
    def notice(ctx: JobContext) -> str:
        ctx.broadcast("制丝车间群", f"车间通知 {ctx.now:%H:%M}")
        return "posted"

    bot = await make_bot(
        quiet_hours="21:30-07:30",
        jobs={"notice": notice},
        schedules=[{"name": "notice", "cron": "0 0 29 2 *", "job": "notice"}],
    )
    s = bot.app.scheduler
    await s.run("notice", datetime(2026, 12, 7, 22, 47, tzinfo=TZ))
    await s.run("notice", datetime(2026, 12, 8, 6, 15, tzinfo=TZ))
    await bot.drain()
    assert bot.fake.webhooks() == []
    o = OutboxMessage
    waiting = await bot.query(
        lambda s: s.execute(select(o.created_at, o.next_attempt_at).where(o.status == "held")).all()
    )
    assert sorted(round((b - a).total_seconds() / 60) for a, b in waiting) == [75, 523]  # both to 07:30
    await morning(bot)
    assert [m.body["content"] for m in bot.fake.webhooks("制丝车间群")] == [
        "车间通知 22:47",
        "车间通知 06:15",
    ]
    await s.run("notice", datetime(2026, 12, 8, 8, 47, tzinfo=TZ))
    await bot.drain()
    assert len(bot.fake.webhooks("制丝车间群")) == 3


async def test_a_card_decided_while_it_waits_is_never_sent(qbot: BotKit):
    write_at(qbot, 23, 0)
    n = await claim(qbot, "wangfang")
    assert f"已通过 #{n}" in await qbot.say("liqiang", f"通过 #{n}")  # the committee decides at once
    await morning(qbot)
    assert cards(qbot, "zhangwei") == []  # superseded before it went out
    assert any(f"#{n}" in t for t in qbot.texts_to("wangfang"))  # the decision notice came in the morning


async def test_own_quiet_hours_for_a_night_shift(qbot: BotKit):
    write_at(qbot, 10, 0)
    assert "车间默认 21:30-07:30" in await qbot.say("zhangwei", "免打扰")
    reply = await qbot.say("zhangwei", "免打扰 ０８：００至16:00")
    assert "已设置免打扰 08:00-16:00" in reply
    assert "08:00-16:00（你自己设的）" in await qbot.say("zhangwei", "免打扰")
    assert "免打扰：08:00-16:00" in await qbot.say("zhangwei", "我的")
    await claim(qbot, "wangfang")  # 10:00: inside zhangwei's window
    assert await held(qbot, "zhangwei") == [("template_card", 6.0)]
    write_at(qbot, 23, 0)
    await claim(qbot, "wangfang", "A04", "节假日保产顶岗")  # 23:00: he is at work
    await qbot.drain()
    assert len(cards(qbot, "zhangwei")) == 1 and len(await held(qbot, "zhangwei")) == 1
    assert "已关闭免打扰" in await qbot.say("zhangwei", "免打扰 关闭")
    write_at(qbot, 12, 0)
    await claim(qbot, "wangfang", "A04", "梗丝线保产")
    await qbot.drain()
    assert len(cards(qbot, "zhangwei")) == 2
    assert "已恢复车间默认" in await qbot.say("zhangwei", "免打扰 默认")
    write_at(qbot, 23, 0)
    await claim(qbot, "wangfang", "A02", "夜班巡检")
    assert len(await held(qbot, "zhangwei")) == 2


async def test_wrong_quiet_hours_are_refused_and_change_nothing(qbot: BotKit):
    write_at(qbot, 10, 0)
    await qbot.say("zhangwei", "免打扰 22:00-06:00")
    for bad in ("免打扰 晚上", "免打扰 25:00-06:00", "免打扰 22:00-22:00", "免打扰 22点到6点"):
        assert "没看懂" in await qbot.say("zhangwei", bad), bad
    assert "22:00-06:00（你自己设的）" in await qbot.say("zhangwei", "免打扰")
    assert "免打扰" in await qbot.say("zhangwei", "帮助")
    assert "「免打扰 22:00-06:00」" in await qbot.say("zhangwei", "帮助 免打扰")


async def test_strangers_may_not_set_quiet_hours(qbot: BotKit):
    reply = await qbot.say("nobody", "免打扰 22:00-06:00")
    assert "还不是「先锋」的登记成员" in reply


def test_local_mode_sends_at_any_hour():
    from bot.config import load_config
    from bot.simulator.local import local_config

    shipped = load_config("config.yaml", env={})
    assert shipped.quiet_hours == "21:30-07:30"
    assert local_config(shipped).quiet_hours == ""
