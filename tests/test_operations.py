"""What an operator watches: /healthz, /metrics and the logs."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest
from sqlalchemy import text

from bot import logs
from tests.kit import BotKit


async def get(bot: BotKit, path: str) -> tuple[int, str]:
    async with bot.http.get(bot.app.url + path) as resp:
        return resp.status, await resp.text()


async def test_healthz_reports_every_part(bot: BotKit):
    await bot.say("zhangwei", "帮助")
    status, body = await get(bot, "/healthz")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["database"]["reachable"] is True
    assert health["scheduler"]["running"] is True
    assert set(health["outbox"]) == {"depth", "oldest_age_seconds", "dead", "held"}
    assert health["last_callback_at"] is not None
    assert health["version"] == version("pioneer")  # the installed release, not a stale constant


async def test_healthz_counts_queued_messages_and_their_age(bot: BotKit):
    bot.fake.fail_always(-1, api="message/send")
    await bot.say("stranger", "你好")  # queues a notice for the admin
    await bot.say("stranger2", "你好")
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    await bot.query(
        lambda s: s.execute(
            text("UPDATE outbox SET created_at = :t WHERE id = (SELECT min(id) FROM outbox)"),
            {"t": two_hours_ago},
        )
    )
    health = json.loads((await get(bot, "/healthz"))[1])
    assert health["outbox"]["depth"] == 2
    # The oldest of the two, measured in seconds from when it was queued (not from its next attempt,
    # and not off by the eight hours between UTC and Asia/Shanghai).
    assert 7200 <= health["outbox"]["oldest_age_seconds"] < 7200 + 60
    status, metrics = await get(bot, "/metrics")
    gauge = re.search(r"^pioneer_outbox_oldest_seconds ([\d.e+]+)$", metrics, re.M)
    assert gauge is not None and 7200 <= float(gauge.group(1)) < 7200 + 60


async def test_healthz_is_503_when_the_database_is_unreachable(bot: BotKit):
    await bot.app.db.close()
    status, body = await get(bot, "/healthz")
    assert status == 503
    assert json.loads(body)["database"]["reachable"] is False


async def test_metrics_count_callbacks_latency_sends_and_tokens(bot: BotKit):
    plain = bot.wecom.text("zhangwei", "帮助")
    first = await bot.deliver(plain)
    retry = await bot.deliver(plain)  # a WeCom retry
    assert first.status == 200 and first.reply is not None and first.reply.text.startswith("张伟，你可以用")
    assert (retry.status, retry.reply) == (200, first.reply)
    query, body = bot.wecom.envelope(bot.wecom.text("zhangwei", "帮助"))
    async with bot.http.post(
        f"{bot.callback_url}?{query.replace('msg_signature=', 'msg_signature=0')}", data=body.encode()
    ) as resp:
        assert resp.status == 403
    await bot.say("stranger", "你好")
    await bot.drain()
    status, text = await get(bot, "/metrics")
    assert status == 200
    assert 'pioneer_callbacks_total{outcome="accepted",reason=""} 3.0' in text
    assert 'pioneer_callbacks_total{outcome="duplicate",reason=""} 1.0' in text
    assert 'pioneer_callbacks_total{outcome="refused",reason="bad signature"} 1.0' in text
    assert 'pioneer_handler_seconds_count{command="帮助"} 2.0' in text
    assert 'pioneer_sends_total{channel="app",errcode="0",result="ok"} 1.0' in text
    assert "pioneer_token_refreshes_total 1.0" in text
    assert "pioneer_outbox_depth 0.0" in text
    assert 'pioneer_api_requests_total{api="message/send",errcode="0",result="ok"} 1.0' in text


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_logs_carry_msgid_userid_and_command_and_never_secrets(bot: BotKit, captured: io.StringIO):
    msg_id = "7771234567890"
    await bot.say("wangfang", "帮助", msg_id=msg_id)
    await bot.say("stranger", "你好")
    await bot.drain()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    handled = [r for r in lines if r.get("msgid") == msg_id]
    assert handled and handled[0]["userid"] == "wangfang" and handled[0]["command"] == "帮助"
    everything = captured.getvalue()
    w = bot.app.config.wecom
    for secret in (w.secret, w.token, w.encoding_aes_key, "tok-1"):
        assert secret not in everything


def test_readable_log_lines_carry_the_same_context():
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "handled %s", ("text",), None)
    record.msgid, record.userid, record.command = "m1", "wangfang", "帮助"
    line = logs.TextFormatter().format(record)
    assert line.endswith("handled text [msgid=m1 userid=wangfang command=帮助]")
