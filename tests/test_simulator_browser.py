"""The simulator page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

The bot runs its shipped handlers, as `make run` does. Skipped where Chromium is missing, except in
CI (env `CI` set), where it fails instead. With `PIONEER_SCREENSHOT=1` the demo scenario (local mode
with its history, as `make run` opens) saves the README's screenshot to `docs/simulator.png`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.kit import ROOT
from tests.simkit import LocalKit, start_local, stop_local

CHROMIUM = Path(os.environ.get("PIONEER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "simulator.png"
FORM = ("尽责", "指标：A01", "说明：带班组完成切丝机换型，提前两小时复产")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        reason = (
            f"Chromium not found at {CHROMIUM}: the browser test needs Debian's chromium "
            "(apt-get install chromium fonts-noto-cjk) or PIONEER_CHROMIUM=/path/to/chromium"
        )
        if os.environ.get("CI"):
            pytest.fail(reason + " — and CI must run it")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def local(database_url: str, http: aiohttp.ClientSession) -> AsyncIterator[LocalKit]:
    kit = await start_local(database_url, http)  # the shipped handlers
    yield kit
    await stop_local(kit)


@pytest.fixture
async def demo(database_url: str, http: aiohttp.ClientSession) -> AsyncIterator[LocalKit]:
    kit = await start_local(database_url, http, history=True)  # as `make run` opens the first time
    yield kit
    await stop_local(kit)


def bot_clock(minutes: int = 2) -> set[str]:
    """HH:MM in the bot's zone (the shipped Asia/Shanghai) for the last few minutes."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return {f"{now - timedelta(minutes=m):%H:%M}" for m in range(minutes + 1)}


async def test_a_member_asks_for_help_claims_points_and_the_secretary_approves(
    local: LocalKit, browser: Any
) -> None:
    from playwright.async_api import expect

    # The browser is in New York, the bot in Shanghai: every time on the page is the bot's, as on its cards.
    page = await browser.new_page(
        viewport={"width": 1360, "height": 860}, locale="zh-CN", timezone_id="America/New_York"
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(local.page)
    await expect(page.locator("#conn")).to_have_text("已连接")

    # 王芳, a party member of 第一党支部, asks for help.
    await page.locator('.member[data-userid="wangfang"]').click()
    await expect(page.locator(".chat-head")).to_contain_text("王芳")
    box = page.locator("#input")
    await box.fill("帮助")
    await box.press("Enter")
    messages = page.locator("#messages")
    await expect(messages.locator(".msg.me .bubble").last).to_have_text("帮助")
    help_reply = messages.locator(".msg.bot .bubble").last
    await expect(help_reply).to_contain_text("王芳，你可以用这些命令")
    await expect(help_reply).to_contain_text("尽责：")
    assert await messages.locator(".stamp").first.inner_text() in bot_clock()

    # A three-line form: Shift+Enter makes each new line, Enter sends.
    await box.fill(FORM[0])
    for line in FORM[1:]:
        await box.press("Shift+Enter")
        await page.keyboard.insert_text(line)
    await expect(box).to_have_value("\n".join(FORM))
    await box.press("Enter")
    await expect(messages.locator(".msg.me .bubble").last).to_have_text("\n".join(FORM))
    submitted = messages.locator(".msg.bot .bubble", has_text="已提交尽责申报")
    await expect(submitted).to_contain_text("A01 参加党员突击队/攻坚任务，3 分")
    await expect(submitted).to_contain_text("等待 张伟 审核")
    found = re.search(r"#(\d+)", await submitted.inner_text())
    assert found, await submitted.inner_text()
    n = found.group(1)

    # 张伟, her branch secretary, finds the card and clicks 通过; the card greys with the decision.
    await page.locator('.member[data-userid="zhangwei"]').click()
    await expect(page.locator(".chat-head")).to_contain_text("张伟")
    card = messages.locator(".card", has_text=f"尽责申报 #{n}")
    await expect(card).to_contain_text("王芳（第一党支部）")
    await expect(card).to_contain_text("带班组完成切丝机换型")
    await card.get_by_role("button", name="通过").click()
    await expect(messages.locator(".note").last).to_have_text("张伟 点击了「通过」")
    await expect(card.locator(".card-done")).to_have_text(re.compile(r"^已通过 · 张伟 \d\d-\d\d \d\d:\d\d$"))
    await expect(card.get_by_role("button")).to_have_count(0)
    await expect(messages.locator(".msg.bot .bubble").last).to_have_text(
        f"已通过 #{n}：A01 参加党员突击队/攻坚任务，王芳 +3 分。"
    )
    done = await card.locator(".card-done").inner_text()
    assert done[-5:] in bot_clock() and await messages.locator(".stamp").last.inner_text() in bot_clock()
    # 王芳's notice arrived while 张伟's conversation was shown: it counts as unread for her.
    await expect(page.locator('.member[data-userid="wangfang"] .count')).to_have_text(re.compile(r"^[1-9]$"))

    # Back to 王芳: her conversation is as she left it, with the notice added; a reload keeps it all.
    notice = f"你的尽责申报 #{n}（A01 参加党员突击队/攻坚任务）已由 张伟 审核通过，+3 分。"
    for step in ("switch", "reload"):
        if step == "reload":
            await page.reload()
        else:
            await page.locator('.member[data-userid="wangfang"]').click()
        await expect(page.locator(".chat-head")).to_contain_text("王芳")
        await expect(messages.locator(".msg.me .bubble")).to_have_count(2)
        await expect(messages.locator(".msg.bot .bubble").last).to_have_text(notice)
    # After the reload the history is replayed: none of it is unread, for anyone.
    await expect(page.locator(".member .count", has_text=re.compile(r"\d"))).to_have_count(0)
    await expect(page.locator("#members-count")).to_have_text("")

    # 我的 shows the points booked.
    await page.locator("#quick button", has_text="我的").click()
    mine = messages.locator(".msg.bot .bubble").last
    await expect(mine).to_contain_text("王芳（党员）")
    await expect(mine).to_contain_text(re.compile(r"本季度积分（.+）：3 分"))
    await expect(mine).to_contain_text(re.compile(rf"\d\d-\d\d \+3 A01 .+ #{n}"))
    assert errors == []


async def test_on_a_phone_the_panes_become_tabs(local: LocalKit, browser: Any) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(
        viewport={"width": 390, "height": 800},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        locale="zh-CN",
    )
    await page.goto(local.page)
    tabs = page.locator(".tabs")
    await expect(tabs).to_be_visible()
    await expect(page.locator("#pane-chat")).to_be_hidden()
    await page.locator('.member[data-userid="liuyang"]').click()  # choosing a member opens the chat
    await expect(page.locator("#pane-members")).to_be_hidden()
    await page.locator("#quick button", has_text="我的").click()
    await expect(page.locator("#messages .msg.bot .bubble").last).to_contain_text("刘洋（群众）")
    await tabs.get_by_role("tab", name="群机器人").click()
    await expect(page.locator("#pane-groups")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing sticks out sideways


async def test_the_demo_opens_with_history_and_the_secretary_approves_from_his_card(
    demo: LocalKit, browser: Any
) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(
        viewport={"width": 1360, "height": 860}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(demo.page)
    await expect(page.locator("#conn")).to_have_text("已连接")
    await expect(page.locator(".member .count", has_text=re.compile(r"\d"))).to_have_count(0)

    # 张伟 finds the claims still waiting for him as cards, and approves 王芳's with a click.
    await page.locator('.member[data-userid="zhangwei"]').click()
    messages = page.locator("#messages")
    waiting = messages.locator(".card", has=page.get_by_role("button", name="通过"))
    await expect(waiting.first).to_be_visible()
    assert await waiting.count() >= 2
    title = await waiting.filter(has_text="王芳（第一党支部）").last.locator(".card-title").inner_text()
    card = messages.locator(".card", has=page.locator(".card-title", has_text=re.compile(f"^{title}$")))
    await card.get_by_role("button", name="通过").click()
    await expect(card.locator(".card-done")).to_have_text(re.compile(r"^已通过 · 张伟 \d\d-\d\d \d\d:\d\d$"))

    # 排行: weeks of standings, with the moves against last quarter.
    box = page.locator("#input")
    await box.fill("排行")
    await box.press("Enter")
    ranking = messages.locator(".msg.bot .bubble", has_text="个人积分排行")
    await expect(ranking).to_contain_text("↑")
    await expect(ranking).to_contain_text(re.compile(r"^1\. ", re.M))

    # The job list shows what each job does; running the weekly ranking posts last week's to the group.
    jobs = page.locator("#jobs")
    await jobs.locator("summary").click()
    weekly = jobs.locator(".job-row", has_text="ranking_weekly")
    await expect(weekly.locator(".job-desc")).to_have_text(re.compile(r"^每周一 08:47，上周个人积分排行"))
    await weekly.get_by_role("button").click()
    posts = page.locator(".robot:not(.job)", has_text="制丝车间群")
    await expect(posts.filter(has_text="个人积分排行")).to_have_count(1)
    await expect(posts.locator("img")).to_have_count(1)  # the ranking's bar chart follows the markdown
    await jobs.locator("summary").click()  # closed again: the group pane shows the post
    await messages.locator(".msg.bot .bubble").last.scroll_into_view_if_needed()
    if os.environ.get("PIONEER_SCREENSHOT") == "1":
        await page.screenshot(path=str(SCREENSHOT))
    assert errors == []
