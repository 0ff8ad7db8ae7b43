"""A small router used by the spine's tests: a form command, a slow command and a counter.

It stands in for the domain handlers so that the framework is tested on its own terms.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
import uuid
from datetime import date

from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import insert, text

from bot.context import Context, Sender
from bot.forms import Field, FieldError, Form, parse_date
from bot.pictures import PictureError, renderer
from bot.replies import Button, Card, Image, Markdown, ReplaceButton, Text
from bot.router import Router
from handlers.basics import router as basics
from storage.models import AuditLog


def positive_int(raw: str, _ctx: object) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise FieldError("应是整数") from None
    if value <= 0:
        raise FieldError("应大于 0")
    return value


def past_date(raw: str, ctx: Context) -> date:
    day = parse_date(raw, ctx.now.date())
    if day > ctx.now.date():
        raise FieldError("不能晚于今天")
    return day


class RepairForm(Form):
    item = Field("事项", example="更换切丝机刀片", aliases=("内容",))
    count = Field("数量", example="3", parse=positive_int)
    day = Field("日期", example="2026-11-20", parse=past_date, required=False)


class DecideForm(Form):
    number = Field("编号", example="#12", positional=True)
    reason = Field("理由", example="缺少现场照片", positional=True, rest=True)


router = Router("spine-test")
router.include_router(basics)


@router.command("报修", code="repair", aliases=("维修",), form=RepairForm)
def repair(ctx: Context, member: Sender, form: RepairForm) -> list[Text | Card]:
    """登记一次维修（测试用）。"""
    ctx.session.execute(
        insert(AuditLog).values(
            at=ctx.now, actor=member.userid, action="repair", subject=form.item, detail=str(form.count)
        )
    )
    card = Card(title=f"报修：{form.item}", buttons=(Button("确认", "decide", "1 好的"),), ref="repair:1")
    ctx.send("zhangwei", card)
    when = f"，日期 {form.day}" if form.day else ""
    return [Text(f"已登记：{form.item} × {form.count}{when}")]


@router.command("裁定", code="decide", roles={"secretary", "committee"}, form=DecideForm)
def decide(ctx: Context, member: Sender, form: DecideForm) -> list[ReplaceButton | Text]:
    """裁定一件事（测试用，只有书记和党总支可以用）。"""
    ctx.update_cards("repair:1", f"已裁定 · {member.name}")
    return [ReplaceButton("已裁定"), Text(f"已裁定 {form.number}：{form.reason}")]


@router.command("慢", code="slow")
def slow(ctx: Context, args: str) -> str:
    """一个很慢的命令（测试用）：像一条等数据库的慢查询。"""
    seconds = float(args or "0.5")
    if ctx.session.get_bind().dialect.name == "postgresql":
        ctx.session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    else:
        time.sleep(seconds)
    ctx.session.execute(insert(AuditLog).values(at=ctx.now, actor=ctx.userid, action="slow"))
    return "慢慢地好了"


@router.command("慢读", code="slow_read", reads=True)
def slow_read(ctx: Context, args: str) -> str:
    """一个很慢的只读命令（测试用）：像一条算很久的查询（占 CPU，不是等待）。"""
    done = time.thread_time() + float(args or "0.05")
    while time.thread_time() < done:
        pass
    return "读完了"


@router.command("计数", code="count")
def count(ctx: Context, args: str) -> str:
    """记下一次（测试用），回复收到的内容。"""
    ctx.session.execute(insert(AuditLog).values(at=ctx.now, actor=ctx.userid, action="count", subject=args))
    return f"记下：{args}"


@router.command("出错", code="fail")
def fail(ctx: Context, args: str) -> str:
    """记下一次，然后出错（测试用）：它记下的内容必须随之回滚。"""
    ctx.session.execute(insert(AuditLog).values(at=ctx.now, actor=ctx.userid, action="failed", subject=args))
    raise RuntimeError("a bug in a handler")


@router.command("长文", code="long")
def long_text(ctx: Context) -> list[Text | Markdown]:
    """回复一段很长的文字（测试用）。"""
    return [Text("好的"), Text("第一行字。" * 200), Markdown("**粗体**")]


@router.command("查数", code="tally", reads=True)
def tally(ctx: Context, args: str) -> list[Text | Markdown]:
    """数一数记下了几次（测试用，只读）；「查数 记下」也记一次：只读的命令偶尔也写。"""
    n = ctx.session.execute(text("SELECT COUNT(*) FROM audit_log WHERE action = 'count'")).scalar_one()
    if args == "记下":
        ctx.session.execute(insert(AuditLog).values(at=ctx.now, actor=ctx.userid, action="tally"))
    return [Text(f"记下了 {n} 次"), Markdown(f"**{n}**")]


@renderer("spine_square")
def _square(data: dict[str, object]) -> bytes:
    """A red square; the PNG's `pid` and `nice` texts say which process drew it, at what priority, and
    its `drawing` text is new each time it is drawn."""
    buffer = io.BytesIO()
    info = PngInfo()
    info.add_text("drawing", uuid.uuid4().hex)
    info.add_text("pid", str(os.getpid()))
    info.add_text("nice", str(os.nice(0)))
    side = int(str(data["side"]))
    PILImage.new("RGB", (side, side), "#c8102e").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@renderer("spine_slow")
def _slow(data: dict[str, object]) -> bytes:
    """The square, after longer than the test kit's 2-second outbox lease."""
    time.sleep(5)
    return _square(data)


@renderer("spine_crash")
def _crash(data: dict[str, object]) -> bytes:
    """Kills the drawing process it runs in (as a segfault in a C library would); in the bot's own
    process it draws the square."""
    if multiprocessing.parent_process() is not None:
        os._exit(3)
    return _square(data)


@renderer("spine_broken")
def _broken(data: dict[str, object]) -> bytes:
    raise PictureError("没有中文字体，画不出来。")


@router.command("画图", code="draw", reads=True)
def draw(ctx: Context, args: str) -> list[Text | Image]:
    """回复一句话和一张稍后画出的图（测试用）；「画图 坏」画不出来，「画图 崩」让画图的进程崩溃，
    「画图 慢」画得比租期还久，「画图 48」画边长 48 的方块（默认 40）。"""
    if args.isdigit():
        return [Text("图随后就到"), Image.drawn("方块.png", "spine_square", {"side": int(args)})]
    name = {"坏": "spine_broken", "崩": "spine_crash", "慢": "spine_slow"}.get(args, "spine_square")
    return [Text("图随后就到"), Image.drawn("方块.png", name, {"side": 40})]
