"""Local mode without a browser: the simulator page's API, over the real encrypted callback."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.config import DEFAULT_API_BASE, parse_config
from bot.scheduler import JobContext
from bot.serve import serve
from bot.simulator.fake_api import FakeWeCom
from bot.simulator.local import HERE, LOCAL_DATABASE_URL, load_demo, local_config
from storage.models import InboxEntry, Member, MemberRole, SkillLevel
from tests import kit
from tests.simkit import (
    APPROVER,
    LocalKit,
    demo_router,
    next_event,
    start_local,
    stop_local,
)


def weekly_ranking(ctx: JobContext) -> str:
    for group in ctx.arguments["groups"]:
        ctx.broadcast(group, "## 上周个人积分排行\n1. 王芳 **12** 分\n2. 赵磊 **9** 分")
    return "2 rows"


@pytest.fixture
async def local(database_url: str, http: aiohttp.ClientSession) -> AsyncIterator[LocalKit]:
    kit = await start_local(
        database_url, http, router=demo_router(), jobs={"ranking_broadcast": weekly_ranking}
    )
    yield kit
    await stop_local(kit)


def count(model: Any) -> Any:
    return lambda s: s.execute(select(func.count()).select_from(model)).scalar_one()


# -- configuration -----------------------------------------------------------------------------------------


def test_local_config_makes_up_credentials_and_points_everything_at_the_simulator() -> None:
    config = local_config(parse_config(kit.shipped_config(), env={"BOT_PORT": "0"}))
    w = config.wecom
    port = config.server.port
    assert port > 0  # port 0 is resolved up front: the URLs below must name the real port
    assert w.configured and w.corp_id == "wwlocal" and w.agent_id == 1000002
    assert re.fullmatch(r"[A-Za-z0-9]{43}", w.encoding_aes_key) and w.token
    assert w.api_base == f"http://127.0.0.1:{port}/sim"
    assert (
        config.groups["制丝车间群"].webhook
        == f"http://127.0.0.1:{port}/sim/cgi-bin/webhook/send?key=%E5%88%B6%E4%B8%9D%E8%BD%A6%E9%97%B4%E7%BE%A4"
    )
    assert config.database.url == LOCAL_DATABASE_URL  # the demo cast never lands in the default database


def test_local_config_is_new_each_session_and_keeps_an_explicit_database() -> None:
    base = parse_config(kit.shipped_config(), env={"DATABASE_URL": "sqlite:///elsewhere.db"})
    one, two = local_config(base), local_config(base)
    assert one.wecom.encoding_aes_key != two.wecom.encoding_aes_key and one.wecom.secret != two.wecom.secret
    assert one.database.url == "sqlite:///elsewhere.db"
    assert one.server.port == 8080  # the configured port is kept


# -- the page and the demo cast


async def test_the_page_and_its_files_are_served(local: LocalKit) -> None:
    async with local.http.get(local.page) as resp:
        assert resp.status == 200
        html = await resp.text()
    assert "先锋" in html and "static/sim.js" in html and "static/sim.css" in html
    for name in ("sim.js", "sim.css"):
        async with local.http.get(local.page + "static/" + name) as resp:
            assert resp.status == 200, name
    async with local.http.get(local.app.url + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/sim/"


async def test_the_cast_and_their_skills_are_loaded_and_reloading_does_not_duplicate(local: LocalKit) -> None:
    async with local.http.get(local.page + "api/cast") as resp:
        cast = await resp.json()
    people = {m["userid"]: m for m in cast["members"]}
    assert len(people) == 13
    assert {m["branch"] for m in people.values()} == {"第一党支部", "第二党支部"}
    assert {m["team"] for m in people.values()} == {"甲班", "乙班"}
    assert [r["name"] for r in people["zhangwei"]["roles"]] == ["支部书记"]
    assert people["liuyang"]["political_status"] == "群众" and people["liuyang"]["roles"] == []
    assert {g["name"] for g in cast["groups"]} == {"党总支群", "制丝车间群", "第一支部群", "第二支部群"}
    skills = len((HERE / "skills.csv").read_text(encoding="utf-8").strip().splitlines()) - 1
    assert await local.app.db.run(count(SkillLevel)) == skills

    await load_demo(local.app)  # the next `make run` imports again
    assert await local.app.db.run(count(Member)) == 13
    assert await local.app.db.run(count(SkillLevel)) == skills
    roles = await local.app.db.run(count(MemberRole))
    await load_demo(local.app)
    assert await local.app.db.run(count(MemberRole)) == roles


# -- talking to the bot


async def test_say_goes_through_the_encrypted_callback_and_returns_the_passive_reply(local: LocalKit) -> None:
    reply = await local.say("wangfang", "帮助")
    assert reply.startswith("王芳，你可以用这些命令")
    assert local.app.callback.last_callback_at is not None  # it came in through the callback endpoint
    assert await local.app.db.run(count(InboxEntry)) == 1


async def test_bad_requests_are_refused(local: LocalKit) -> None:
    assert (await local.post("api/say", {"userid": "wangfang"}))[0] == 400
    assert (await local.post("api/say", {"text": "帮助"}))[0] == 400
    assert (await local.post("api/say", {"userid": "wangfang", "text": "长" * 700}))[0] == 400
    async with local.http.post(local.page + "api/say", data=b"not json") as resp:
        assert resp.status == 400


async def test_the_event_stream_shows_the_whole_approval_flow(local: LocalKit) -> None:
    async with aclosing(local.events()) as stream:
        assert (await stream.__anext__())["kind"] == "hello"
        reply = await local.say("wangfang", "尽责 A01 攻坚克难\n说明：带班组完成切丝机换型")
        assert reply.startswith("已提交 #1")
        mine = await next_event(stream, "user", userid="wangfang")
        assert mine["text"].startswith("尽责 A01")
        assert (await next_event(stream, "reply", userid="wangfang"))["text"] == reply

        card = await next_event(stream, "app", msgtype="template_card")
        assert card["users"] == [APPROVER] and card["response_code"]
        assert card["body"]["main_title"]["title"] == "尽责申报 #1"

        status, answer = await local.post(
            "api/click",
            {
                "userid": APPROVER,
                "event_key": "approve:1",
                "task_id": card["body"]["task_id"],
                "response_code": card["response_code"],
                "label": "通过",
            },
        )
        assert status == 200 and answer["reply"] == {"text": "", "replace_button": "已通过 · 张伟"}
        assert (await next_event(stream, "click", userid=APPROVER))["label"] == "通过"
        done = await next_event(stream, "reply", userid=APPROVER)
        assert done["replace_button"] == "已通过 · 张伟" and done["response_code"] == card["response_code"]

        later = await collect(stream, "app", "card_update", "webhook")
        assert later["webhook"]["group"] == "第一支部群" and "尽责公示" in later["webhook"]["body"]["content"]
        assert later["card_update"]["response_code"] == card["response_code"]

    # A reload replays everything, so the conversations come back, up to the submitter being told.
    async with aclosing(local.events()) as replay:
        history = await events_until(replay, lambda e: e["kind"] == "app" and e["users"] == ["wangfang"])
    assert history[0]["kind"] == "hello"
    first_exchange = [(e["kind"], e.get("userid")) for e in history[1:3]]
    assert first_exchange == [("user", "wangfang"), ("reply", "wangfang")]
    assert {"app", "click"} <= {e["kind"] for e in history}
    assert "你的申报 #1 已通过" in history[-1]["body"]["content"]  # the submitter was told


async def collect(
    stream: AsyncIterator[dict[str, Any]], *kinds: str, timeout: float = 5.0
) -> dict[str, dict[str, Any]]:
    """The first event of each kind, in whatever order they come."""
    found: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(timeout):
        async for event in stream:
            if event["kind"] in kinds:
                found.setdefault(event["kind"], event)
            if len(found) == len(kinds):
                return found
    raise AssertionError(f"the stream ended before {kinds}")


async def events_until(
    stream: AsyncIterator[dict[str, Any]], last: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Events up to and including the first for which `last` holds."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            seen.append(event)
            if last(event):
                return seen
    raise AssertionError(f"the stream ended after {len(seen)} events")


async def test_the_stream_resumes_after_the_last_event_id(local: LocalKit) -> None:
    await local.say("wangfang", "帮助")
    async with aclosing(local.events()) as stream:
        hello = await stream.__anext__()
        first = await stream.__anext__()
        second = await stream.__anext__()
    assert (first["kind"], second["kind"]) == ("user", "reply")
    await local.say("wangfang", "我的")
    async with aclosing(local.events(f"{hello['instance']}:{second['id']}")) as stream:
        await stream.__anext__()
        resumed = await stream.__anext__()
    assert resumed["kind"] == "user" and resumed["text"] == "我的"


async def test_card_updates_through_the_api_reach_the_page(local: LocalKit) -> None:
    await local.say("wangfang", "尽责 A01\n说明：换型")
    async with aclosing(local.events()) as stream:
        card = await next_event(stream, "app", msgtype="template_card")
        await local.say(APPROVER, "通过 #1")  # typed, not clicked: the card is updated through the API
        update = await next_event(stream, "card_update")
    assert update["response_code"] == card["response_code"] and update["label"] == "已通过 · 张伟"
    assert update["users"] == [APPROVER]


async def test_files_the_bot_sends_are_downloadable(local: LocalKit) -> None:
    async with aclosing(local.events()) as stream:
        assert await local.say("zhoujie", "导出") == "正在生成，文件稍后发给你。"
        sent = await next_event(stream, "app", msgtype="file")
    assert sent["users"] == ["zhoujie"] and sent["file"]["name"] == "本季度积分.xlsx"
    async with local.http.get(local.page + sent["file"]["url"]) as resp:
        assert resp.status == 200
        assert await resp.read() == bytes(range(256)) * 800  # bigger than the callback's body limit
        assert "attachment" in resp.headers["Content-Disposition"]


async def test_an_image_is_delivered_as_an_image_callback(local: LocalKit) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100_000
    async with aclosing(local.events()) as stream:
        status, answer = await local.post(
            "api/image",
            {"userid": "wangfang", "filename": "证明.png", "data": base64.b64encode(png).decode()},
        )
        assert status == 200 and "图片已收到" in answer["reply"]["text"]
        mine = await next_event(stream, "user", msgtype="image")
    async with local.http.get(local.page + mine["file"]["url"]) as resp:
        assert await resp.read() == png and resp.headers["Content-Type"] == "image/png"


async def test_a_job_run_from_the_page_posts_to_the_group_robots(local: LocalKit) -> None:
    async with local.http.get(local.page + "api/cast") as resp:
        jobs = [j["name"] for j in (await resp.json())["jobs"]]
    assert "ranking_weekly" in jobs and "pending_digest" not in jobs  # only jobs this bot knows
    async with aclosing(local.events()) as stream:
        status, answer = await local.post("api/jobs/ranking_weekly", {})
        assert status == 200 and answer["status"] == "done"
        posted = await next_event(stream, "webhook")
    assert posted["group"] == "制丝车间群" and posted["msgtype"] == "markdown"
    assert posted["body"]["content"].startswith("## 上周个人积分排行")
    assert (await local.post("api/jobs/no_such_job", {}))[0] == 404


async def test_a_stranger_is_refused_politely(local: LocalKit) -> None:
    assert "你还不是「先锋」的登记成员" in await local.say("nobody", "帮助")


# -- serve: local mode only without credentials


async def _serving(config: Any) -> tuple[asyncio.Event, asyncio.Task[None], Any]:
    stop = asyncio.Event()
    started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, stop, on_started=started.set_result))
    app = await asyncio.wait_for(asyncio.shield(started), 20)
    return stop, task, app


async def test_serve_without_credentials_runs_local_mode_and_says_where_to_look(
    database_url: str, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = kit.shipped_config()
    raw["database"] = {"url": database_url}
    raw["server"] = {"host": "127.0.0.1", "port": 0}
    stop, task, app = await _serving(parse_config(raw, env={}))
    try:
        assert capsys.readouterr().out == f"Pioneer is running in local mode: open {app.url}/sim/\n"
        assert app.config.wecom.api_base == app.url + "/sim"
        async with http.post(app.url + "/sim/api/say", json={"userid": "wangfang", "text": "帮助"}) as resp:
            answer = await resp.json()
        assert answer["reply"]["text"].startswith("王芳，你可以用这些命令")  # the shipped handlers answer
    finally:
        stop.set()
        await task


async def test_serve_with_credentials_runs_nothing_of_local_mode(
    database_url: str, http: aiohttp.ClientSession, fake: FakeWeCom, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fake.base_url
    config = kit.make_config(database_url, fake.base_url, admins=["liqiang"])
    assert config.wecom.configured
    stop, task, app = await _serving(config)
    try:
        assert capsys.readouterr().out == ""
        for path in ("/sim/", "/sim/api/cast", "/sim/cgi-bin/gettoken", "/"):
            async with http.get(app.url + path) as resp:
                assert resp.status == 404, path
        assert app.config.wecom.api_base == fake.base_url != DEFAULT_API_BASE
        assert await app.db.run(count(Member)) == 0  # no demo cast
        assert await app.db.run(count(InboxEntry)) == 0  # and no demo history
        # The API client talks to the configured API: a stranger's message is reported to the admin there.
        bot = kit.BotKit(app, fake, http)
        await bot.say("stranger", "你好")
        await bot.wait_sent("liqiang")
    finally:
        stop.set()
        await task
