"""导出: the .xlsx workbook sent back as a file, its sheets, and the same workbook from the CLI."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import yaml
from openpyxl import load_workbook
from openpyxl.workbook import Workbook

from bot.cli import main as cli
from handlers.periods import period_of
from tests.kit import BotKit, merge, shipped_config
from tests.test_points import add_members, approve, claim, item_number, today

SHEETS = ["汇总", "明细", "创新成果", "多能工训练表", "带教记录", "活动签到", "待审与驳回"]


async def received_workbook(bot: BotKit, userid: str) -> tuple[str, Workbook]:
    await bot.drain()
    [sent] = bot.sent_to(userid, "file")
    data, filename = bot.fake.media(sent.body["media_id"])
    assert filename is not None
    return filename, load_workbook(io.BytesIO(data))


def rows(wb: Workbook, sheet: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in wb[sheet].iter_rows(values_only=True)]


async def activity(bot: BotKit) -> dict[str, int]:
    """Approved, rejected, pending, voided and innovation items in both branches."""
    a = await claim(bot, "wangfang", "A01", "参加切丝机停产技改突击队")
    await approve(bot, "zhangwei", a)
    b = await claim(bot, "zhaolei", "A04", "节假日保产顶岗")
    await bot.say("zhangwei", f"驳回 #{b} 缺少班组长确认")
    c = await claim(bot, "chenjing", "D03", "社区志愿服务")
    d = item_number(await bot.say("zhangwei", "加分 王芳 A02 5 牵头解决烘丝机排潮故障"))
    await bot.say("zhangwei", f"撤销 #{d} 与 #{a} 重复")
    e = item_number(
        await bot.say("wangfang", "创新\n类型：QC\n名称：提高梗丝填充值\n级别：厂级\n等次：二等\n成员：赵磊")
    )
    await approve(bot, "liqiang", e)
    f = await claim(bot, "xuming", "A04", "梗丝线保产")
    await approve(bot, "wuhao", f)
    return {"approved": a, "rejected": b, "pending": c, "voided": d, "innovation": e, "other": f}


async def test_a_secretary_exports_their_branch(bot: BotKit):
    items = await activity(bot)
    quarter = period_of("quarter", today(bot))
    reply = await bot.say("zhangwei", "导出")
    assert f"{quarter.key}积分-第一党支部.xlsx" in reply
    filename, wb = await received_workbook(bot, "zhangwei")
    assert filename == f"{quarter.key}积分-第一党支部.xlsx"
    assert wb.sheetnames[: len(SHEETS)] == SHEETS  # the points sheets first; other practices follow
    for name in SHEETS:
        ws = wb[name]
        assert ws.freeze_panes == "A2"
        assert all(c.font.bold for c in ws[1])
        assert all((ws.column_dimensions[chr(65 + i)].width or 0) >= 8 for i in range(ws.max_column))
    summary = rows(wb, "汇总")
    assert summary[0][:6] == ("排名", "姓名", "账号", "支部", "班组", "政治面貌") and summary[0][-3:] == (
        "合计",
        "支部内排名",
        "创新积分",
    )
    names = [r[1] for r in summary[1:]]
    assert names[0] == "王芳" and summary[1][0] == 1 and summary[1][-3] == 3 and summary[1][-1] == 6
    assert "徐明" not in names and "刘洋" not in names  # another branch; not a party member without points
    assert {"张伟", "陈静", "赵磊"} <= set(names)
    detail = rows(wb, "明细")
    assert detail[0][:3] == ("流水号", "日期", "记账时间")
    kinds = [(r[3], r[6], r[7], r[8]) for r in detail[1:]]
    assert ("王芳", "A01", 3, "记分") in kinds and ("王芳", "A02", 5, "记分") in kinds
    assert ("王芳", "A02", -5, "冲正") in kinds
    assert all(r[4] == "第一党支部" for r in detail[1:])
    innovations = rows(wb, "创新成果")
    assert innovations[1][:6] == (f"#{items['innovation']}", "QC成果", "提高梗丝填充值", "厂级", "二等", 6)
    assert innovations[1][7] == "王芳（组长）6、赵磊（成员）3"
    open_items = rows(wb, "待审与驳回")
    assert [(r[0], r[1]) for r in open_items[1:]] == [
        (f"#{items['pending']}", "待审"),
        (f"#{items['rejected']}", "已驳回"),
    ]
    assert open_items[0][10] == "驳回理由" and open_items[2][10] == "缺少班组长确认"


async def test_the_committee_exports_every_branch(bot: BotKit):
    await activity(bot)
    reply = await bot.say("liqiang", "导出 本季度")
    assert "全部支部" in reply
    _, wb = await received_workbook(bot, "liqiang")
    names = [r[1] for r in rows(wb, "汇总")[1:]]
    assert "徐明" in names and "王芳" in names
    assert {r[4] for r in rows(wb, "明细")[1:]} == {"第一党支部", "第二党支部"}


async def test_export_refusals(bot: BotKit):
    await add_members(bot, "zhaoyun,赵云,,,,,党员,secretary")  # a secretary not yet given a branch
    await activity(bot)
    assert "仅限支部书记、党总支" in await bot.say("wangfang", "导出")
    assert "不是有效的时间段「2026Q5」" in await bot.say("zhangwei", "导出 2026Q5")
    assert "你还没有登记所在支部，无法导出本支部积分" in await bot.say("zhaoyun", "导出")
    await bot.drain()
    assert bot.fake.sent(msgtype="file") == []
    await bot.say("zhangwei", "导出")  # the check above can fail: a secretary with a branch does get one
    await bot.drain()
    assert len(bot.fake.sent(msgtype="file")) == 1


async def test_the_command_line_writes_the_same_workbook(bot: BotKit, tmp_path: Path):
    await activity(bot)
    await bot.say("zhangwei", "导出")
    _, sent = await received_workbook(bot, "zhangwei")
    config = tmp_path / "config.yaml"
    raw = merge(shipped_config(), {"database": {"url": bot.app.config.database.url}})
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out.xlsx"
    key = period_of("quarter", today(bot)).key
    code = await asyncio.to_thread(
        cli, ["--config", str(config), "export", "--period", key, "--out", str(out), "--branch", "第一党支部"]
    )
    assert code == 0
    written = load_workbook(out)
    assert written.sheetnames[: len(SHEETS)] == SHEETS
    for sheet in SHEETS:
        assert rows(written, sheet) == rows(sent, sheet)
    bad = await asyncio.to_thread(
        cli, ["--config", str(config), "export", "--period", "someday", "--out", str(out)]
    )
    assert bad == 1
