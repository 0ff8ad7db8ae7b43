"""The 党建看板 in a real browser (headless Chromium through Playwright, found and launched as the
simulator's browser test does; CI installs Debian's chromium and fails rather than skip).

A board opened without its token is refused; with it, the page shows the month's ranking and, after a
secretary approves a claim through an encrypted callback, the new points within 2 seconds, without a
reload. In local mode the simulator links to the board and the demo history fills every panel; with
`PIONEER_SCREENSHOT=1` that board is saved as `docs/board.png` (1920×1080).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.points import PointEntry
from tests.kit import ROOT, BotKit
from tests.simkit import LocalKit
from tests.test_points import approve, claim
from tests.test_simulator_browser import browser, demo  # noqa: F401 - fixtures

TOKEN = "wall-screen-token-0000001"
SCREENSHOT = ROOT / "docs" / "board.png"
WALL = {"width": 1920, "height": 1080}


@pytest.fixture
async def bot(make_bot) -> BotKit:  # type: ignore[no-untyped-def]
    return await make_bot(board={"token": TOKEN})


async def test_the_board_needs_its_token_shows_the_ranking_and_follows_an_approval_live(
    bot: BotKit,
    browser: Any,  # noqa: F811
) -> None:
    from playwright.async_api import expect

    await approve(bot, "zhangwei", await claim(bot, "wangfang"))
    waiting = await claim(bot, "zhaolei", description="夜班带队抢修烘丝机")
    page = await browser.new_page(viewport=WALL, locale="zh-CN", timezone_id="Asia/Shanghai")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    refused = await page.goto(f"{bot.app.url}/board/")
    assert refused is not None and refused.status == 403
    await expect(page.locator("body")).to_contain_text("党建看板需要令牌")

    await page.goto(f"{bot.app.url}/board/?token={TOKEN}")
    assert page.url == f"{bot.app.url}/board/"  # the token left the address bar for a cookie
    [cookie] = await page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/board/"
    members = page.locator("#panel-ranking .members")
    await expect(members).to_be_visible()
    await expect(members.locator(".row").first).to_contain_text("王芳")
    await expect(page.locator("#live")).not_to_have_class(re.compile("off"))
    assert "赵磊" not in await members.inner_text()

    await approve(bot, "zhangwei", waiting)  # an encrypted callback, as WeCom sends it
    await expect(members).to_contain_text("赵磊", timeout=2000)
    await expect(page.locator("#feed")).to_contain_text("赵磊", timeout=2000)
    assert "夜班带队抢修" not in await page.locator("body").inner_text()  # the claim's words stay private
    assert errors == []


def members_with_points_this_month(session: Session) -> int:
    """Counted from the ledger itself (not the totals the board reads): from mid-month on the demo
    fills the top ten; in the first days of a month only what its history did since the 1st counts."""
    first = datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1)
    per_member = (
        select(PointEntry.member_id)
        .where(PointEntry.day >= first, PointEntry.member_id.is_not(None))  # type: ignore[union-attr]
        .group_by(PointEntry.member_id)
        .having(func.sum(PointEntry.points_x100) > 0)
    )
    return int(session.execute(select(func.count()).select_from(per_member.subquery())).scalar_one())


async def test_the_simulator_links_to_a_board_the_demo_fills(demo: LocalKit, browser: Any) -> None:  # noqa: F811
    from playwright.async_api import expect

    sim = await browser.new_page(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    await sim.goto(demo.page)
    link = sim.locator("a.board-link")
    await expect(link).to_have_text("党建看板 ↗")
    href = await link.get_attribute("href")
    assert href and href.startswith("/board/?token=")

    page = await browser.new_page(viewport=WALL, locale="zh-CN", timezone_id="Asia/Shanghai")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(demo.page.removesuffix("/sim/") + href)
    tabs = page.locator("#tabs .tab")
    await expect(tabs).to_have_text(["本月积分榜", "活动与签到", "多能工覆盖", "宣传录用", "书记项目"])
    for key in ("ranking", "activities", "skills", "publicity", "projects"):
        panel = page.locator(f"#panel-{key}")
        await expect(panel.locator(".card").first).to_be_attached()
        assert await panel.locator(".empty").count() == 0, key  # the demo history fills every panel
    await expect(page.locator("#feed span").first).to_contain_text("+")

    ranked = await demo.app.db.run(members_with_points_this_month)
    assert ranked >= 1  # the demo's steps of today stay in today, even on the 1st just after midnight
    await page.goto(demo.page.removesuffix("/sim/") + "/board/?panel=ranking")
    await expect(page.locator("#panel-ranking.on .members .row")).to_have_count(min(ranked, 10))
    size = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size == [1920, 1080]  # nothing spills off the screen
    if os.environ.get("PIONEER_SCREENSHOT") == "1":
        await page.wait_for_timeout(1500)  # the entrance animation and the first metres of the ticker
        await page.screenshot(path=str(SCREENSHOT))
    assert errors == []
