"""A dialogue does not swallow commands: 张伟 (secretary of 第一党支部) rejects 王芳's 尽责 claim, and
what he types while the bot waits for the 理由 is read as a command when it is one, and as the
理由 when it only begins with a command word. 王芳 is told the reason exactly as he meant it."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.forms import FieldError
from bot.router import Router
from handlers import build_router
from storage.items import Item
from storage.models import Dialogue
from tests.conftest import MakeBot
from tests.kit import BotKit


async def claim(
    bot: BotKit, userid: str = "wangfang", text: str = "尽责\n指标：A01\n说明：参加切丝机停产技改突击队"
) -> int:
    reply = await bot.say(userid, text)
    m = re.search(r"已提交尽责申报 #(\d+)", reply)
    assert m, reply
    return int(m.group(1))


async def status_and_reason(bot: BotKit, number: int) -> tuple[str, str | None]:
    item = await bot.query(lambda s: s.get(Item, number))
    return item.status, item.reason


async def told(bot: BotKit, userid: str = "wangfang") -> list[str]:
    await bot.drain()
    return [t for t in bot.texts_to(userid) if "驳回" in t]


async def dialogue_of(bot: BotKit, userid: str) -> Dialogue | None:
    return await bot.query(lambda s: s.execute(select(Dialogue).where(Dialogue.userid == userid)).scalar())


async def test_the_prompt_names_the_item(bot: BotKit) -> None:
    n = await claim(bot)
    asked = await bot.say("zhangwei", f"驳回 #{n}")
    assert asked.startswith(f"驳回 #{n}：请输入「理由」")
    # From the card's button the number comes bare, and still reads as #n.
    passive = await bot.click("zhangwei", f"reject:{n}")
    assert passive is not None and passive.text.startswith(f"驳回 #{n}：请输入「理由」")
    # The number given in answer to a question is named in the next one.
    assert "请输入「编号」" in await bot.say("zhangwei", "驳回")
    assert (await bot.say("zhangwei", f"＃{n}")).startswith(f"驳回 #{n}：请输入「理由」")


async def test_the_command_in_progress_typed_again_in_full_is_that_command(bot: BotKit) -> None:
    n = await claim(bot)
    await bot.say("zhangwei", f"驳回 #{n}")
    reply = await bot.say("zhangwei", f"驳回 #{n} 缺少活动照片，请补充后重新申报")
    assert reply.startswith(f"已驳回 #{n}")
    assert await status_and_reason(bot, n) == ("rejected", "缺少活动照片，请补充后重新申报")
    [notice] = await told(bot)
    assert "理由：缺少活动照片，请补充后重新申报\n" in notice
    assert await dialogue_of(bot, "zhangwei") is None


async def test_typed_again_glued_or_after_a_card_click_it_is_still_the_command(bot: BotKit) -> None:
    n = await claim(bot)
    await bot.click("zhangwei", f"reject:{n}")
    reply = await bot.say("zhangwei", f"驳回#{n} 照片看不清")
    assert reply.startswith(f"已驳回 #{n}")
    assert await status_and_reason(bot, n) == ("rejected", "照片看不清")
    assert "理由：照片看不清\n" in (await told(bot))[0]


async def test_another_command_with_its_input_ends_the_dialogue_and_runs(bot: BotKit) -> None:
    n = await claim(bot)
    await bot.say("zhangwei", f"驳回 #{n}")
    # 张伟 turns to his own 尽责 claim instead, in one line (指标 and 说明 in order)…
    own = await bot.say("zhangwei", "尽责 A04 国庆节假日保产顶岗")
    assert "已提交尽责申报" in own
    assert await dialogue_of(bot, "zhangwei") is None
    # …so what he types next is not taken as the 理由 for #n.
    assert "没有「照片不清楚」这个命令" in await bot.say("zhangwei", "照片不清楚")
    assert await status_and_reason(bot, n) == ("pending", "")
    assert await told(bot) == []


async def test_another_command_written_as_a_labelled_form_ends_the_dialogue(bot: BotKit) -> None:
    n = await claim(bot)
    await bot.say("zhangwei", f"驳回 #{n}")
    own = await bot.say("zhangwei", "尽责\n指标：A04\n说明：国庆节假日保产顶岗")
    assert "已提交尽责申报" in own
    assert await status_and_reason(bot, n) == ("pending", "")


async def test_a_bare_command_word_interrupts_and_the_one_in_progress_starts_over(bot: BotKit) -> None:
    n = await claim(bot)
    await bot.say("zhangwei", f"驳回 #{n}")
    assert f"#{n}" in await bot.say("zhangwei", "待审")
    assert await dialogue_of(bot, "zhangwei") is None
    await bot.say("zhangwei", f"驳回 #{n}")
    assert "请输入「编号」" in await bot.say("zhangwei", "驳回")
    assert await status_and_reason(bot, n) == ("pending", "")


async def test_a_reason_that_merely_begins_with_a_command_word_stays_the_reason(bot: BotKit) -> None:
    first = await claim(bot)
    second = await claim(bot, "zhaolei", "尽责\n指标：A04\n说明：国庆节假日保产顶岗")
    await bot.say("zhangwei", f"驳回 #{first}")
    # 排行 is a command word; what follows is no ranking request.
    reply = await bot.say("zhangwei", "排行第一的班组也没有这样申报过")
    assert reply.startswith(f"已驳回 #{first}")
    assert await status_and_reason(bot, first) == ("rejected", "排行第一的班组也没有这样申报过")
    # 申报 is another name of 尽责; 「材料不全」 is no indicator.
    await bot.say("zhangwei", f"驳回 #{second}")
    reply = await bot.say("zhangwei", "申报材料不全，请补充现场照片")
    assert reply.startswith(f"已驳回 #{second}")
    assert await status_and_reason(bot, second) == ("rejected", "申报材料不全，请补充现场照片")
    assert "理由：排行第一的班组也没有这样申报过\n" in (await told(bot))[0]
    assert "理由：申报材料不全，请补充现场照片\n" in (await told(bot, "zhaolei"))[0]


# A command without a form recognises its input only if it declares `args`, as the shipped 通过,
# 撤销 and 排行 do; this one shows the mechanism alone beside the real handlers: 「查看 #5」.
peek = Router("peek")


def item_number(raw: str, _ctx: object) -> int:
    m = re.fullmatch(r"[#＃]\s*(\d+)", raw.strip())
    if not m:
        raise FieldError("应是一个编号")
    return int(m.group(1))


@peek.command("查看", code="peek", args=item_number)
def look(args: str) -> str:
    """查看一项申报（测试用）。"""
    return f"查看 {args}"


async def test_a_command_without_a_form_interrupts_with_input_it_declares(make_bot: MakeBot) -> None:
    router = build_router()
    router.include_router(peek)
    bot = await make_bot(router=router)
    first, second = await claim(bot), await claim(bot, "zhaolei", "尽责\n指标：A04\n说明：国庆节假日保产顶岗")
    await bot.say("zhangwei", f"驳回 #{first}")
    assert await bot.say("zhangwei", f"查看 #{second}") == f"查看 #{second}"
    assert await dialogue_of(bot, "zhangwei") is None
    await bot.say("zhangwei", f"驳回 #{first}")
    reply = await bot.say("zhangwei", "查看现场照片后发现不符")  # not 查看's input: the reason
    assert reply.startswith(f"已驳回 #{first}")
    assert await status_and_reason(bot, first) == ("rejected", "查看现场照片后发现不符")
    assert await status_and_reason(bot, second) == ("pending", "")


async def test_the_shipped_approve_typed_during_a_rejection_approves(bot: BotKit) -> None:
    first, second = await claim(bot), await claim(bot, "zhaolei", "尽责\n指标：A04\n说明：国庆节假日保产顶岗")
    await bot.say("zhangwei", f"驳回 #{first}")
    assert (await bot.say("zhangwei", f"通过 #{second}")).startswith(f"已通过 #{second}")
    assert await dialogue_of(bot, "zhangwei") is None
    assert await status_and_reason(bot, first) == ("pending", "")
    await bot.say("zhangwei", f"驳回 #{first}")
    reply = await bot.say("zhangwei", "排行第一的班组也没有这样记过")  # not 排行's words: the reason
    assert reply.startswith(f"已驳回 #{first}")
    assert await status_and_reason(bot, first) == ("rejected", "排行第一的班组也没有这样记过")
