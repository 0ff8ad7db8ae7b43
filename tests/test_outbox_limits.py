"""What the outbox does at WeCom's limits: the hourly cap per member (WeCom drops what goes past it),
and a push that dies because the deployment is misconfigured (reported once, in /healthz and to the
admins, and cleared by the next successful send)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from bot import outbox
from bot.config import ConfigError, parse_config
from bot.simulator.fake_api import FakeWeCom
from storage.models import OutboxMessage
from tests.conftest import MakeBot
from tests.kit import BotKit, shipped_config

# Members of 第一党支部 whose 尽责 claims all wait for its secretary, 张伟, as cards.
CLAIMANTS = ["wangfang", "sunli", "zhoujie", "zhaolei", "chenjing"]


async def claim(bot: BotKit, userid: str, description: str = "参加切丝机停产技改突击队") -> int:
    reply = await bot.say(userid, f"尽责\n指标：A01\n说明：{description}")
    m = re.search(r"已提交尽责申报 #(\d+)", reply)
    assert m, reply
    return int(m.group(1))


def cards(bot: BotKit, userid: str) -> list[str]:
    return [m.body["main_title"]["title"] for m in bot.sent_to(userid, "template_card")]


async def queued_to(bot: BotKit, userid: str) -> list[OutboxMessage]:
    def read(s: Session) -> list[OutboxMessage]:
        o = OutboxMessage
        return list(s.execute(select(o).where(o.target == userid, o.status == "queued")).scalars())

    return await bot.query(read)


async def all_due(bot: BotKit) -> None:
    """Whatever waits in the outbox is due now (the worker still checks the limits)."""
    o, now = OutboxMessage, datetime.now(UTC)
    await bot.query(lambda s: s.execute(update(o).where(o.status == "queued").values(next_attempt_at=now)))


async def as_if_passed(bot: BotKit, span: timedelta) -> None:
    """As if `span` had passed: what was sent was sent that long ago, and whatever waits is due."""
    before = datetime.now(UTC) - span - timedelta(seconds=5)
    o = OutboxMessage
    await bot.query(lambda s: s.execute(update(o).where(o.status == "sent").values(sent_at=before)))
    await all_due(bot)


# -- the hourly limit --------------------------------------------------------------------------------


async def test_past_the_hourly_limit_a_members_messages_wait_for_the_hour_even_across_instances(
    make_bot: MakeBot,
) -> None:
    bot = await make_bot(outbox={"per_member_per_hour": 3})
    numbers = [await claim(bot, userid) for userid in CLAIMANTS]
    await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers[:3]]
    waiting = await queued_to(bot, "zhangwei")
    assert len(waiting) == 2
    first_sent = min(m.time for m in bot.sent_to("zhangwei"))
    for row in waiting:  # held for the hour, not for the minute
        assert row.next_attempt_at.timestamp() > first_sent + 3590

    # A second instance on the same database counts the same table: it holds them too.
    other = await make_bot(outbox={"per_member_per_hour": 3})
    await all_due(bot)
    await other.drain()
    assert len(cards(bot, "zhangwei")) == 3
    assert len(await queued_to(bot, "zhangwei")) == 2

    # Other members are not held back by 张伟's hour: each claimant got their own answer passively,
    # and a card to 李强 (the committee) still leaves.
    own = await claim(bot, "zhangwei", "节假日保产顶岗")
    await bot.drain()
    assert cards(bot, "liqiang") == [f"尽责申报 #{own}"]

    # An hour later the two waiting cards leave, in order.
    await as_if_passed(bot, timedelta(hours=1))
    await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers]


async def test_the_minute_limit_still_applies_below_the_hourly_one(make_bot: MakeBot) -> None:
    bot = await make_bot(outbox={"per_member_per_minute": 2, "per_member_per_hour": 100})
    for userid in CLAIMANTS[:3]:
        await claim(bot, userid)
    await bot.drain()
    assert len(cards(bot, "zhangwei")) == 2
    [row] = await queued_to(bot, "zhangwei")
    first_sent = min(m.time for m in bot.sent_to("zhangwei"))
    assert first_sent + 55 < row.next_attempt_at.timestamp() < first_sent + 65


async def test_behind_a_member_at_the_minute_limit_the_queue_lines_up_at_the_pace_of_the_limit(
    make_bot: MakeBot,
) -> None:
    # The waiting cards are moved behind the slot, one pace (a minute / the limit) apart in order, so
    # that no claim round looks at them meanwhile, no later one leaves before an older one, and when a
    # slot frees one becomes due, not the whole queue (which each round would move again).
    bot = await make_bot(outbox={"per_member_per_minute": 2, "per_member_per_hour": 100})
    numbers = [await claim(bot, userid) for userid in CLAIMANTS]
    await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers[:2]]
    waiting = sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)
    first_sent = min(m.time for m in bot.sent_to("zhangwei"))
    assert len(waiting) == 3
    times = [row.next_attempt_at for row in waiting]
    assert first_sent + 55 < times[0].timestamp() < first_sent + 65
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(seconds=30)] * 2

    # A card that came due behind them (written without looking at the queue) goes to the end.
    late = await claim(bot, "chenjing", "夜班抢修")

    def due_now(s: Session) -> None:
        o = OutboxMessage
        newest = s.execute(select(func.max(o.id)).where(o.target == "zhangwei")).scalar_one()
        s.execute(update(o).where(o.id == newest).values(next_attempt_at=datetime.now(UTC)))

    await bot.query(due_now)
    await bot.drain()
    line = sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)
    assert [r.next_attempt_at for r in line] == [*times, times[-1] + timedelta(seconds=30)]
    times = [r.next_attempt_at for r in line]
    numbers.append(late)

    # When the first slot frees up, only the first of them is due: it leaves, the others stay put.
    bot.app.outbox.clock = lambda: times[0] + timedelta(seconds=1)
    await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers[:3]]
    assert [r.next_attempt_at for r in sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)] == times[
        1:
    ]

    # A new card joins the end of the line; the rest leave in order as their times come.
    numbers.append(await claim(bot, "wangfang", "节假日保产顶岗"))
    joined = max(r.next_attempt_at for r in await queued_to(bot, "zhangwei"))
    assert joined == times[-1] + timedelta(seconds=30)  # it joins the end of the line
    for at in [*times[1:], joined]:
        bot.app.outbox.clock = lambda at=at: at + timedelta(seconds=61)
        await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers]
    assert await queued_to(bot, "zhangwei") == []


async def test_a_card_written_while_a_round_runs_does_not_put_another_in_a_waiting_ones_place(
    make_bot: MakeBot,
) -> None:
    # On PostgreSQL a claim commits while the worker's round runs, so a card written due can carry a
    # time a moment after the round's clock. It is due, not waiting: taken for the end of the line, it
    # made the card before it "older" and put it at the slot, beside the card already waiting there.
    bot = await make_bot(outbox={"per_member_per_minute": 2, "per_member_per_hour": 100})
    for userid in CLAIMANTS[:3]:
        await claim(bot, userid)
    await bot.drain()
    [first] = await queued_to(bot, "zhangwei")
    for userid in CLAIMANTS[3:]:
        await claim(bot, userid)
    moment = datetime.now(UTC) + timedelta(seconds=2)

    def as_written_during_the_round(s: Session) -> None:
        o = OutboxMessage
        fourth, fifth = s.execute(
            select(o.id).where(o.target == "zhangwei", o.id > first.id).order_by(o.id)
        ).scalars()
        s.execute(update(o).where(o.id == fourth).values(next_attempt_at=o.created_at))
        s.execute(update(o).where(o.id == fifth).values(created_at=moment, next_attempt_at=moment))

    await bot.query(as_written_during_the_round)
    assert await bot.app.outbox.drain_once() == 0
    line = sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)
    assert [r.next_attempt_at for r in line[:2]] == [
        first.next_attempt_at,
        first.next_attempt_at + timedelta(seconds=30),
    ]
    assert line[2].next_attempt_at == moment  # not lined up yet: it was not due

    # Its time comes: it joins the end of the line.
    bot.app.outbox.clock = lambda: moment
    assert await bot.app.outbox.drain_once() == 0
    line = sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)
    assert [r.next_attempt_at - first.next_attempt_at for r in line] == [
        timedelta(seconds=s) for s in (0, 30, 60)
    ]


async def test_card_updates_behind_one_backing_off_line_up_too(bot: BotKit) -> None:
    # A channel with no rate limit of its own waits only behind a retry; its queue is lined up at a
    # member's pace, and the claim goes on (a claim that failed here would stop every send).
    now = datetime.now(UTC)
    rows = [
        OutboxMessage(
            channel="card_update",
            target="zhangwei",
            msgtype="button",
            payload="{}",
            attempts=1,
            next_attempt_at=now + timedelta(minutes=5),
        ),
        OutboxMessage(channel="card_update", target="zhangwei", msgtype="button", payload="{}"),
    ]
    await bot.query(lambda s: s.add_all(rows))
    assert await bot.app.outbox.drain_once() == 0

    def line(s: Session) -> list[datetime]:
        o = OutboxMessage
        found = s.execute(select(o.next_attempt_at).where(o.channel == "card_update").order_by(o.id))
        return list(found.scalars())

    retried, behind = await bot.query(line)
    assert behind == retried + timedelta(seconds=2)  # 30 a minute: a member's pace


async def test_a_claim_with_nothing_due_does_not_look_for_due_messages(make_bot: MakeBot) -> None:
    # One step along the due index says nothing is due: the claim skips the search that reads every
    # due message (and that PostgreSQL's planner may make read the whole table).
    bot = await make_bot(outbox={"per_member_per_minute": 2, "per_member_per_hour": 100})
    for userid in CLAIMANTS[:3]:
        await claim(bot, userid)
    await bot.drain()
    assert len(await queued_to(bot, "zhangwei")) == 1  # waiting a minute for a slot
    seen: list[str] = []
    engine = bot.app.db.sync_engine or bot.app.db.async_engine.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    assert await bot.app.outbox.drain_once() == 0
    assert any("min(outbox.next_attempt_at)" in sql for sql in seen)
    assert not any("GROUP BY outbox.channel, outbox.target" in sql for sql in seen)
    seen.clear()
    own = await claim(bot, "zhangwei", "节假日保产顶岗")  # a card to 李强 (the committee), due now
    await bot.drain()  # (the background worker, woken by the claim, may be the one that sends it)
    assert any("GROUP BY outbox.channel, outbox.target" in sql for sql in seen)
    assert cards(bot, "liqiang") == [f"尽责申报 #{own}"]


async def test_a_card_for_a_member_whose_queue_waits_joins_the_wait_without_waking_the_worker(
    make_bot: MakeBot,
) -> None:
    # It could not leave before the cards queued ahead of it anyway; the worker would only have
    # looked, found the secretary at her limit and moved it (a claim for each card, at saturation).
    bot = await make_bot(outbox={"per_member_per_minute": 2, "per_member_per_hour": 100})
    numbers = [await claim(bot, userid) for userid in CLAIMANTS[:3]]
    await bot.drain()
    [waiting] = await queued_to(bot, "zhangwei")
    woken = bot.watch_wakes()
    numbers.append(await claim(bot, CLAIMANTS[3]))
    assert woken == []
    in_line = [r.next_attempt_at for r in sorted(await queued_to(bot, "zhangwei"), key=lambda r: r.id)]
    assert in_line == [waiting.next_attempt_at, waiting.next_attempt_at + timedelta(seconds=30)]
    own = await claim(bot, "zhangwei", "节假日保产顶岗")  # to 李强, whose queue does not wait
    assert woken == ["woken"]
    await bot.drain()
    assert cards(bot, "liqiang") == [f"尽责申报 #{own}"]

    # When the slot frees up, both leave, in order.
    await as_if_passed(bot, timedelta(minutes=1))
    await bot.drain()
    assert cards(bot, "zhangwei") == [f"尽责申报 #{n}" for n in numbers]


# -- configuration errors ----------------------------------------------------------------------------

ALERT_GROUP = "党总支群"  # outbox.alert_group in the shipped config.yaml


async def health(bot: BotKit) -> dict[str, Any]:
    async with bot.http.get(bot.app.url + "/healthz") as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def metrics(bot: BotKit) -> str:
    async with bot.http.get(bot.app.url + "/metrics") as resp:
        return await resp.text()


def alerts(bot: BotKit) -> list[str]:
    return [m.body["content"] for m in bot.fake.webhooks(ALERT_GROUP)]


async def outbox_rows(bot: BotKit, target: str) -> list[OutboxMessage]:
    def read(s: Session) -> list[OutboxMessage]:
        o = OutboxMessage
        return list(s.execute(select(o).where(o.target == target).order_by(o.id)).scalars())

    return await bot.query(read)


@pytest.mark.parametrize(
    ("errcode", "api", "setting"),
    [
        (41001, "message/send", "wecom.api_base"),
        (40013, "gettoken", "wecom.corp_id"),
        (40001, "gettoken", "wecom.secret"),
        (40056, "message/send", "wecom.agent_id"),
        (60020, "message/send", "企业可信IP"),
    ],
)
async def test_a_configuration_error_is_reported_once_by_group_robot_and_in_healthz(
    bot: BotKit, errcode: int, api: str, setting: str
) -> None:
    bot.fake.fail_always(errcode, api=api)
    for userid in CLAIMANTS[:3]:
        await claim(bot, userid)
    await bot.drain()

    # The three cards for 张伟 died at once: retrying cannot fix a setting.
    rows = await outbox_rows(bot, "zhangwei")
    assert [(r.status, r.attempts) for r in rows] == [("dead", 1)] * 3
    # The committee's group robot (no access token needed) heard of it once, with what to change.
    [notice] = alerts(bot)
    assert notice.startswith("【先锋配置问题】先锋发不出应用消息")
    assert f"企业微信返回 {errcode}" in notice and f"需修改：{setting}" in notice
    h = await health(bot)
    assert h["status"] == "misconfigured"
    [problem] = h["config_problems"]
    assert problem["scope"] == "app"
    assert (problem["errcode"], problem["setting"], problem["killed"]) == (errcode, setting, 3)
    assert problem["hint"] and problem["hint_en"]
    assert "pioneer_config_problems 1.0" in await metrics(bot)

    # Fixed: the next send succeeds and clears it.
    bot.fake.heal()
    await claim(bot, CLAIMANTS[3])
    await bot.drain()
    assert len(bot.sent_to("zhangwei", "template_card")) == 1
    h = await health(bot)
    assert (h["status"], h["config_problems"]) == ("ok", [])
    assert "pioneer_config_problems 0.0" in await metrics(bot)
    assert len(alerts(bot)) == 1


async def test_the_same_problem_again_after_it_cleared_is_reported_again(
    make_bot: MakeBot, fake: FakeWeCom
) -> None:
    bot = await make_bot(wecom={"agent_id": 1000009})  # the fake knows the app as 1000002
    await claim(bot, "wangfang")
    await claim(bot, "sunli")
    await bot.drain()
    assert len(alerts(bot)) == 1 and "wecom.agent_id" in alerts(bot)[0]
    assert (await health(bot))["config_problems"][0]["killed"] == 2

    fake.agent_id = 1000009  # someone fixed the app's id (here: the other side)
    await claim(bot, "zhoujie")
    await bot.drain()
    assert (await health(bot))["config_problems"] == []

    fake.agent_id = 1000002  # and it breaks again: a new occurrence, a new notice
    await claim(bot, "zhaolei")
    await claim(bot, "chenjing")
    await bot.drain()
    assert len(alerts(bot)) == 2
    assert (await health(bot))["config_problems"][0]["killed"] == 2


async def test_a_broken_group_robot_is_told_to_the_admins_by_app_message(bot: BotKit) -> None:
    group = "第一支部群"
    bot.fake.invalid_webhook(group)

    def broadcast(s: Session) -> None:
        out = outbox.Outgoing(s)
        out.broadcast(group, "**本周排行**")
        out.broadcast(group, "**本月排行**")
        out.flush()

    await bot.query(broadcast)
    await bot.drain()
    assert [r.status for r in await outbox_rows(bot, group)] == ["dead", "dead"]
    [notice] = [t for t in bot.texts_to("liqiang") if "配置问题" in t]  # 李强 is the admin
    assert f"群机器人「{group}」" in notice and f"groups.{group}.webhook" in notice and "93000" in notice
    [problem] = (await health(bot))["config_problems"]
    assert (problem["scope"], problem["errcode"], problem["killed"]) == (f"webhook:{group}", 93000, 2)
    assert alerts(bot) == []  # other robots are not troubled with it


async def test_without_an_alert_group_the_log_says_it_once(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot(outbox={"alert_group": ""})
    bot.fake.fail_always(60020, api="message/send")
    with caplog.at_level(logging.ERROR, logger="bot.outbox"):
        for userid in CLAIMANTS[:2]:
            await claim(bot, userid)
        await bot.drain()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 1 and "errcode 60020" in said[0] and "trusted IPs" in said[0]
    assert bot.fake.webhooks() == []
    assert (await health(bot))["config_problems"][0]["killed"] == 2


async def test_a_bad_message_is_not_a_configuration_problem(bot: BotKit) -> None:
    bot.fake.fail_next(1, errcode=81013, api="message/send")  # receiver outside the visible range
    await claim(bot, "wangfang")
    await bot.drain()
    assert [r.status for r in await outbox_rows(bot, "zhangwei")] == ["dead"]
    h = await health(bot)
    assert (h["status"], h["config_problems"]) == ("ok", [])
    assert alerts(bot) == []


def test_an_alert_group_must_be_a_configured_group() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**shipped_config(), "outbox": {"alert_group": "不存在的群"}}, env={})
    assert any(p.startswith("outbox.alert_group: unknown group '不存在的群'") for p in caught.value.problems)
