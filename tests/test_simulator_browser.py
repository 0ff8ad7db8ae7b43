"""The simulator page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

Skipped where Chromium is missing, except in CI (env `CI` set), where it fails instead. With
`PIONEER_SCREENSHOT=1` the desktop scenario saves the README's screenshot to `docs/simulator.png`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kit import ROOT
from tests.simkit import LocalKit, demo_router, start_local, stop_local

CHROMIUM = Path(os.environ.get("PIONEER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = ROOT / "docs" / "simulator.png"
FORM = ("尽责 A01 攻坚克难", "说明：带班组完成切丝机换型，提前两小时复产")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        reason = (f"Chromium not found at {CHROMIUM}: the browser test needs Debian's chromium "
                  "(apt-get install chromium fonts-noto-cjk) or PIONEER_CHROMIUM=/path/to/chromium")
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
    kit = await start_local(database_url, http, router=demo_router())
    yield kit
    await stop_local(kit)


async def test_a_member_asks_for_help_submits_a_form_and_the_approver_decides(local: LocalKit, browser: Any) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 1360, "height": 860}, locale="zh-CN", timezone_id="Asia/Shanghai")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(local.page)
    await expect(page.locator("#conn")).to_have_text("已连接")

    # 王芳 asks for help.
    await page.locator('.member[data-userid="wangfang"]').click()
    await expect(page.locator(".chat-head")).to_contain_text("王芳")
    box = page.locator("#input")
    await box.fill("帮助")
    await box.press("Enter")
    messages = page.locator("#messages")
    await expect(messages.locator(".msg.me .bubble").last).to_have_text("帮助")
    await expect(messages.locator(".msg.bot .bubble").last).to_contain_text("王芳，你可以用这些命令")

    # A two-line form: Shift+Enter makes the new line, Enter sends.
    await box.fill(FORM[0])
    await box.press("Shift+Enter")
    await page.keyboard.insert_text(FORM[1])
    await expect(box).to_have_value("\n".join(FORM))
    await box.press("Enter")
    await expect(messages.locator(".msg.me .bubble").last).to_have_text("\n".join(FORM))
    await expect(messages.locator(".msg.bot .bubble").last).to_contain_text("已提交 #1")

    # 张伟, the approver, finds the card and clicks 通过; the card shows the decision.
    await page.locator('.member[data-userid="zhangwei"]').click()
    card = messages.locator(".card", has_text="尽责申报 #1")
    await expect(card).to_contain_text("带班组完成切丝机换型")
    await card.get_by_role("button", name="通过").click()
    await expect(card.locator(".card-done")).to_have_text("已通过 · 张伟")
    await expect(card.get_by_role("button")).to_have_count(0)
    await expect(messages).to_contain_text("#1 已通过，已通知申报人。")
    await expect(page.locator("#webhooks")).to_contain_text("尽责公示")
    await expect(page.locator("#webhooks .md-info")).to_have_text("已通过")  # markdown rendered, not shown raw

    # Back to 王芳: her conversation is as she left it, with the decision added; a reload keeps it all.
    for step in ("switch", "reload"):
        if step == "reload":
            await page.reload()
        else:
            await page.locator('.member[data-userid="wangfang"]').click()
        await expect(messages.locator(".msg.me .bubble")).to_have_count(2)
        await expect(messages.locator(".card", has_text="你的申报 #1 已通过")).to_be_visible()
    if os.environ.get("PIONEER_SCREENSHOT") == "1":
        await page.screenshot(path=str(SCREENSHOT))
    assert errors == []


async def test_on_a_phone_the_panes_become_tabs(local: LocalKit, browser: Any) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 390, "height": 800}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="zh-CN")
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
