"""The outbox: retries with backoff, dead letters, rate limits, splitting, card updates and media."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot import outbox
from bot.outbox import split_text
from bot.replies import Text
from storage.models import MediaFile, OutboxMessage
from tests.kit import BotKit, wait_until


async def queue(bot: BotKit, userid: str, *texts: str) -> None:
    def work(s):  # type: ignore[no-untyped-def]
        out = outbox.Outgoing(s)
        for t in texts:
            out.send(userid, Text(t))
        out.flush()

    await bot.query(work)


def send(session, userid: str = "", reply=None, *, broadcast: tuple[str, str] | None = None) -> int:  # type: ignore[no-untyped-def]
    """Queue one message in `session`, the way a handler does."""
    out = outbox.Outgoing(session)
    if broadcast:
        out.broadcast(*broadcast)
    else:
        out.send(userid, reply)
    return out.flush()


async def rows(bot: BotKit) -> list[OutboxMessage]:
    return await bot.query(
        lambda s: s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    )


def test_split_text_on_character_boundaries_preferring_newlines():
    text = "甲" * 600 + "\n" + "乙" * 700 + "丙" * 10
    parts = split_text(text)
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert parts[0] == "甲" * 600
    assert "".join(parts) == text.replace("\n", "", 1)
    assert split_text("短") == ["短"]
    emoji = "😀" * 600  # 4 bytes each: a cut must never split one
    assert all(p.encode().decode() == p for p in split_text(emoji))
    assert "".join(split_text(emoji)) == emoji


@pytest.mark.parametrize("fault", [("errcode", -1), ("errcode", 45009), ("errcode", 45033), ("http", 502)])
async def test_passing_failures_are_retried_then_delivered_once(bot: BotKit, fault: tuple[str, int]):
    kind, code = fault
    if kind == "errcode":
        bot.fake.fail_next(2, errcode=code, api="message/send")
    else:
        bot.fake.fail_http(2, status=code, api="message/send")
    await queue(bot, "wangfang", "你好")
    await bot.wait_sent("wangfang")
    await bot.drain()
    assert [m.body["content"] for m in bot.sent_to("wangfang")] == ["你好"]
    (row,) = await rows(bot)
    assert (row.status, row.attempts) == ("sent", 3)
    assert bot.app.metrics.retries._value.get() == 2


async def test_timeouts_are_retried(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(outbox={"request_timeout_seconds": 0.3})
    bot.fake.set_delay(1.0, api="message/send")
    await queue(bot, "wangfang", "慢网")

    async def timed_out_once() -> bool:
        (row,) = await rows(bot)
        return row.attempts >= 1 and "Timeout" in row.last_error

    await wait_until(timed_out_once, what="the first attempt timing out")
    bot.fake.heal()
    await bot.wait_sent("wangfang", timeout=10)
    await bot.drain()
    (row,) = await rows(bot)
    assert row.status == "sent" and row.attempts >= 2
    assert "Timeout" in row.last_error


async def test_a_message_that_keeps_failing_ends_dead_and_shows_in_health(bot: BotKit, http):  # type: ignore[no-untyped-def]
    bot.fake.fail_always(-1, api="message/send")
    await queue(bot, "wangfang", "发不出去")
    for _ in range(200):  # backoff is 0.05–0.2 s in tests: eight attempts take about a second
        await bot.drain()
        if (await rows(bot))[0].status == "dead":
            break
        await asyncio.sleep(0.05)
    (row,) = await rows(bot)
    assert row.status == "dead" and row.attempts == bot.app.config.outbox.max_attempts
    assert "SystemBusy" in row.last_error
    async with http.get(bot.app.url + "/healthz") as resp:
        assert (await resp.json())["outbox"]["dead"] == 1
    async with http.get(bot.app.url + "/metrics") as resp:
        assert "pioneer_outbox_dead 1.0" in await resp.text()


async def test_a_failure_that_will_not_pass_is_dead_at_once(bot: BotKit):
    bot.fake.fail_next(1, errcode=81013, api="message/send")
    await queue(bot, "wangfang", "无效接收人")
    await bot.drain()
    (row,) = await rows(bot)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "InvalidReceiver" in row.last_error


async def test_a_members_messages_leave_in_order_even_across_retries(bot: BotKit):
    bot.fake.fail_next(1, errcode=-1, api="message/send")
    await queue(bot, "wangfang", "一", "二", "三")
    await bot.wait_sent("wangfang", 3)
    assert [m.body["content"] for m in bot.sent_to("wangfang")] == ["一", "二", "三"]


async def test_at_most_thirty_messages_a_minute_per_member(bot: BotKit):
    await queue(bot, "wangfang", *(f"第{i}条" for i in range(35)))
    await queue(bot, "sunli", "别人的不受影响")
    await bot.drain()
    assert len(bot.sent_to("wangfang")) == 30
    assert len(bot.sent_to("sunli")) == 1
    waiting = [r for r in await rows(bot) if r.status == "queued"]
    assert len(waiting) == 5
    assert all((r.next_attempt_at - datetime.now(UTC)).total_seconds() > 50 for r in waiting[:1])


async def test_at_most_twenty_messages_a_minute_per_group_robot(bot: BotKit):
    group = next(iter(bot.app.config.groups))

    def work(s):  # type: ignore[no-untyped-def]
        out = outbox.Outgoing(s)
        for i in range(23):
            out.broadcast(group, f"**通知 {i}**")
        out.flush()

    await bot.query(work)
    await bot.drain()
    assert len(bot.fake.webhooks()) == 20
    assert sum(r.status == "queued" for r in await rows(bot)) == 3


async def test_an_unconfigured_group_is_dead_not_retried(bot: BotKit):
    await bot.query(lambda s: send(s, broadcast=("不存在的群", "x")))
    await bot.drain()
    (row,) = await rows(bot)
    assert row.status == "dead" and "not configured" in row.last_error


async def test_a_file_is_uploaded_then_sent(bot: BotKit):
    from bot.replies import File

    await bot.query(lambda s: send(s, "zhangwei", File("2026Q4积分.xlsx", b"PK\x03\x04 workbook")))
    await bot.drain()
    (msg,) = bot.sent_to("zhangwei", "file")
    assert bot.fake.media(msg.body["media_id"]) == (b"PK\x03\x04 workbook", "2026Q4积分.xlsx")


async def test_media_a_member_sent_is_fetched_and_kept(bot: BotKit):
    media_id = bot.fake.store_media(b"\x89PNG evidence", "现场.png", "image/png")
    await bot.query(lambda s: outbox.enqueue_media_fetch(s, media_id, ref="item:7", userid="wangfang"))
    await bot.drain()
    (media,) = await bot.query(lambda s: s.execute(select(MediaFile)).scalars().all())
    assert (media.status, media.data, media.filename, media.ref) == (
        "fetched",
        b"\x89PNG evidence",
        "现场.png",
        "item:7",
    )


async def test_media_that_cannot_be_fetched_is_marked_failed(bot: BotKit):
    await bot.query(lambda s: outbox.enqueue_media_fetch(s, "no-such-media", ref="item:8"))
    await bot.drain()
    (media,) = await bot.query(lambda s: s.execute(select(MediaFile)).scalars().all())
    assert media.status == "failed"


async def test_deciding_updates_sent_cards_and_cancels_unsent_ones(bot: BotKit):
    from bot.replies import Button, Card

    card = Card(title="待审 #9", buttons=(Button("通过", "approve", "9"),), ref="item:9")
    await bot.query(lambda s: send(s, "zhangwei", card))
    await bot.drain()
    bot.fake.fail_always(-1, api="message/send")
    await bot.query(lambda s: send(s, "liqiang", card))
    await bot.query(lambda s: outbox.enqueue_card_updates(s, "item:9", "已通过 · 吴昊"))
    await bot.drain()
    assert [(u.userids, u.button_replace_name) for u in bot.fake.card_updates()] == [
        (["zhangwei"], "已通过 · 吴昊")
    ]
    statuses = {r.target: r.status for r in await rows(bot) if r.msgtype == "template_card"}
    assert statuses == {"zhangwei": "sent", "liqiang": "superseded"}
