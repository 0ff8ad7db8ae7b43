"""What the outbox does at WeCom's limits: the hourly cap per member (WeCom drops what goes past it),
and a push that dies because the deployment is misconfigured (reported once, in /healthz and to the
admins, and cleared by the next successful send)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import OutboxMessage
from tests.conftest import MakeBot
from tests.kit import BotKit

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
    await bot.query(
        lambda s: s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(next_attempt_at=datetime.now(UTC))
        )
    )
    await other.drain()
    assert len(cards(bot, "zhangwei")) == 3
    assert len(await queued_to(bot, "zhangwei")) == 2

    # Other members are not held back by 张伟's hour: each claimant got their own answer passively,
    # and a card to 李强 (the committee) still leaves.
    own = await claim(bot, "zhangwei", "节假日保产顶岗")
    await bot.drain()
    assert cards(bot, "liqiang") == [f"尽责申报 #{own}"]

    # An hour later the two waiting cards leave, in order.
    hour_ago = datetime.now(UTC) - timedelta(hours=1, seconds=5)
    await bot.query(
        lambda s: s.execute(
            update(OutboxMessage).where(OutboxMessage.status == "sent").values(sent_at=hour_ago)
        )
    )
    await bot.query(
        lambda s: s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(next_attempt_at=datetime.now(UTC))
        )
    )
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
