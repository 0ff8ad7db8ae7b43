"""Commands that only read run beside the writer on SQLite, and everything else stays exactly once."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import OperationalError

from bot.pictures import NICENESS
from storage.database import Database, ReadOnly
from storage.models import AuditLog, InboxEntry, OutboxMessage
from tests.kit import BotKit
from tests.spine_router import router as spine_router


@pytest.fixture
async def sbot(make_bot) -> BotKit:  # type: ignore[no-untyped-def]
    # Every command that only reads runs apart here, however quick (read_apart_ms 0).
    return await make_bot(router=spine_router, database={"read_apart_ms": 0})


async def count(bot: BotKit, model: type, **where: str) -> int:
    def read(s):  # type: ignore[no-untyped-def]
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return s.execute(stmt).scalar_one()

    return await bot.query(read)


async def test_a_read_finishes_while_the_writer_is_busy(sbot: BotKit):
    db: Database = sbot.app.db
    if not db.reads_apart:
        pytest.skip("PostgreSQL has no single writer to wait behind")
    released = threading.Event()
    # The writer is held until the read below has come back: were reads queued behind writes, the
    # read would wait until the writer gave up (`wait` returns False after its timeout).
    busy = asyncio.create_task(db.run(lambda s: released.wait(20)))
    await asyncio.sleep(0)
    members = await db.read(lambda s: s.execute(text("SELECT COUNT(*) FROM members")).scalar_one())
    released.set()
    assert await busy is True
    assert members > 0


async def test_a_reader_connection_refuses_to_write(sbot: BotKit):
    db: Database = sbot.app.db
    if not db.reads_apart:
        with pytest.raises(ReadOnly):
            await db.read(lambda s: 1)
        return
    with pytest.raises(OperationalError, match="readonly"):
        await db.read(lambda s: s.execute(insert(AuditLog).values(action="sneaky", actor="x")))
    assert await count(sbot, AuditLog, action="sneaky") == 0


async def test_a_read_command_answers_records_its_inbox_row_and_pushes_the_rest(sbot: BotKit):
    await sbot.say("zhangwei", "计数 一")
    plain = sbot.wecom.text("wangfang", "查数")
    first = await sbot.deliver(plain)
    await sbot.say("zhangwei", "计数 二")
    again = await sbot.deliver(plain)
    assert first.reply is not None and first.reply.text == "记下了 1 次"
    assert again.reply == first.reply  # a retry gets the stored answer, not a new count
    assert await count(sbot, InboxEntry, command="查数") == 1
    pushed = await sbot.wait_sent("wangfang")
    assert [m.msgtype for m in pushed] == ["markdown"]  # the second reply went through the outbox, once
    assert await count(sbot, OutboxMessage, target="wangfang") == 1


async def test_a_read_command_that_writes_after_all_runs_again_on_the_writer_once(
    sbot: BotKit, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.DEBUG, logger="bot.dispatcher"):
        reply = await sbot.say("wangfang", "查数 记下")
    assert reply == "记下了 0 次"
    if sbot.app.db.reads_apart:
        assert any("runs on the writer" in r.getMessage() for r in caplog.records)
    assert await count(sbot, AuditLog, action="tally") == 1
    assert await count(sbot, InboxEntry, command="查数") == 1


async def test_a_read_command_typed_during_a_dialogue_ends_it_on_the_writer(sbot: BotKit):
    assert "数量" in await sbot.say("wangfang", "报修 更换刀片")
    assert "记下了 0 次" == await sbot.say("wangfang", "查数")
    # The dialogue is over: a number now is not the quantity of the repair.
    assert "记下" not in await sbot.say("wangfang", "3")
    assert await count(sbot, AuditLog, action="repair") == 0


async def test_a_picture_is_drawn_by_the_outbox_after_the_answer(sbot: BotKit):
    assert await sbot.say("wangfang", "画图") == "图随后就到"
    [image] = await sbot.wait_sent("wangfang")
    assert image.msgtype == "image"
    data, filename = sbot.fake.media(image.body["media_id"])
    assert filename == "方块.png"
    with PILImage.open(io.BytesIO(data)) as picture:
        assert (picture.format, picture.size) == ("PNG", (40, 40))
    # What the outbox kept is what to draw, not the picture.
    rows = await sbot.query(lambda s: s.execute(select(OutboxMessage.payload)).scalars().all())
    assert ['"drawing": "spine_square"' in r for r in rows] == [True]


async def drawn_by(bot: BotKit, userid: str, nth: int = 1, what: str = "pid") -> int:
    """The process id (or niceness) written into the `nth` picture `userid` receives."""
    image = (await bot.wait_sent(userid, count=nth, timeout=10))[nth - 1]
    data, _ = bot.fake.media(image.body["media_id"])
    with PILImage.open(io.BytesIO(data)) as picture:
        return int(picture.text[what])


async def test_pictures_are_drawn_in_another_process_and_one_that_dies_is_replaced(sbot: BotKit):
    assert sbot.app.config.outbox.draw_processes == 1  # the shipped default
    assert await sbot.say("wangfang", "画图") == "图随后就到"
    drawer = await drawn_by(sbot, "wangfang")
    assert drawer != os.getpid()
    assert await drawn_by(sbot, "wangfang", what="nice") == min(19, os.nice(0) + NICENESS)  # it yields
    assert await sbot.say("wangfang", "画图 崩") == "图随后就到"  # the drawing process exits mid-picture
    assert await drawn_by(sbot, "wangfang", 2) == os.getpid()  # drawn in a thread instead, still sent
    assert await sbot.say("wangfang", "画图 41") == "图随后就到"
    assert await drawn_by(sbot, "wangfang", 3) not in (drawer, os.getpid())  # a new process for the next


async def drawing(bot: BotKit, userid: str, nth: int = 1) -> str:
    """The `drawing` text of the `nth` picture `userid` receives: new each time the square is drawn."""
    image = (await bot.wait_sent(userid, count=nth, timeout=15))[nth - 1]
    data, _ = bot.fake.media(image.body["media_id"])
    with PILImage.open(io.BytesIO(data)) as picture:
        return str(picture.text["drawing"])


async def test_the_same_picture_asked_again_is_not_drawn_again(sbot: BotKit):
    assert await sbot.say("wangfang", "画图") == "图随后就到"
    first = await drawing(sbot, "wangfang")
    assert await sbot.say("wangfang", "画图") == "图随后就到"
    assert await drawing(sbot, "wangfang", 2) == first  # the picture drawn the first time
    assert await sbot.say("wangfang", "画图 48") == "图随后就到"
    assert await drawing(sbot, "wangfang", 3) != first  # other data: drawn
    assert [m.msgtype for m in sbot.sent_to("wangfang")] == ["image"] * 3


async def test_a_picture_asked_for_while_it_is_being_drawn_is_drawn_once(sbot: BotKit):
    # Two people at once, so that the outbox sends both rows at the same time (one person's go in turn).
    answers = await asyncio.gather(sbot.say("wangfang", "画图 慢"), sbot.say("zhangwei", "画图 慢"))
    assert answers == ["图随后就到", "图随后就到"]
    assert await drawing(sbot, "wangfang") == await drawing(sbot, "zhangwei")


async def test_a_picture_slower_than_the_lease_is_sent_once(sbot: BotKit):
    assert sbot.app.config.outbox.lease_seconds == 2  # the kit's; drawing this one takes 5 s
    assert await sbot.say("wangfang", "画图 慢") == "图随后就到"
    await drawn_by(sbot, "wangfang")  # (waits up to 5 s more)
    await sbot.drain()
    await asyncio.sleep(2.5)  # a lost lease would have let a second round claim and send it again
    await sbot.drain()
    assert [m.msgtype for m in sbot.sent_to("wangfang")] == ["image"]
    attempts = await sbot.query(lambda s: s.execute(select(OutboxMessage.attempts)).scalars().all())
    assert attempts == [1]


async def test_with_no_drawing_process_pictures_are_drawn_in_a_thread(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(router=spine_router, outbox={"draw_processes": 0})
    assert await bot.say("wangfang", "画图") == "图随后就到"
    assert await drawn_by(bot, "wangfang") == os.getpid()


async def test_a_picture_that_cannot_be_drawn_is_replaced_by_what_to_do(sbot: BotKit):
    assert await sbot.say("wangfang", "画图 坏") == "图随后就到"
    [said] = await sbot.wait_sent("wangfang")
    assert (said.msgtype, said.body["content"]) == ("text", "没有中文字体，画不出来。")


async def test_only_reads_that_have_been_slow_leave_the_writer(make_bot, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    bot = await make_bot(router=spine_router)  # the shipped read_apart_ms: 5
    if not bot.app.db.reads_apart:
        pytest.skip("PostgreSQL has no single writer to wait behind")
    apart: list[str] = []
    read = bot.app.db.read

    async def counted(fn):  # type: ignore[no-untyped-def]
        apart.append("read")
        return await read(fn)

    monkeypatch.setattr(bot.app.db, "read", counted)
    for _ in range(3):  # quick: handing it to a reader thread would cost more than it saves
        assert await bot.say("wangfang", "查数") == "记下了 0 次"
    assert apart == []
    assert await bot.say("wangfang", "慢读 0.05") == "读完了"  # learnt: it takes 50 ms
    assert await bot.say("wangfang", "慢读 0.05") == "读完了"
    assert apart == ["read"]
    assert bot.app.dispatcher.read_cost["慢读"] > 0.04


_KILLED_BOT = """
import time
from bot import pictures
drawer = pictures.Drawer(1)
drawer.warm().result(120)
print(*pictures._pool(1)._processes, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" in status.read_text()  # a zombie has ended; only its parent reaps it
    except FileNotFoundError:
        return True


def test_a_drawing_process_ends_when_its_bot_is_killed():
    # A bot killed outright (SIGKILL, or a stop that timed out) cannot shut its pool down.
    bot = subprocess.Popen([sys.executable, "-c", _KILLED_BOT], stdout=subprocess.PIPE, text=True)
    try:
        assert bot.stdout is not None
        workers = [int(p) for p in bot.stdout.readline().split()]
        assert workers and not any(_gone(w) for w in workers)
    finally:
        bot.kill()
        bot.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(w) for w in workers), "the drawing process outlived its bot"
