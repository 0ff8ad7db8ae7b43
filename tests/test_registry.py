"""The item-kind registry: a kind that no shipped practice knows — a leave request, written here the
way a practice module would write it — is listed, carded, decided, voided, digested and exported by
the generic approval flow, with its own words and its own effect, and nothing in bot/ or in the
approval commands names a kind."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Sender
from bot.router import Router
from handlers import build_router, items
from handlers.items import KINDS, ItemKind
from handlers.ledger import Booked
from handlers.people import sender_person
from storage import items as item_store
from storage.items import Item
from storage.models import AuditLog
from tests.kit import BotKit
from tests.test_points import cards

ROOT = Path(__file__).resolve().parent.parent


class LeaveKind(ItemKind):
    """请假: decided by the branch secretary with its own button words; approving writes an audit line."""

    name = "请假"
    noun = "申请"
    source = "先锋 · 请假"
    approve_label = "准假"
    reject_label = "不准"
    takes_evidence = False
    decider_roles: ClassVar[frozenset[str]] = frozenset({"secretary", "committee"})

    def value(self, session: Session, item: Item) -> str:
        return "半天"

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        return [("时长", "半天")]

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        ctx.session.execute(
            insert(AuditLog).values(at=ctx.now, actor=approver.userid, action="leave", subject=f"#{item.id}")
        )
        return []


leave = Router("leave")


@leave.command("请假条", code="leave_note")
def leave_note(ctx: Context, member: Sender, args: str) -> str:
    """请半天假（测试用的新事项种类）。"""
    item_id = item_store.new_item(
        ctx.session,
        "请假",
        ctx.now,
        member_id=member.id,
        submitted_by=member.id,
        branch_id=member.branch_id,
        title=args or "请假",
    )
    item = Item(
        id=item_id, kind="请假", member_id=member.id, branch_id=member.branch_id, title=args or "请假"
    )
    approvers = items.submit(ctx, item, sender_person(member))
    return f"已提交请假 #{item_id}。{items.waiting_for(approvers)}"


@pytest.fixture
def leave_kind() -> Iterator[ItemKind]:
    kind = LeaveKind().register()
    yield kind
    KINDS.pop(kind.name)


@pytest.fixture
async def lbot(make_bot: Any, leave_kind: ItemKind) -> AsyncIterator[BotKit]:
    root = build_router()
    root.include_router(leave)
    yield await make_bot(router=root)


def number(reply: str) -> int:
    found = re.search(r"#(\d+)", reply)
    assert found, reply
    return int(found.group(1))


async def test_a_new_kind_reaches_its_approver_as_a_card_in_its_own_words(lbot: BotKit):
    n = number(await lbot.say("wangfang", "请假条 孩子家长会"))
    await lbot.drain()
    [card] = cards(lbot, "zhangwei")
    assert card["main_title"] == {"title": f"请假申请 #{n}", "desc": "孩子家长会"}
    assert card["source"]["desc"] == "先锋 · 请假"
    assert [(b["text"], b["key"]) for b in card["button_list"]] == [
        ("准假", f"approve:{n}"),
        ("不准", f"reject:{n}"),
    ]
    facts = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
    assert facts == {"提交人": "王芳（第一党支部）", "时长": "半天"}  # no evidence line: it takes none
    listing = await lbot.say("zhangwei", "待审")
    assert f"#{n}" in listing and "王芳 请假 孩子家长会 半天" in listing
    assert f"#{n} 孩子家长会 半天" in await lbot.say("wangfang", "我的")


async def test_approving_a_new_kind_runs_its_effect_once_and_tells_the_owner(lbot: BotKit):
    n = number(await lbot.say("wangfang", "请假条 孩子家长会"))
    await lbot.drain()
    [card] = cards(lbot, "zhangwei")
    passive = await lbot.click("zhangwei", f"approve:{n}", task_id=card["task_id"])
    assert passive is not None and passive.replace_button.startswith("已通过 · 张伟")
    again = await lbot.say("zhangwei", f"通过 #{n}")
    assert f"#{n} 已通过（张伟" in again
    audit = await lbot.query(
        lambda s: s.execute(select(AuditLog.actor, AuditLog.subject).where(AuditLog.action == "leave")).all()
    )
    assert audit == [("zhangwei", f"#{n}")]  # the kind's own effect, once
    await lbot.drain()
    assert any(f"你的请假申请 #{n}（孩子家长会）已由 张伟 审核通过" in t for t in lbot.texts_to("wangfang"))


async def test_a_new_kind_refuses_its_owner_and_other_branches_and_takes_no_photos(lbot: BotKit):
    n = number(await lbot.say("wangfang", "请假条 孩子家长会"))
    assert "支部书记、党总支使用" in await lbot.say("wangfang", f"通过 #{n}")  # not a decider at all
    assert "只能由该支部书记或党总支处理" in await lbot.say("wuhao", f"驳回 #{n} 不行")
    assert "已附到" not in await lbot.image("wangfang")  # takes_evidence = False
    rejected = await lbot.say("zhangwei", f"驳回 #{n} 那天车间检修，请换一天")
    assert f"已驳回 #{n}" in rejected
    await lbot.drain()
    told = [t for t in lbot.texts_to("wangfang") if f"#{n}" in t]
    assert told and "被 张伟 驳回。理由：那天车间检修，请换一天" in told[-1]
    assert await lbot.query(lambda s: s.get(Item, n).status) == "rejected"


async def test_the_digest_and_the_export_include_a_new_kind(lbot: BotKit):
    n = number(await lbot.say("wangfang", "请假条 孩子家长会"))
    await lbot.app.scheduler.run_now("pending_digest")
    await lbot.drain()
    assert any("待审提醒：有 1 项" in t and f"#{n}" in t for t in lbot.texts_to("zhangwei"))
    from handlers.export import build_workbook
    from handlers.periods import period_of

    today = datetime.now(lbot.app.config.tz).date()

    def workbook(s: Session) -> bytes:
        return build_workbook(s, lbot.app.config, period_of("quarter", today))

    wb = load_workbook(io.BytesIO(await lbot.query(workbook)))
    rows = list(wb["待审与驳回"].iter_rows(values_only=True))
    assert (f"#{n}", "待审", "请假", "王芳") == rows[1][:4] and "半天" in rows[1]


def test_a_kind_is_registered_once(leave_kind: ItemKind):
    with pytest.raises(ValueError, match="registered twice"):
        LeaveKind().register()


def test_no_kind_is_named_outside_its_practice():
    """The generic flow and the runtime never branch on a kind: only practice modules name theirs."""
    generic = [
        ROOT / "handlers" / "approvals.py",
        ROOT / "handlers" / "items.py",
        *(ROOT / "bot").rglob("*.py"),
    ]
    for path in generic:
        text = path.read_text(encoding="utf-8")
        for word in ('"尽责"', '"创新"', '"加分"'):
            assert word not in text, f"{path.relative_to(ROOT)} names {word}"
        assert not re.search(r"\b(item|sub|x)\.kind\s*(==|!=|in\b)", text), (
            f"{path.relative_to(ROOT)} branches on a kind"
        )


def test_no_handler_speaks_wecom():
    """Handlers answer with value objects; WeCom's JSON and markdown tags are rendered in bot/."""
    for path in (ROOT / "handlers").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("template_card", "msgtype", "<font"):
            assert word not in text, f"{path.relative_to(ROOT)} mentions {word}"
