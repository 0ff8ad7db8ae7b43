"""The 党建看板 through the front door: the token (in the URL once, then a cookie; 403 without), each
panel's data after what people did through encrypted callbacks, a branch's board seeing only its
branch, names and points only (a rejected claim's words never appear), and the live stream telling
open boards which panels changed, after a message and after a commit by another process.

The cast: 张伟 is the secretary of 第一党支部 (甲班: 王芳, 孙丽 …); 吴昊 the secretary of 第二党支部.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.board.panels import CLOCK, PANELS
from bot.config import ConfigError, parse_config
from handlers.points_config import PointsConfig
from handlers.skills import import_levels
from handlers.skills_config import SkillsConfig
from storage import board as board_store
from tests.kit import BotKit, shipped_config
from tests.test_points import approve, claim

TOKEN = "workshop-board-token-0001"
BRANCH_TOKEN = "branch-two-board-token-02"
BOARD = {
    "token": TOKEN,
    "check_seconds": 0.2,
    "boards": [{"name": "二支部看板", "token": BRANCH_TOKEN, "branch": "第二党支部"}],
}


@pytest.fixture
async def bot(make_bot) -> BotKit:  # type: ignore[no-untyped-def]
    return await make_bot(board=BOARD)


@pytest.fixture
async def screen(bot: BotKit) -> Any:
    """A browser-like client of the workshop's board: it opened the URL with the token once."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{bot.app.url}/board/?token={TOKEN}") as resp:
            assert resp.status == 200 and "党建看板" in await resp.text()
        yield client


async def data(client: aiohttp.ClientSession, bot: BotKit, panel: str = "") -> dict[str, Any]:
    async with client.get(f"{bot.app.url}/board/data" + (f"/{panel}" if panel else "")) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


def panel(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p["data"] for p in body["panels"] if p["key"] == key)


async def test_without_the_token_page_data_and_stream_are_refused(bot: BotKit):
    base = f"{bot.app.url}/board/"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        for url in (
            base,
            base + "data",
            base + "data/ranking",
            base + "events",
            base + "?token=wrong-token-xxxxxxxx",
        ):
            async with client.get(url) as resp:
                assert resp.status == 403, url
        client.cookie_jar.update_cookies({"pioneer_board": "not-the-token-at-all"})
        async with client.get(base + "data") as resp:
            assert resp.status == 403
        body = await (await client.get(base)).text()
        assert "令牌" in body and "王芳" not in body


async def test_the_token_in_the_url_becomes_a_strict_http_only_cookie_and_leaves_the_address(bot: BotKit):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{bot.app.url}/board/?token={TOKEN}", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/board/"
            cookie = resp.headers["Set-Cookie"]
        assert f"pioneer_board={TOKEN}" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/board/" in cookie
        async with client.get(f"{bot.app.url}/board/") as resp:
            assert resp.status == 200 and "static/board.js" in await resp.text()
        async with client.get(
            f"{bot.app.url}/board/?token={TOKEN}&panel=skills", allow_redirects=False
        ) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/board/?panel=skills"
        async with client.get(f"{bot.app.url}/board", allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/board/"
        body = await data(client, bot)
        assert (
            body["board"] == "车间" and body["rotate_seconds"] == 20 and body["timezone"] == "Asia/Shanghai"
        )
        assert [p["key"] for p in body["panels"]] == [
            "ranking",
            "activities",
            "skills",
            "publicity",
            "projects",
            "feed",
        ]
        async with client.get(f"{bot.app.url}/board/data/nothing") as resp:
            assert resp.status == 404


async def test_the_ranking_and_the_feed_show_approved_points_and_never_a_rejected_claims_words(
    bot: BotKit, screen: aiohttp.ClientSession
):
    await approve(bot, "zhangwei", await claim(bot, "wangfang", description="技改现场连续值守三个夜班"))
    secret = "孙丽家里的私事不该上墙"
    rejected = await claim(bot, "sunli", description=secret)
    reply = await bot.say("zhangwei", f"驳回 #{rejected} 理由里有个人情况不能公开")
    assert "已驳回" in reply

    body = await data(screen, bot)
    ranking = panel(body, "ranking")
    first = ranking["members"][0]
    assert first["name"] == "王芳" and first["rank"] == 1 and first["change"] == "新", first
    assert float(first["points"]) > 0 and first["detail"] == "第一党支部"
    assert ranking["teams"][0]["name"] == "甲班" and ranking["people"] == 1
    assert [b["name"] for b in ranking["branches"] if float(b["points"])] == ["第一党支部"]
    feed = panel(body, "feed")["entries"]
    assert feed and feed[0]["name"] == "王芳" and feed[0]["points"] == first["points"]
    indicator = PointsConfig.of(bot.app.config).indicator("A01")
    assert indicator and feed[0]["what"] == indicator.name  # the indicator's name, not the claim's words

    text = json.dumps(body, ensure_ascii=False)
    for private in (secret, "理由里有个人情况", "连续值守", "孙丽"):
        assert private not in text, private


async def test_a_voided_entry_leaves_the_feed(bot: BotKit, screen: aiohttp.ClientSession):
    n = await claim(bot, "wangfang")
    await approve(bot, "zhangwei", n)
    assert panel(await data(screen, bot), "feed")["entries"]
    reply = await bot.say("zhangwei", f"撤销 #{n} 重复申报")
    assert "已作废" in reply, reply
    await asyncio.sleep(0.3)  # the data cache lives check_seconds while no stream is open
    assert panel(await data(screen, bot), "feed")["entries"] == []


async def test_a_branch_board_sees_its_own_branch_only(bot: BotKit):
    await approve(bot, "zhangwei", await claim(bot, "wangfang"))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{bot.app.url}/board/?token={BRANCH_TOKEN}") as resp:
            assert resp.status == 200
        body = await data(client, bot)
    assert body["board"] == "二支部看板" and body["scope"] == "第二党支部"
    ranking = panel(body, "ranking")
    assert ranking["members"] == [] and ranking["people"] == 0 and ranking["my_branch"] == "第二党支部"
    assert panel(body, "feed")["entries"] == []
    assert {b["name"] for b in ranking["branches"]} >= {
        "第一党支部",
        "第二党支部",
    }  # the table is the workshop's


async def test_a_board_of_an_unknown_branch_shows_nothing_and_says_why(make_bot):  # type: ignore[no-untyped-def]
    boards = [{"name": "三支部看板", "token": BRANCH_TOKEN, "branch": "第三党支部"}]
    bot = await make_bot(board={"boards": boards})
    await approve(bot, "zhangwei", await claim(bot, "wangfang"))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await client.get(f"{bot.app.url}/board/?token={BRANCH_TOKEN}")
        for url in ("data", "data/feed"):
            async with client.get(f"{bot.app.url}/board/{url}") as resp:
                text = await resp.text()
                assert resp.status == 409 and "第三党支部" in text and "board.boards" in text
                assert "王芳" not in text


async def test_an_activity_shows_its_live_sign_ins_against_the_expected(
    bot: BotKit, screen: aiohttp.ClientSession
):
    start = datetime.now(bot.app.config.tz) + timedelta(minutes=10)
    reply = await bot.say(
        "zhangwei",
        f"活动\n名称：党员示范岗交流会\n类型：主题教育\n时间：{start:%Y-%m-%d %H:%M}\n地点：车间党员活动室",
    )
    code = re.search(r"签到码 (\d{4})", reply)
    assert code, reply
    shown = panel(await data(screen, bot), "activities")
    assert shown["recent"] == []
    before = shown["activities"]
    assert [a["name"] for a in before] == ["党员示范岗交流会"]
    assert before[0]["present"] == 0 and before[0]["expected"] > 1 and before[0]["state"] == "签到中"
    assert "签到成功" in await bot.say("wangfang", f"签到 {code.group(1)}")
    await asyncio.sleep(0.3)
    after = panel(await data(screen, bot), "activities")["activities"][0]
    assert after["present"] == 1 and after["expected"] == before[0]["expected"]


async def test_skills_publicity_and_projects_panels_follow_the_practices(
    bot: BotKit, screen: aiohttp.ClientSession
):
    body = await data(screen, bot)
    skills = panel(body, "skills")
    posts = [p for s in skills["sections"] for p in s["posts"]]
    assert posts and skills["posts"] == len(posts) and all(p["qualified"] == 0 for p in posts)
    assert skills["uncovered"] == len(posts)
    post = posts[0]["post"]
    report = await bot.query(
        lambda s: import_levels(s, bot.app.config, f"userid,skill,level\nwangfang,{post},U\n")
    )
    assert not report.problems, report.problems
    await asyncio.sleep(0.3)
    skills = (await data(screen, bot, "skills"))["data"]
    first = next(p for s in skills["sections"] for p in s["posts"] if p["post"] == post)
    assert first["qualified"] == 1 and first["single"] and skills["single"] == 1

    publicity = panel(body, "publicity")
    assert publicity["modules"] and all(m["accepted"] == 0 and m["quota"] >= 0 for m in publicity["modules"])
    assert panel(body, "projects") == {
        "projects": [],
        "late": 0,
        "open": 0,
        "accepted": 0,
        "milestones_done": 0,
    }


async def read_event(stream: aiohttp.ClientResponse, timeout: float = 5.0) -> tuple[str, str]:
    """The next event (name, data) of a server-sent event stream, comments skipped."""
    name, payload = "message", ""

    async def read() -> tuple[str, str]:
        nonlocal name, payload
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                payload = line[6:]
            elif line == "" and payload:
                return name, payload

    return await asyncio.wait_for(read(), timeout)


async def test_an_open_board_hears_which_panels_changed_after_an_approval(
    bot: BotKit, screen: aiohttp.ClientSession
):
    n = await claim(bot, "wangfang")
    async with screen.get(f"{bot.app.url}/board/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert await read_event(stream) == ("hello", "{}")
        await approve(bot, "zhangwei", n)
        name, payload = await read_event(stream)
        while "ranking" not in json.loads(payload)["panels"]:  # the claim itself may be told first
            name, payload = await read_event(stream)
        assert name == "changed" and {"ranking", "feed"} <= set(json.loads(payload)["panels"])
    members = (await data(screen, bot, "ranking"))["data"]["members"]
    assert members[0]["name"] == "王芳"


async def test_a_commit_by_another_process_reaches_an_open_board(bot: BotKit, screen: aiohttp.ClientSession):
    async with screen.get(f"{bot.app.url}/board/events") as stream:
        await read_event(stream)
        await asyncio.sleep(0.3)  # the watcher's first reading with the stream open
        post = SkillsConfig.of(bot.app.config).posts[0].name
        # Not through the dispatcher, so nothing pokes the board: only its periodic check finds it.
        await bot.query(lambda s: import_levels(s, bot.app.config, f"userid,skill,level\nzhaolei,{post},O\n"))
        name, payload = await read_event(stream)
        assert name == "changed" and "skills" in json.loads(payload)["panels"]


async def test_a_screen_that_goes_away_does_not_leave_the_others_waiting(bot: BotKit):
    board = bot.app.board
    assert board is not None
    screen, panel = bot.app.config.board.screens[0], PANELS["ranking"]
    first = asyncio.create_task(board.panel_data(screen, panel))
    await asyncio.sleep(0)  # it has started the computation
    second = asyncio.create_task(board.panel_data(screen, panel))
    await asyncio.sleep(0)  # and this one waits for the same
    first.cancel()
    assert (await asyncio.wait_for(second, 5))["period"]


async def test_every_panel_watches_signals_that_exist(bot: BotKit):
    known = set(await bot.query(board_store.signals)) | {CLOCK}
    for panel in PANELS.values():
        assert panel.watches and panel.watches <= known, (panel.key, panel.watches - known)


def test_board_tokens_must_be_long_and_unique():
    raw = shipped_config()
    with pytest.raises(ConfigError) as short:
        parse_config({**raw, "board": {"token": "short"}}, env={})
    assert any(p.startswith("board.token: must be at least 16") for p in short.value.problems)
    boards = [{"name": "一", "token": TOKEN}, {"name": "一", "token": TOKEN, "branch": "第一党支部"}]
    with pytest.raises(ConfigError) as twice:
        parse_config({**raw, "board": {"token": TOKEN, "boards": boards}}, env={})
    problems = "\n".join(twice.value.problems)
    assert "board.boards[0].token: is already used" in problems and "duplicate board name" in problems
    config = parse_config({**raw, "board": {"path": "/screen", "token": TOKEN}}, env={})
    assert config.board.path == "/screen/" and [s.name for s in config.board.screens] == ["车间"]
    assert not parse_config(raw, env={}).board.enabled
