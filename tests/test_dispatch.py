"""Exactly-once handling, per-person ordering and the reply budget, through encrypted callbacks."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select, text

from bot.dispatcher import SORRY
from storage.models import AuditLog, InboxEntry
from tests.conftest import PG_URL
from tests.kit import BotKit, wait_until
from tests.spine_router import router as spine_router


@pytest.fixture
async def sbot(make_bot) -> BotKit:  # type: ignore[no-untyped-def]
    return await make_bot(router=spine_router)


async def audit_count(bot: BotKit, action: str) -> int:
    return await bot.query(
        lambda s: s.execute(select(func.count()).where(AuditLog.action == action)).scalar_one()
    )


async def test_retry_records_nothing_new_and_gets_the_same_reply(sbot: BotKit):
    plain = sbot.wecom.text("zhangwei", "计数 一")
    first = await sbot.deliver(plain)
    again = await sbot.deliver(plain)
    assert (first.status, first.reply and first.reply.text) == (200, "记下：一")
    assert (again.status, again.reply) == (200, first.reply)
    assert await audit_count(sbot, "count") == 1
    assert (
        await sbot.query(lambda s: s.execute(select(func.count()).select_from(InboxEntry)).scalar_one()) == 1
    )


async def test_identical_deliveries_at_once_record_once(sbot: BotKit):
    plain = sbot.wecom.text("wangfang", "计数 同时")
    results = await asyncio.gather(*(sbot.deliver(plain) for _ in range(5)))
    assert [(r.status, r.reply.text if r.reply else None) for r in results] == [(200, "记下：同时")] * 5
    assert await audit_count(sbot, "count") == 1


async def test_identical_deliveries_to_two_bot_instances_on_one_database_record_once(make_bot):  # type: ignore[no-untyped-def]
    a = await make_bot(router=spine_router)
    b = await make_bot(
        router=spine_router,
        members=False,
        wecom={"token": a.app.config.wecom.token, "encoding_aes_key": a.app.config.wecom.encoding_aes_key},
    )
    plain = a.wecom.text("zhangwei", "计数 两处")
    results = await asyncio.gather(a.deliver(plain), b.deliver(plain), a.deliver(plain), b.deliver(plain))
    assert [(r.status, r.reply.text if r.reply else None) for r in results] == [(200, "记下：两处")] * 4
    assert await audit_count(a, "count") == 1


async def slow_running(bot: BotKit, userid: str) -> bool:
    """Has `userid`'s slow message reached the database? (PostgreSQL: its pg_sleep is running; SQLite:
    the dispatcher holds that person's lock while the single writer runs it.)"""
    if PG_URL:
        running = await bot.query(
            lambda s: s.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )
        return bool(running)
    return userid in bot.app.dispatcher.locks._locks


async def test_one_persons_messages_run_in_order(sbot: BotKit):
    slow = asyncio.create_task(sbot.say("zhaolei", "慢 0.4"))
    await wait_until(lambda: slow_running(sbot, "zhaolei"), what="the slow message being handled")
    quick = await sbot.say("zhaolei", "计数 后到")
    assert quick == "记下：后到"
    assert slow.done(), "the later message finished before the earlier one"
    actions = await sbot.query(
        lambda s: (
            s.execute(select(AuditLog.action).where(AuditLog.actor == "zhaolei").order_by(AuditLog.id))
            .scalars()
            .all()
        )
    )
    assert actions == ["slow", "count"]


@pytest.mark.skipif(
    not PG_URL, reason="SQLite's single writer orders everything; only PostgreSQL's advisory lock can fail"
)
async def test_one_persons_messages_run_in_order_across_two_bot_instances(make_bot):  # type: ignore[no-untyped-def]
    """Each instance has its own in-process locks: only the database's per-person lock orders them."""
    a = await make_bot(router=spine_router)
    w = a.app.config.wecom
    b = await make_bot(
        router=spine_router, members=False, wecom={"token": w.token, "encoding_aes_key": w.encoding_aes_key}
    )
    slow = asyncio.create_task(a.say("zhaolei", "慢 0.6"))
    await wait_until(lambda: slow_running(b, "zhaolei"), what="the slow message being handled")
    assert await b.say("zhaolei", "计数 后到") == "记下：后到"
    assert slow.done(), "the later message finished before the earlier one"
    actions = await a.query(
        lambda s: (
            s.execute(select(AuditLog.action).where(AuditLog.actor == "zhaolei").order_by(AuditLog.id))
            .scalars()
            .all()
        )
    )
    assert actions == ["slow", "count"]


@pytest.mark.skipif(bool(PG_URL), reason="group commit is SQLite's: PostgreSQL runs each unit alone")
async def test_a_failing_message_in_a_group_commit_is_rolled_back_alone(sbot: BotKit):
    """Several people's messages wait for the single writer and are committed together; one handler
    fails: the others are recorded and answered, the failing one is rolled back and its sender told."""
    db = sbot.app.db
    gate, holding = threading.Event(), threading.Event()

    def hold_the_writer(_s: object) -> None:
        holding.set()
        gate.wait(10)

    held = asyncio.create_task(sbot.query(hold_the_writer))
    await asyncio.to_thread(holding.wait, 10)
    senders = ["wangfang", "zhaolei", "chenjing", "xuming"]
    deliveries = [
        asyncio.create_task(sbot.deliver(sbot.wecom.text(u, "出错 坏了" if u == "chenjing" else f"计数 {u}")))
        for u in senders
    ]
    try:
        await wait_until(lambda: db._queue.qsize() == len(senders), what="all four waiting for the writer")
    finally:
        gate.set()
    await held
    results = dict(zip(senders, await asyncio.gather(*deliveries), strict=True))
    assert {u: (r.status, r.reply.text if r.reply else None) for u, r in results.items()} == {
        "wangfang": (200, "记下：wangfang"),
        "zhaolei": (200, "记下：zhaolei"),
        "chenjing": (200, SORRY),
        "xuming": (200, "记下：xuming"),
    }
    recorded = await sbot.query(
        lambda s: s.execute(
            select(AuditLog.actor, AuditLog.action)
            .where(AuditLog.action.in_(("count", "failed")))
            .order_by(AuditLog.actor)
        ).all()
    )
    assert [tuple(r) for r in recorded] == [("wangfang", "count"), ("xuming", "count"), ("zhaolei", "count")]
    inbox = await sbot.query(
        lambda s: s.execute(select(InboxEntry.userid).order_by(InboxEntry.userid)).scalars().all()
    )
    assert inbox == ["wangfang", "xuming", "zhaolei"]  # chenjing's retry will be handled afresh


@pytest.mark.skipif(
    not PG_URL, reason="SQLite has one writer: different people's transactions run one after another"
)
async def test_different_people_run_in_parallel(sbot: BotKit):
    slow = asyncio.create_task(sbot.say("zhaolei", "慢 0.8"))
    await wait_until(lambda: slow_running(sbot, "zhaolei"), what="the slow message being handled")
    assert await sbot.say("wangfang", "计数 并行") == "记下：并行"
    assert not slow.done()
    assert await slow == "慢慢地好了"


async def test_a_slow_handler_answers_empty_and_the_reply_follows(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(router=spine_router, handlers={"budget_seconds": 0.2})
    plain = bot.wecom.text("zhangwei", "慢 0.6")
    first = await bot.deliver(plain)
    assert (first.status, first.reply) == (200, None)
    sent = await bot.wait_sent("zhangwei")
    assert [m.body["content"] for m in sent] == ["慢慢地好了"]
    entry = await bot.query(lambda s: s.execute(select(InboxEntry)).scalar_one())
    assert entry.reply_via_outbox
    # WeCom retries after 5 s: it must neither re-run the handler nor get a second copy.
    again = await bot.deliver(plain)
    assert (again.status, again.reply) == (200, None)
    await bot.drain()
    assert len(bot.sent_to("zhangwei")) == 1
    assert await audit_count(bot, "slow") == 1


async def test_replies_beyond_the_first_text_go_through_the_outbox(sbot: BotKit):
    assert await sbot.say("zhangwei", "长文") == "好的"
    await sbot.drain()
    sent = sbot.sent_to("zhangwei")
    assert [m.msgtype for m in sent] == ["text", "text", "markdown"]
    parts = [m.body["content"] for m in sent[:2]]
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts) == "第一行字。" * 200


async def test_a_failing_handler_gets_an_apology_records_nothing_and_a_retry_works(sbot: BotKit):
    from tests import spine_router as module

    def boom(ctx: object, args: str) -> str:
        raise RuntimeError("a bug")

    cmd = sbot.app.router.find("计数")
    assert cmd is not None
    plain = sbot.wecom.text("zhangwei", "计数 重来")
    object.__setattr__(cmd, "func", boom)  # Command is frozen; swap the function for this test only
    try:
        failed = await sbot.deliver(plain)
    finally:
        object.__setattr__(cmd, "func", module.count)
    assert (failed.status, failed.reply and failed.reply.text) == (200, SORRY)
    assert (
        await sbot.query(lambda s: s.execute(select(func.count()).select_from(InboxEntry)).scalar_one()) == 0
    )
    # WeCom's retry of the same message is handled, because nothing of the failed attempt was kept.
    retried = await sbot.deliver(plain)
    assert (retried.status, retried.reply and retried.reply.text) == (200, "记下：重来")
    assert await audit_count(sbot, "count") == 1


async def test_stopping_waits_for_acknowledged_messages_still_being_handled(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(router=spine_router, handlers={"budget_seconds": 0.2})
    first = await bot.deliver(bot.wecom.text("zhangwei", "慢 0.6"))
    assert first.reply is None  # acknowledged to WeCom: from here it must not be lost
    await bot.app.stop()
    assert await audit_count(bot, "slow") == 1
    entry = await bot.query(lambda s: s.execute(select(InboxEntry)).scalar_one())
    assert entry.reply_via_outbox
