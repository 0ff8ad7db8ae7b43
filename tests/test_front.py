"""The callback's front process (bot/front.py): `serve` with `server.callback_process: on` answers
WeCom's encrypted callbacks from a second process, passes every other request on to the main one,
and keeps that process running."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot import front as fronts
from bot.app import Application
from bot.config import ConfigError, parse_config, read_sections
from bot.members import import_members
from bot.serve import serve
from bot.simulator.fake_api import FakeWeCom
from bot.simulator.wecom_side import WeComSide
from storage.models import InboxEntry
from tests.kit import CAST, BotKit, make_config, quiet_schedules, shipped_config, wait_until


class Fronted(BotKit):
    front: fronts.Front


@pytest.fixture
async def fronted(fake: FakeWeCom, http: aiohttp.ClientSession, database_url: str) -> AsyncIterator[Fronted]:
    config = make_config(
        database_url,
        fake.base_url or "",
        server={"port": 0, "callback_process": "on"},
        schedules=quiet_schedules(),
    )
    front = fronts.Front(config.server.host, config.server.port)
    front.configure(config)
    stop = asyncio.Event()
    started: asyncio.Future[Application] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, stop, on_started=started.set_result, front=front))
    app = await asyncio.wait_for(started, 60)
    await app.db.run(lambda s: import_members(s, CAST.read_text(encoding="utf-8"), actor="test"))
    kit = Fronted(app, fake, http)
    kit.front = front
    try:
        yield kit
    finally:
        stop.set()
        await task
    # Stopped with the main process: the child has exited and the port is closed.
    assert front._child.process.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(app.url.rsplit(":", 1)[1])), timeout=2).close()


async def inbox_rows(bot: BotKit) -> int:
    return int(
        await bot.query(lambda s: s.execute(select(func.count()).select_from(InboxEntry)).scalar_one())
    )


async def test_through_the_front_a_message_is_answered_once_and_recorded_once(fronted: Fronted) -> None:
    bot = fronted
    assert bot.app.callback is None  # the main process has no callback of its own: the front answers
    assert "尽责" in await bot.say("wangfang", "帮助")
    message = bot.wecom.text("wangfang", "尽责\n指标：A01\n说明：参加切丝机停产技改突击队", msg_id="9001")
    first = await bot.deliver(message)
    assert first.status == 200 and first.reply is not None and "已提交尽责申报 #" in first.reply.text
    again = await bot.deliver(message)  # WeCom's retry of the same message
    assert again.status == 200 and again.reply == first.reply
    assert await inbox_rows(bot) == 2  # 帮助 and the claim, once each
    await bot.drain()  # the secretary's approval card, once
    number = re.search(r"已提交尽责申报 #(\d+)", first.reply.text)
    assert number is not None
    titles = [m.body["main_title"]["title"] for m in bot.sent_to("zhangwei", "template_card")]
    assert titles == [f"尽责申报 #{number.group(1)}"]

    async with bot.http.get(bot.app.url + "/healthz") as resp:  # passed on to the main process
        health = await resp.json()
    assert resp.status == 200 and health["database"]["reachable"] is True
    assert health["last_callback_at"] is not None


async def test_what_the_front_refuses_is_counted_by_the_main_process(fronted: Fronted) -> None:
    bot = fronted
    query, body = bot.wecom.envelope(bot.wecom.text("wangfang", "帮助"))
    async with bot.http.post(
        f"{bot.callback_url}?{query.replace('msg_signature=', 'msg_signature=0')}", data=body
    ) as r:
        assert r.status == 403
    async with bot.http.get(bot.callback_url) as r:  # URL verification without its parameters
        assert r.status == 400
    async with bot.http.get(bot.app.url + "/metrics") as r:
        text = await r.text()
    assert r.status == 200
    assert 'reason="bad signature"} 1.0' in text
    assert 'reason="missing query parameters"} 1.0' in text
    assert await inbox_rows(bot) == 0


async def test_a_front_that_dies_is_started_again(fronted: Fronted) -> None:
    bot = fronted
    first = bot.front._child.process
    first.send_signal(signal.SIGKILL)
    await wait_until(lambda: bot.front.starts == 2, what="the front started again", timeout=20)
    await wait_until(
        lambda: bot.front._frames is not None and bot.front._child.process is not first, timeout=20
    )

    async def answered() -> str:
        try:
            return await bot.say("wangfang", "帮助")
        except AssertionError:
            return ""

    for _ in range(100):
        if "尽责" in await answered():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the new front did not answer")
    assert bot.front._child.process.pid != first.pid


# -- the front alone ------------------------------------------------------------------------------


SETTINGS: dict[str, Any] = {
    "token": "tok",
    "encoding_aes_key": "a" * 43,
    "corp_id": "wwfront",
    "callback_path": "/wecom/callback",
    "max_clock_skew": 300,
    "max_body_bytes": 65536,
    "answer_within": 0.3,
    "log_level": "WARNING",
}


@pytest.fixture
async def upstream_dir() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="front-test-") as d:
        yield d


async def test_the_front_answers_503_when_the_main_process_is_gone_or_silent(upstream_dir: str) -> None:
    side = WeComSide(token="tok", encoding_aes_key="a" * 43, corp_id="wwfront", agent_id=1)
    settings = {**SETTINGS, "upstream": os.path.join(upstream_dir, "none.sock")}

    gone = fronts.Link(settings["answer_within"])  # never connected: the main process is gone
    ours, theirs = socket.socketpair()
    silent = fronts.Link(settings["answer_within"])  # connected, but no answer comes
    theirs.setblocking(False)
    await asyncio.get_running_loop().create_connection(lambda: silent.frames, sock=theirs)
    try:
        for link in (gone, silent):
            server = TestServer(fronts.front_app(settings, link))
            await server.start_server()
            try:
                async with aiohttp.ClientSession() as http:
                    d = await side.deliver(
                        http, str(server.make_url("/wecom/callback")), side.text("u1", "帮助")
                    )
                    assert d.status == 503
                    async with http.get(server.make_url("/healthz")) as r:  # nothing to pass it on to
                        assert r.status == 503
            finally:
                await server.close()
    finally:
        ours.close()


async def test_the_front_streams_what_it_passes_on(upstream_dir: str) -> None:
    # The 党建看板's event stream stays open: each part reaches the browser as the main process writes it.
    path = os.path.join(upstream_dir, "http.sock")
    release = asyncio.Event()
    seen: dict[str, str] = {}

    async def events(request: web.Request) -> web.StreamResponse:
        seen["forwarded"] = request.headers.get("X-Forwarded-For", "")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await release.wait()
        await resp.write(b"data: second\n\n")
        return resp

    upstream = web.Application()
    upstream.add_routes([web.get("/board/events", events)])
    runner = web.AppRunner(upstream)
    await runner.setup()
    await web.UnixSite(runner, path).start()
    server = TestServer(fronts.front_app({**SETTINGS, "upstream": path}, fronts.Link(1.0)))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.get(server.make_url("/board/events?t=x")) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
            assert await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5) == b"data: first\n\n"
            release.set()
            assert await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5) == b"data: second\n\n"
        assert seen["forwarded"] == "127.0.0.1"
    finally:
        await server.close()
        await runner.cleanup()


# -- when there is a front ------------------------------------------------------------------------


def test_a_front_runs_only_for_the_apps_callback_and_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    def sections(**server: Any) -> Any:
        config = parse_config({**shipped_config(), "server": {"callback_process": "auto", **server}}, env={})
        return config.server, config.wecom, config.database

    server, wecom, sqlite = sections()
    assert sqlite.url.startswith("sqlite")
    assert not fronts.wanted(server, wecom, sqlite)  # no callback configured (local mode)
    keyed = wecom.model_copy(update={"encoding_aes_key": "a" * 43})
    postgres = sqlite.model_copy(update={"url": "postgresql+asyncpg://bot@db/pioneer"})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert fronts.wanted(server, keyed, sqlite)
    assert not fronts.wanted(server, keyed, postgres)  # auto: instances scale out on PostgreSQL
    assert not fronts.wanted(server, keyed, sqlite, channels=[])  # the whole configuration: no channel
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not fronts.wanted(server, keyed, sqlite)  # auto, one core: one process does it all
    on, off = sections(callback_process="on")[0], sections(callback_process="off")[0]
    assert fronts.wanted(on, keyed, sqlite) and fronts.wanted(on, keyed, postgres)
    assert not fronts.wanted(off, keyed, sqlite)

    with pytest.raises(ConfigError) as caught:
        parse_config({**shipped_config(), "server": {"callback_process": "sometimes"}}, env={})
    assert any(p.startswith("server.callback_process") for p in caught.value.problems)


def test_the_early_sections_are_read_with_the_environment(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "server:\n  port: ${P:-8080}\n  callback_process: ${C:-auto}\nwecom:\n  encoding_aes_key: ${K}\n",
        encoding="utf-8",
    )
    server, wecom, database = read_sections(path, env={"P": "9000", "C": "off", "K": "k" * 43})
    assert (server.port, server.callback_process, wecom.encoding_aes_key) == (9000, "off", "k" * 43)
    assert database.url.startswith("sqlite")  # not given: the default
    path.write_text("server:\n  port: many\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        read_sections(path, env={})
    assert fronts.start_early(str(path)) is None  # its problems are reported by the full load

    with socket.create_server(("127.0.0.1", 0)) as taken:  # the port is someone else's
        port = taken.getsockname()[1]
        path.write_text(
            f"server:\n  port: {port}\n  callback_process: 'on'\nwecom:\n  encoding_aes_key: {'k' * 43}\n",
            encoding="utf-8",
        )
        assert read_sections(path).server.callback_process == "on"
        assert fronts.start_early(str(path)) is None  # the server says so as it starts, as without a front
