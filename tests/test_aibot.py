"""The AI bot's long connection: subscribe, ping, reconnect with backoff, the same handlers and
exactly-once inbox, card clicks, pushes through the outbox, evidence pictures, group chats, and one
owner of the connection among several processes."""

from __future__ import annotations

import asyncio
import base64
import gc
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, text

from bot import outbox
from bot.aibot import protocol as p
from bot.aibot.service import AibotService
from bot.replies import Text
from bot.simulator.fake_openws import FakeOpenWS
from storage.models import MediaFile, OutboxMessage
from tests.aibot_kit import AibotKit, aibot_overrides
from tests.conftest import MakeBot
from tests.kit import ROOT, wait_until
from tests.test_points import item_number


@pytest.fixture
async def openws() -> AsyncIterator[FakeOpenWS]:
    fake = FakeOpenWS()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def ai(openws: FakeOpenWS, make_bot: MakeBot) -> AibotKit:
    kit = await make_bot(**aibot_overrides(openws))
    await openws.wait_live()
    return AibotKit(kit, openws)


async def push(ai: AibotKit, chat: str, *texts: str) -> None:
    def work(s):  # type: ignore[no-untyped-def]
        out = outbox.Outgoing(s, channel="aibot")
        for t in texts:
            out.send(chat, Text(t))
        out.flush()

    await ai.kit.query(work)


async def statuses(ai: AibotKit) -> list[str]:
    return await ai.kit.query(
        lambda s: list(s.execute(select(OutboxMessage.status).order_by(OutboxMessage.id)).scalars())
    )


# -- the protocol -------------------------------------------------------------------------------------


def test_media_decrypts_as_the_sdk_does():
    key = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # WeCom's keys may lack padding
    data = b"\x89PNG" + bytes(range(256)) * 3
    sealed = p.encrypt_media(data, key)
    assert len(sealed) % 32 == 0 and sealed != data
    assert p.decrypt_media(sealed, key) == data
    with pytest.raises(ValueError):
        p.decrypt_media(sealed[:-32] + b"\0" * 32, key)  # broken padding is refused


def test_callbacks_become_the_dispatchers_messages():
    body = {
        "msgid": "m1",
        "chattype": "group",
        "chatid": "wr1",
        "from": {"userid": "zhangwei"},
        "msgtype": "text",
    }
    m = p.parse_callback({"cmd": p.MSG_CALLBACK, "body": body | {"text": {"content": "@先锋 排行 本月"}}})
    assert m is not None and (m.kind, m.content, m.chat_type, m.chat_id, m.key) == (
        "text",
        "排行 本月",
        "group",
        "wr1",
        "a:m1",
    )
    voice = p.parse_callback(
        {"cmd": p.MSG_CALLBACK, "body": body | {"msgtype": "voice", "voice": {"content": "@先锋 我的"}}}
    )
    assert voice is not None and (voice.kind, voice.content) == ("text", "我的")
    click = p.parse_callback(
        {
            "cmd": p.EVENT_CALLBACK,
            "body": {
                "msgid": "e1",
                "from": {"userid": "zhangwei"},
                "msgtype": "event",
                "event": {
                    "eventtype": "template_card_event",
                    "template_card_event": {"event_key": "approve:3", "task_id": "t1"},
                },
            },
        }
    )
    assert click is not None and (click.event, click.event_key, click.task_id) == (
        "template_card_event",
        "approve:3",
        "t1",
    )
    assert (
        p.parse_callback({"cmd": p.MSG_CALLBACK, "body": {"msgid": "x", "msgtype": "text"}}) is None
    )  # no sender


# -- the connection ---------------------------------------------------------------------------------


async def test_subscribes_first_and_answers_with_the_callbacks_req_id(ai: AibotKit):
    reply = await ai.say("zhangwei", "帮助")
    assert "排行" in reply
    first = ai.openws.received[0]
    assert (first.cmd, first.body) == (p.SUBSCRIBE, {"bot_id": "aibot-test", "secret": "aibot-secret"})
    [answer] = ai.openws.frames(p.RESPOND)
    assert answer.body["msgtype"] == "stream" and answer.body["stream"]["finish"] is True
    assert ai.openws.problems == []  # the fake checks req_id reuse and frame shapes
    health = await ai.app.health()
    assert health["aibot"]["connected"] and health["aibot"]["holder"]


async def test_a_refused_subscription_backs_off_doubling_up_to_the_cap_then_resets(ai: AibotKit):
    ai.openws.secret = "rotated"  # the next subscriptions are refused
    await ai.openws.drop()
    await wait_until(lambda: len(ai.service.reconnect_delays) >= 6, what="six reconnections")
    assert ai.service.reconnect_delays[:6] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]  # doubling to the cap
    assert "subscription refused" in (await ai.app.health())["aibot"]["last_error"]
    assert not ai.service.ready
    ai.openws.secret = "aibot-secret"
    await ai.openws.wait_live()
    before = len(ai.service.reconnect_delays)
    await ai.openws.drop()
    await wait_until(lambda: len(ai.service.reconnect_delays) > before)
    assert ai.service.reconnect_delays[before] == 0.05  # a subscribed connection resets the backoff
    await ai.openws.wait_live()
    assert "排行" in await ai.say("zhangwei", "帮助")


async def test_two_unanswered_pings_mean_a_dead_connection(ai: AibotKit):
    conn = await ai.openws.wait_live()
    ai.openws.answer_pings = False
    await wait_until(lambda: ai.service.dead_pings == 1, what="the connection given up")
    await ai.openws.wait_for(lambda: conn.ws.closed, what="the dead connection closed")
    assert conn.pings == 2
    ai.openws.answer_pings = True
    new = await ai.openws.wait_live()
    assert new.number > conn.number
    await wait_until(lambda: new.pings >= 3, what="pings answered on the new connection")
    assert ai.service.dead_pings == 1


async def test_a_message_delivered_twice_across_a_reconnect_is_handled_once(ai: AibotKit):
    code_reply = await ai.say("zhangwei", "帮助", msgid="dup-1")
    await ai.openws.drop()
    await ai.openws.wait_live()
    assert await ai.say("zhangwei", "帮助", msgid="dup-1") == code_reply
    rows = await ai.kit.query(
        lambda s: s.execute(text("SELECT count(*) FROM inbox WHERE key = 'a:dup-1'")).scalar()
    )
    assert rows == 1
    assert len(ai.openws.connections) == 2 and ai.openws.problems == []


async def test_a_push_during_a_disconnection_is_delivered_once_after_reconnecting(ai: AibotKit):
    ai.openws.secret = "rotated"
    await ai.openws.drop()
    await wait_until(lambda: not ai.service.ready)
    await push(ai, "wangfang", "活动通知：周五支部学习")
    assert await ai.app.outbox.drain_once() == 0  # not this worker's to send while it is down
    assert await statuses(ai) == ["queued"]
    ai.openws.secret = "aibot-secret"
    await ai.openws.wait_live()
    await ai.kit.drain()
    assert ai.pushed("wangfang") == ["活动通知：周五支部学习"]
    assert len(ai.openws.frames(p.SEND)) == 1 and await statuses(ai) == ["sent"]


async def test_an_ack_that_never_comes_is_a_retry_not_a_loss(ai: AibotKit):
    ai.openws.lose[p.SEND] = 1
    await push(ai, "wangfang", "提醒：请提交本月思想汇报")
    await ai.deliver_all()
    assert len(ai.openws.frames(p.SEND)) == 2  # the first ack was lost: sent again
    assert ai.pushed("wangfang") == ["提醒：请提交本月思想汇报"]
    assert await statuses(ai) == ["sent"]


async def test_not_subscribed_846609_reconnects_and_retries(ai: AibotKit):
    first = await ai.openws.wait_live()
    ai.openws.not_subscribed = 1
    await push(ai, "wangfang", "通知")
    await ai.deliver_all()
    assert ai.pushed("wangfang") == ["通知"]
    assert ai.openws.live is not None and ai.openws.live.number > first.number


async def test_taken_over_by_another_connection_it_reports_and_does_not_fight(ai: AibotKit):
    await ai.openws.kick()
    await wait_until(lambda: ai.service.kicked == 1, what="disconnected_event seen")
    health = await ai.app.health()
    assert health["aibot"]["taken_over"] == 1 and not health["aibot"]["connected"]
    assert "took over" in health["aibot"]["last_error"]
    # It waits `kicked_pause_seconds` (60 s here) instead of reconnecting: many backoff periods
    # later there is still only the one connection it had.
    await asyncio.sleep(20 * 0.05)
    assert len(ai.openws.connections) == 1 and ai.service.reconnect_delays == []


async def test_enter_chat_gets_the_welcome(ai: AibotKit):
    rid = await ai.openws.deliver(ai.openws.event("zhangwei", "enter_chat"), cmd=p.EVENT_CALLBACK)
    answer = await ai.answer(rid, p.RESPOND_WELCOME)
    assert "帮助" in answer.body["text"]["content"]


# -- the same handlers -------------------------------------------------------------------------------


async def claim(ai: AibotKit, userid: str = "wangfang") -> int:
    reply = await ai.say(userid, "尽责\n指标：A01\n说明：参加切丝机停产技改突击队")
    assert "已提交尽责申报" in reply, reply
    return item_number(reply)


async def test_an_approval_card_goes_over_the_ai_bot_and_its_click_updates_it(ai: AibotKit):
    n = await claim(ai)
    await ai.kit.drain()
    [card] = ai.cards("zhangwei")
    assert card["card_type"] == "button_interaction" and any(
        b["key"] == f"approve:{n}" for b in card["button_list"]
    )
    rid = await ai.openws.deliver(
        ai.openws.click("zhangwei", f"approve:{n}", card["task_id"]), cmd=p.EVENT_CALLBACK
    )
    update = await ai.answer(rid, p.RESPOND_UPDATE)
    assert update.body["response_type"] == "update_template_card" and update.body["userids"] == ["zhangwei"]
    new = update.body["template_card"]
    assert (new["card_type"], new["task_id"], new["main_title"]) == (
        "text_notice",
        card["task_id"],
        card["main_title"],
    )
    assert new["sub_title_text"].startswith("已通过") and "button_list" not in new
    status = await ai.kit.query(
        lambda s: s.execute(text(f"SELECT status FROM items WHERE id = {n}")).scalar()
    )
    assert status == "approved"
    await ai.kit.drain()
    assert any(f"#{n}" in t and "审核通过" in t for t in ai.pushed("wangfang"))
    # The same click again (a retry) is answered from the inbox and decides nothing twice.
    assert ai.openws.problems == []


async def test_a_click_is_checked_like_a_typed_command(ai: AibotKit):
    n = await claim(ai)
    rid = await ai.openws.deliver(
        ai.openws.click("wangfang", f"approve:{n}", "t-forged"), cmd=p.EVENT_CALLBACK
    )
    reply = await ai.answer(rid)
    assert "仅限" in reply.body["stream"]["content"] or "不能" in reply.body["stream"]["content"]
    status = await ai.kit.query(
        lambda s: s.execute(text(f"SELECT status FROM items WHERE id = {n}")).scalar()
    )
    assert status == "pending"


async def test_an_evidence_picture_is_downloaded_decrypted_and_kept(ai: AibotKit):
    n = await claim(ai)
    photo = b"\x89PNG\r\n\x1a\n" + b"evidence" * 100
    rid = await ai.openws.deliver(ai.openws.picture("wangfang", photo))
    reply = await ai.answer(rid)
    assert f"#{n}" in reply.body["stream"]["content"]
    await ai.kit.drain()
    media = await ai.kit.query(lambda s: s.execute(select(MediaFile)).scalars().one())
    assert (media.status, media.data, media.ref, media.filename) == (
        "fetched",
        photo,
        f"item:{n}",
        "photo.png",
    )


# -- group chats -------------------------------------------------------------------------------------


async def test_group_commands_answer_in_the_group_or_continue_privately(ai: AibotKit):
    ranking = await ai.say("zhangwei", "@先锋 排行", group=True, chatid="wr-shop")
    assert "排行" in ranking or "名" in ranking
    assert "排行" in await ai.say("wangfang", "@先锋 帮助", group=True, chatid="wr-shop")
    brief = await ai.say("wangfang", "@先锋 我的", group=True, chatid="wr-shop")
    assert "私信" in brief and "王芳" in brief
    await ai.kit.drain()
    [mine] = ai.pushed("wangfang")
    assert "积分" in mine
    assert ai.pushed("wr-shop") == []  # personal data never went to the group
    signin = await ai.say("wangfang", "@先锋 签到 1234", group=True, chatid="wr-shop")
    assert "私信" in signin
    await ai.kit.drain()
    assert len(ai.pushed("wangfang")) == 2 and "签到" in ai.pushed("wangfang")[1]


async def test_a_dialogue_opened_in_a_group_continues_in_the_private_chat(ai: AibotKit):
    brief = await ai.say("wangfang", "@先锋 尽责", group=True)
    assert "私信" in brief
    await ai.kit.drain()
    [question] = ai.pushed("wangfang")
    assert "指标" in question
    reply = await ai.say("wangfang", "A01")
    assert "说明" in reply


# -- one owner -----------------------------------------------------------------------------------------


async def test_two_processes_one_connection_and_take_over_when_the_holder_dies(
    openws: FakeOpenWS, make_bot: MakeBot
):
    slow = aibot_overrides(openws, lease_seconds=3, lease_renew_seconds=0.5)  # robust on a busy machine
    first = await make_bot(**slow)
    await openws.wait_live()
    second = await make_bot(members=False, **slow)
    a, b = first.app.aibot, second.app.aibot
    assert isinstance(a, AibotService) and isinstance(b, AibotService)
    await wait_until(lambda: b.connections == 0 and not b.holding and a.ready)

    # The second process queues a push; the holder's worker sends it over its connection.
    def queue(s: Any) -> None:
        out = outbox.Outgoing(s, channel="aibot")
        out.send("wangfang", "来自第二个进程的通知")
        out.flush()

    await second.query(queue)
    assert await second.app.outbox.drain_once() == 0
    await openws.wait_for(lambda: len(openws.pushes("wangfang")) == 1, what="the push sent by the holder")
    # The holder dies without releasing the lease (as after kill -9): its task stops, its socket closes.
    assert a._task is not None
    a._task.cancel()
    await asyncio.gather(a._task, return_exceptions=True)
    await openws.wait_for(lambda: openws.live is None, what="the dead holder's socket closed")
    await wait_until(lambda: b.ready, timeout=10, what="the take-over within the lease's 3 s")
    assert b.holding and len(openws.connections) == 2 and openws.kicked == 0
    assert (await second.app.health())["aibot"]["holder"]


# -- configuration -----------------------------------------------------------------------------------


def test_check_says_which_channels_run(tmp_path: Path):
    from tests.test_cli import bot_cli

    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = {"AIBOT_BOT_ID": "bot-1", "AIBOT_SECRET": "s"}
    out = bot_cli("check", config=tmp_path / "c.yaml", env=env)
    assert out.returncode == 0, out.stderr
    assert "OK (AI bot;" in out.stdout and "wss://openws.work.weixin.qq.com; pushes to members" in out.stdout
    both = bot_cli(
        "check", config=tmp_path / "c.yaml", env=env | {"WECOM_CORP_ID": "ww1", "WECOM_SECRET": "x"}
    )
    assert "OK (WeCom + AI bot;" in both.stdout and "group-chat answers" in both.stdout
    raw["aibot"]["ws_url"] = "https://openws.example"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    bad = bot_cli("check", config=tmp_path / "bad.yaml", env=env)
    assert bad.returncode == 1 and "aibot.ws_url" in bad.stderr


def test_channels_and_where_pushes_go():
    from bot.config import parse_config

    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    none = parse_config(raw, env={})
    assert none.channels == [] and none.personal_channel == "app"  # local mode
    ai_only = parse_config(raw, env={"AIBOT_BOT_ID": "b", "AIBOT_SECRET": "s"})
    assert ai_only.channels == ["aibot"] and ai_only.personal_channel == "aibot"
    both = parse_config(
        raw, env={"AIBOT_BOT_ID": "b", "AIBOT_SECRET": "s", "WECOM_CORP_ID": "w", "WECOM_SECRET": "x"}
    )
    assert both.channels == ["app", "aibot"] and both.personal_channel == "app"


async def test_take_over_after_kill_9_of_the_holding_process(
    openws: FakeOpenWS, make_bot: MakeBot, fake: Any, database_url: str, tmp_path: Path
):
    from tests.kit import quiet_schedules
    from tests.test_cli import PY, write_config

    # A lease of 3 s renewed twice a second: a busy machine must not make the holder lose it.
    slow = aibot_overrides(openws, lease_seconds=3, lease_renew_seconds=0.5, ping_seconds=0.5)

    cfg = write_config(
        tmp_path / "config.yaml",
        database_url,
        fake.base_url,
        schedules=quiet_schedules(),
        **slow,
    )
    log = (tmp_path / "holder.log").open("w")
    holder = subprocess.Popen(
        [PY, "-m", "bot", "--config", str(cfg), "serve"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        await openws.wait_live(timeout=60)  # the subprocess migrated, took the lease and subscribed
        standby = await make_bot(**slow)
        b = standby.app.aibot
        assert isinstance(b, AibotService)
        await wait_until(lambda: b.connections == 0 and not b.holding, what="the standby waiting")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # No clean stop: the lease is left to expire (3 s here), then the standby takes over.
        await wait_until(lambda: b.ready, timeout=10, what="the take-over after kill -9")
        assert b.connections == 1 and openws.kicked == 0  # never two live connections at once
        assert "排行" in await AibotKit(standby, openws).say("zhangwei", "帮助")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        log.close()


async def test_serve_with_only_the_ai_bot_runs_no_simulator_and_no_callback(
    openws: FakeOpenWS, fake: Any, database_url: str
):
    from bot.app import Application
    from bot.serve import GC_YOUNGEST, serve
    from tests.kit import make_config, quiet_schedules

    over = aibot_overrides(openws)
    over["wecom"] |= {"agent_id": None, "token": "", "encoding_aes_key": ""}  # nothing of the app at all
    config = make_config(database_url, fake.base_url, schedules=quiet_schedules(), **over)
    stop = asyncio.Event()
    seen: list[Application] = []

    frozen: list[int] = []

    def started(app: Application) -> None:
        seen.append(app)
        frozen.append(gc.get_freeze_count())
        frozen.append(gc.get_threshold()[0])

    task = asyncio.create_task(serve(config, stop, on_started=started))
    try:
        await openws.wait_live(timeout=30)
        await wait_until(lambda: bool(seen), what="serve started")
        [app] = seen
        assert app.config.wecom.corp_id == "" and app.callback is None  # not local mode, no callback
        assert app.aibot is not None and (await app.health())["aibot"]["connected"]
    finally:
        stop.set()
        await task
    assert openws.live is None  # a clean stop closed the connection
    # What start-up built was kept out of the collector's way while serving, and given back after;
    # the youngest generation was collected less often meanwhile, and as before after.
    assert frozen[0] > 10_000 and gc.get_freeze_count() == 0
    assert frozen[1] == GC_YOUNGEST and gc.get_threshold()[0] == 700


async def test_a_picture_is_pushed_after_the_chunked_upload(ai: AibotKit):
    from bot.replies import Image

    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2500  # 640 KB: two chunks of at most 512 KB

    def work(s: Any) -> None:
        out = outbox.Outgoing(s, channel="aibot")
        out.send("zhangwei", Image("matrix.png", picture))
        out.flush()

    await ai.kit.query(work)
    await ai.deliver_all()
    [init] = ai.openws.frames(p.UPLOAD_INIT)
    assert (init.body["type"], init.body["filename"], init.body["total_size"], init.body["total_chunks"]) == (
        "image",
        "matrix.png",
        len(picture),
        2,
    )
    [upload] = ai.openws.uploads.values()
    [pushed] = ai.openws.pushes("zhangwei")
    assert upload["data"] == picture and pushed["image"] == {"media_id": upload["media_id"]}


async def test_pushes_to_one_chat_keep_to_the_per_minute_budget(openws: FakeOpenWS, make_bot: MakeBot):
    kit = await make_bot(**aibot_overrides(openws, per_chat_per_minute=2))
    await openws.wait_live()
    ai = AibotKit(kit, openws)
    await push(ai, "wangfang", "一", "二", "三")
    await kit.drain()
    assert ai.pushed("wangfang") == ["一", "二"]  # the third waits for the minute, it is not dropped
    assert await statuses(ai) == ["sent", "sent", "queued"]


async def test_a_message_delivered_again_after_a_restart_is_answered_from_the_inbox(
    openws: FakeOpenWS, fake: Any, http: Any, database_url: str
):
    from tests.kit import start_bot, stop_bot

    claim_text = "尽责\n指标：A01\n说明：参加切丝机停产技改突击队"
    count = text("SELECT count(*) FROM items")
    first = await start_bot(fake, http, database_url, **aibot_overrides(openws))
    try:
        reply = await AibotKit(first, openws).say("wangfang", claim_text, msgid="restart-1")
        assert "已提交尽责申报" in reply
    finally:
        await stop_bot(first)  # a clean stop releases the lease: the next process connects at once
    again = await start_bot(fake, http, database_url, members=False, **aibot_overrides(openws))
    try:
        assert await again.query(lambda s: s.execute(count).scalar()) == 1
        # WeCom delivers the same callback again (a new req_id, the same msgid) to the new process.
        assert await AibotKit(again, openws).say("wangfang", claim_text, msgid="restart-1") == reply
        assert await again.query(lambda s: s.execute(count).scalar()) == 1
    finally:
        await stop_bot(again)
