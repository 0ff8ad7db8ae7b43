"""Local mode in tests: the bot with its built-in simulator on a free port, driven through `/sim/api`.

`start_local` goes the way `serve` does without credentials (local config, demo cast, simulator
mounted), so what the page does in a browser can be checked with plain HTTP here. Without a `router`
the bot runs its shipped handlers, as the browser test does. `demo_router` is a small, fixed approval
flow (a form, a card to the approver, a decision, a group post, a file) that the page-API tests in
`test_simulator.py` use, so they do not depend on the points rules.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.app import Application
from bot.config import Config, parse_config
from bot.context import Context, Sender
from bot.forms import Field, Form
from bot.replies import Button, Card, File, HandlerResult, Markdown, ReplaceButton, Text, tone
from bot.router import Router
from bot.scheduler import JobFunc
from bot.simulator.local import local_config, open_simulator
from bot.simulator.page import Simulator
from tests.kit import merge, shipped_config

APPROVER = "zhangwei"  # 张伟, secretary of 第一党支部 in the demo cast


def local_test_config(database_url: str, **overrides: Any) -> Config:
    """The shipped config without WeCom credentials, on a free port, turned to local mode."""
    raw = merge(
        shipped_config(),
        {
            "wecom": {"corp_id": "", "secret": ""},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": database_url},
            "outbox": {
                "poll_seconds": 0.05,
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                "lease_seconds": 2,
            },
        },
    )
    config = parse_config(merge(raw, overrides), env={})
    assert not config.wecom.configured
    return local_config(config)


@dataclass
class LocalKit:
    app: Application
    sim: Simulator
    http: aiohttp.ClientSession

    @property
    def page(self) -> str:
        return self.sim.page_url

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.page + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def say(self, userid: str, text: str) -> str:
        status, answer = await self.post("api/say", {"userid": userid, "text": text})
        assert status == 200 and answer["status"] == 200, answer
        return answer["reply"]["text"] if answer["reply"] else ""

    async def events(self, last_event_id: str = "") -> AsyncGenerator[dict[str, Any], None]:
        """The page's event stream, parsed; the `hello` first."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        async with self.http.get(self.page + "api/events", headers=headers) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            data: list[str] = []
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    data.append(line[6:])
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []


async def start_local(
    database_url: str,
    http: aiohttp.ClientSession,
    *,
    router: Router | None = None,
    jobs: dict[str, JobFunc] | None = None,
    history: bool = False,
    **overrides: Any,
) -> LocalKit:
    """Local mode as `serve` starts it; without the demo history unless `history` (tests count items)."""
    app = Application(local_test_config(database_url, **overrides), router=router, jobs=jobs)
    await app.initialize()
    sim = await open_simulator(app, history=history)
    await app.start()
    return LocalKit(app, sim, http)


async def stop_local(kit: LocalKit) -> None:
    await kit.app.stop()
    await kit.app.shutdown()


async def next_event(
    stream: AsyncIterator[dict[str, Any]], kind: str, timeout: float = 5.0, **match: Any
) -> dict[str, Any]:
    """The next event of `kind` whose fields equal `match` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} event with {match}"
        event = await asyncio.wait_for(stream.__anext__(), remaining)
        if event["kind"] == kind and all(event.get(k) == v for k, v in match.items()):
            return event


# -- a stand-in approval flow ---------------------------------------------------------------------------


class ClaimForm(Form):
    indicator = Field("指标", "A01 攻坚克难", positional=True, rest=True)
    note = Field("说明", "带班组完成切丝机换型，提前两小时复产")


def demo_router() -> Router:
    """帮助/我的, plus 尽责 (a form → #N and a card to the approver), 通过/驳回 #N and 导出 (a file)."""
    from handlers import basics

    router = Router("simulator-demo")
    router.include_router(basics.router)
    items: dict[int, tuple[str, str]] = {}  # number → (submitter, indicator)
    numbers = itertools.count(1)

    @router.command("尽责", code="claim", form=ClaimForm)
    def claim(ctx: Context, member: Sender, form: ClaimForm) -> HandlerResult:
        """申报一项尽责指标，支部书记审核后计分。"""
        n = next(numbers)
        items[n] = (member.userid, str(form.indicator))
        card = Card(
            title=f"尽责申报 #{n}",
            subtitle=f"{member.name} · {member.branch} {member.team}",
            source="先锋 · 我的岗位我尽责",
            facts=(("指标", str(form.indicator)), ("说明", form.note), ("日期", f"{ctx.now:%Y-%m-%d}")),
            buttons=(Button("驳回", "reject", str(n), primary=False), Button("通过", "approve", str(n))),
            ref=f"claim:{n}",
        )
        ctx.send(APPROVER, card)
        return f"已提交 #{n}：{form.indicator}\n等待支部书记审核，审核结果会通知你。"

    def number(args: str) -> int | None:
        word = args.replace("＃", "#").lstrip("#").split(" ")[0]
        return int(word) if word.isdigit() and int(word) in items else None

    @router.command("通过", code="approve", roles={"secretary"})
    def approve(ctx: Context, member: Sender, args: str) -> HandlerResult:
        """通过一项申报：通过 #N。"""
        n = number(args)
        if n is None:
            return "没有这个编号的申报。例：通过 #1"
        submitter, indicator = items[n]
        label = f"已通过 · {member.name}"
        ctx.update_cards(f"claim:{n}", label)
        ctx.send(
            submitter,
            Markdown(f"**你的申报 #{n} 已通过**\n指标：{indicator}\n审核人：{member.name}（支部书记）"),
        )
        ctx.broadcast(
            "第一支部群",
            f"### 尽责公示\n**#{n}** {indicator}\n{tone('已通过', 'info')} · 审核：{member.name}",
        )
        return [ReplaceButton(label), Text(f"#{n} 已通过，已通知申报人。")]

    @router.command("驳回", code="reject", roles={"secretary"})
    def reject(ctx: Context, member: Sender, args: str) -> HandlerResult:
        """驳回一项申报：驳回 #N 理由。"""
        n = number(args)
        if n is None:
            return "没有这个编号的申报。例：驳回 #1 证明材料不全"
        return f"请写明驳回理由：驳回 #{n} 理由"

    @router.command("导出", code="export")
    def export(ctx: Context) -> HandlerResult:
        """导出本季度积分表（.xlsx 文件）。"""
        ctx.send(ctx.userid, File("本季度积分.xlsx", bytes(range(256)) * 800))
        return "正在生成，文件稍后发给你。"

    return router
