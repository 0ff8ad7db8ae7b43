""" "1+1+N" publicity through encrypted callbacks: 投稿, the module lead's card, 录用 at a channel (and
higher later), 退回 and revision, 不录用, quotas, the reminder and the monthly report, every refusal
recording nothing.

The cast: 王芳 (correspondent) and 孙丽 (module lead) are in 工艺质量; 徐明 (correspondent) and 郭琳
(module lead) in 设备管理; 李强 is the committee.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from handlers.periods import period_of
from storage.publicity import Article, ArticlePublication
from tests.kit import BotKit, item_status, ledger
from tests.test_points import cards, item_number, member_id, total

ARTICLE = (
    "投稿\n标题：叶丝干燥工序水分稳定性攻关见成效\n"
    "内容：本月工艺质量模块围绕叶丝干燥出口水分开展攻关，标准偏差由0.21降到0.15。"
)


async def submit(bot: BotKit, userid: str = "wangfang", extra: str = "") -> int:
    reply = await bot.say(userid, ARTICLE + (f"\n{extra}" if extra else ""))
    assert "已提交稿件" in reply, reply
    return item_number(reply)


async def article(bot: BotKit, number: int) -> Article:
    def read(s: Any) -> Article:
        row = s.get(Article, number)
        s.expunge(row)
        return row

    return await bot.query(read)


async def test_an_article_reaches_the_module_lead_as_a_card_with_accept_and_send_back(bot: BotKit):
    number = await submit(bot, extra="作者：陈静")
    await bot.drain()
    card = cards(bot, "sunli")[-1]
    body = str(card)
    assert f"稿件 #{number}" in body and "叶丝干燥工序水分稳定性攻关见成效" in body
    assert "王芳、陈静" in body and "附件" in body and "标准偏差" in body
    keys = [b["key"] for b in card["button_list"]]
    assert keys == [f"accept:{number}", f"send_back:{number}"]
    assert not cards(bot, "guolin")  # another module's lead is not asked
    assert await item_status(bot, number) == ("pending", "")


async def test_accepting_books_the_channel_split_between_authors_and_a_higher_channel_pays_the_difference(
    bot: BotKit,
):
    number = await submit(bot, extra="作者：陈静")
    reply = await bot.say("sunli", f"录用 #{number} 厂内")
    assert f"已录用 #{number}" in reply, reply
    # 厂内 2 points split equally (1 each) plus 0.5 for the submission, split (0.25 each).
    assert await total(bot, "wangfang") == 125 and await total(bot, "chenjing") == 125
    reply = await bot.say("sunli", f"录用 #{number} 广西中烟")
    assert "补差额" in reply and "王芳 +1 分" in reply, reply
    assert await total(bot, "wangfang") == 225 and await total(bot, "chenjing") == 225
    reply = await bot.say("sunli", f"录用 #{number} 车间")
    assert "不再加分" in reply, reply
    assert await total(bot, "wangfang") == 225
    row = await article(bot, number)
    assert (row.best_channel, row.best_points_x100) == ("company", 400)
    channels = await bot.query(
        lambda s: list(
            s.execute(select(ArticlePublication.channel).order_by(ArticlePublication.id)).scalars()
        )
    )
    assert channels == ["factory", "company", "workshop"]
    await bot.drain()
    posts = [p.body["content"] for p in bot.fake.webhooks("制丝车间群")]
    assert len(posts) == 2 and "叶丝干燥" in posts[0] and "广西中烟" in posts[1], posts  # not the lower one


async def test_a_card_click_accepts_at_the_default_channel(bot: BotKit):
    number = await submit(bot)
    reply = await bot.click("sunli", f"accept:{number}")
    assert reply is not None
    assert await item_status(bot, number) == ("approved", "sunli")
    assert await total(bot, "wangfang") == 150  # 车间内 1 + submission 0.5


async def test_nobody_decides_their_own_article_and_only_the_module_lead_or_committee_decides(bot: BotKit):
    number = await submit(bot, "sunli", extra="作者：王芳")  # the lead writes; the committee decides
    before = await ledger(bot)
    reply = await bot.say("sunli", f"录用 #{number}")
    assert "自己" in reply, reply
    reply = await bot.say("guolin", f"录用 #{number}")
    assert "工艺质量" in reply and "只能由该模块的管理骨干或党总支处理" in reply, reply
    reply = await bot.say("wangfang", f"录用 #{number}")
    assert "仅限" in reply, reply
    assert await ledger(bot) == before
    assert await item_status(bot, number) == ("pending", "")
    await bot.drain()
    assert cards(bot, "liqiang"), "the committee gets the card when the only lead is an author"
    assert "已录用" in await bot.say("liqiang", f"录用 #{number}")


async def test_send_back_then_revise_then_accept_keeps_the_revision_count(bot: BotKit):
    number = await submit(bot)
    reply = await bot.say("sunli", f"退回 #{number} 数据请核对后补充现场照片")
    assert "已退回" in reply, reply
    await bot.drain()
    assert any("数据请核对" in t and f"投稿 #{number}" in t for t in bot.texts_to("wangfang"))
    assert await item_status(bot, number) == ("rejected", "sunli")
    reply = await bot.say(
        "wangfang", f"投稿 #{number}\n内容：修改后：叶丝干燥出口水分标准偏差由0.21降到0.15，附现场照片。"
    )
    assert "已重新提交" in reply and "第 1 次修改" in reply, reply
    assert await item_status(bot, number) == ("pending", "")
    row = await article(bot, number)
    assert row.revisions == 1 and row.content.startswith("修改后")
    await bot.drain()
    assert "第 1 次修改" in str(cards(bot, "sunli")[-1])
    assert "已录用" in await bot.say("sunli", f"录用 #{number}")


async def test_a_revision_is_refused_while_pending_for_others_and_after_closing(bot: BotKit):
    number = await submit(bot)
    before = await ledger(bot)
    assert "还在审核中" in await bot.say(
        "wangfang", f"投稿 #{number}\n内容：再改一遍的正文内容，不少于十个字。"
    )
    assert "不是你的稿件" in await bot.say("xuming", f"投稿 #{number}\n内容：别人的稿件我来改一改看看。")
    assert await ledger(bot) == before
    reply = await bot.say("sunli", f"不录用 #{number} 与上月稿件内容重复")
    assert "不录用" in reply, reply
    assert await item_status(bot, number) == ("rejected", "sunli")
    assert await total(bot, "wangfang") == 50  # the submission points, accepted or not
    after = await ledger(bot)
    assert "不能再修改" in await bot.say("wangfang", f"投稿 #{number}\n内容：关闭以后再改一遍的正文。")
    assert "不录用" in await bot.say("sunli", f"录用 #{number}")
    assert await ledger(bot) == after


async def test_unknown_module_and_channel_get_a_did_you_mean_and_record_nothing(bot: BotKit):
    before = await ledger(bot)
    reply = await bot.say("wangfang", ARTICLE + "\n模块：工艺志量")
    assert "没有「工艺志量」这个模块" in reply and "工艺质量" in reply, reply
    await bot.say("wangfang", "取消")
    assert await ledger(bot) == before
    number = await submit(bot)
    before = await ledger(bot)
    reply = await bot.say("sunli", f"录用 #{number} 厂网占")
    assert "没有「厂网占」这个渠道" in reply and "厂内" in reply, reply
    assert await ledger(bot) == before
    assert await item_status(bot, number) == ("pending", "")


async def test_only_correspondents_and_leads_submit_and_a_missing_field_is_asked_for(bot: BotKit):
    before = await ledger(bot)
    assert "仅限" in await bot.say("liuyang", ARTICLE)
    reply = await bot.say("wangfang", "投稿\n标题：设备点检新做法")
    assert "「内容」" in reply and "链接" in reply, reply
    reply = await bot.say("wangfang", "链接：https://mp.weixin.qq.com/s/abc")
    assert "已提交稿件" in reply, reply
    assert (await ledger(bot)).items == before.items + 1


async def test_stats_show_this_month_against_quota_for_leads_and_committee(bot: BotKit):
    number = await submit(bot)
    await bot.say("sunli", f"录用 #{number}")
    reply = await bot.say("sunli", "投稿 统计")
    assert "工艺质量：投稿 1，录用 1/2，还差 1 篇" in reply, reply
    assert "精益创新：投稿 0，录用 0/1" in reply, reply
    assert reply == await bot.say("sunli", "宣传")
    assert "仅限" in await bot.say("wangfang", "投稿 统计")


async def test_a_correspondents_profile_counts_the_modules_articles_accepted_this_month(bot: BotKit):
    assert "工艺质量模块本月录用 0/2" in await bot.say("wangfang", "我的")
    first, second = await submit(bot), await submit(bot)
    await bot.say("sunli", f"录用 #{first}")
    await bot.say("sunli", f"录用 #{first} 厂内")  # a higher channel later: still one article
    assert "工艺质量模块本月录用 1/2" in await bot.say("wangfang", "我的")
    await bot.say("sunli", f"录用 #{second}")
    assert "工艺质量模块本月录用 2/2" in await bot.say("wangfang", "我的")
    assert "设备管理模块本月录用 0/" in await bot.say("xuming", "我的")  # another module's count


async def test_the_reminder_names_what_is_missing_and_the_report_goes_to_the_committee(bot: BotKit):
    number = await submit(bot, "xuming")
    await bot.say("guolin", f"录用 #{number}")
    await bot.say("guolin", f"录用 #{number} 行业媒体")
    now = datetime.now(bot.app.config.tz)
    result = (await bot.app.scheduler.run("publicity_quota_reminder", now)).detail
    assert "工艺质量差 2 篇" in result and "设备管理差 1 篇" in result, result
    await bot.drain()
    assert any("「工艺质量」模块已录用 0 篇，定额 2 篇，还差 2 篇" in t for t in bot.texts_to("wangfang"))
    assert any("还差 2 篇" in t for t in bot.texts_to("sunli"))
    assert any("「设备管理」模块已录用 1 篇" in t for t in bot.texts_to("xuming"))
    next_month = period_of("month", now.date()).end
    fired = datetime.combine(next_month, datetime.min.time(), bot.app.config.tz) + timedelta(hours=8)
    result = (await bot.app.scheduler.run("publicity_monthly_report", fired)).detail
    assert "0/6 个模块完成定额" in result, result
    await bot.drain()
    report = [m.body for m in bot.sent_to("liqiang", "markdown")][-1]["content"]
    assert "设备管理：投稿 1，录用 1/2（行业媒体 1），积分 8.5" in report, report


async def test_a_photo_after_submitting_attaches_to_the_article(bot: BotKit):
    number = await submit(bot)
    reply = await bot.image("wangfang")
    assert f"已附到 #{number}" in reply, reply


async def test_a_pdf_after_submitting_attaches_to_the_article_and_its_bytes_are_kept(bot: BotKit):
    from handlers.people import person
    from handlers.publicity import ARTICLE as KIND
    from storage.items import Item
    from storage.models import MediaFile

    number = await submit(bot)
    assert await bot.image("wangfang") == f"已附到 #{number}（共 1 个附件）。"
    reply = await bot.file("wangfang", filename="干燥工序攻关材料.pdf", data=b"%PDF-1.4 report")
    assert reply == f"已附到 #{number}（共 2 个附件）。", reply
    await bot.drain()
    kept = await bot.query(
        lambda s: s.execute(
            select(MediaFile.filename, MediaFile.data, MediaFile.status)
            .where(MediaFile.ref == f"item:{number}")
            .order_by(MediaFile.id)
        ).all()
    )
    assert [tuple(k) for k in kept][1] == ("干燥工序攻关材料.pdf", b"%PDF-1.4 report", "fetched")
    listing = await bot.say("sunli", "待审")
    assert f"#{number}" in listing and "附件 2" in listing, listing

    def card_facts(s: Any) -> dict[str, str]:
        item = s.get(Item, number)
        owner = person(s, item.member_id)
        return dict(KIND.card(s, bot.app.config, item, owner).facts)

    assert (await bot.query(card_facts))["附件"] == "2 个"


async def test_a_file_with_nothing_to_attach_to_gets_told_what_to_do(bot: BotKit):
    from storage.models import MediaFile

    before = await ledger(bot)
    reply = await bot.file("wangfang")
    assert reply.startswith("文件已收到") and "请先发送申报或投稿" in reply, reply
    assert await ledger(bot) == before
    assert await bot.query(lambda s: s.execute(select(MediaFile)).all()) == []


async def test_voiding_an_accepted_article_reverses_its_points(bot: BotKit):
    number = await submit(bot)
    await bot.say("sunli", f"录用 #{number} 厂内")
    assert await total(bot, "wangfang") == 250
    reply = await bot.say("sunli", f"撤销 #{number} 与他人稿件重复")
    assert "已作废" in reply, reply
    assert await total(bot, "wangfang") == 0
    mid = await member_id(bot, "wangfang")
    lines = await bot.query(
        lambda s: s.execute(
            text("SELECT count(*) FROM point_entries WHERE member_id = :m"), {"m": mid}
        ).scalar_one()
    )
    assert lines == 4  # two bookings and their two reversals


async def test_branch_publicity_counts_accepted_articles_against_the_correspondents_quota(bot: BotKit):
    from storage.people import branch_id
    from storage.publicity import branch_publicity

    number = await submit(bot)  # 王芳, 第一党支部
    await bot.say("sunli", f"录用 #{number}")
    await bot.say("sunli", f"录用 #{number} 厂内")  # still one article
    voided = await submit(bot)
    await bot.say("sunli", f"录用 #{voided}")
    await bot.say("sunli", f"撤销 #{voided} 重复")
    tz = bot.app.config.tz
    quarter_ = period_of("quarter", datetime.now(tz).date())
    lo, hi = quarter_.bounds(tz)
    quotas = {"工艺质量": 2, "设备管理": 2}
    figures = await bot.query(lambda s: branch_publicity(s, lo, hi, 3, quotas))
    first = await bot.query(lambda s: branch_id(s, "第一党支部"))
    second = await bot.query(lambda s: branch_id(s, "第二党支部"))
    # 王芳 is 工艺质量's only correspondent (2 a month × 3), 徐明 设备管理's.
    assert (figures[first].accepted, figures[first].quota) == (1, 6.0)
    assert (figures[second].accepted, figures[second].quota) == (0, 6.0)


async def test_a_module_may_have_its_own_default_channel(make_bot):  # type: ignore[no-untyped-def]
    from tests.kit import shipped_config

    modules = shipped_config()["publicity"]["modules"]
    for m in modules:
        if m["name"] == "工艺质量":
            m["default_channel"] = "厂内"
    bot = await make_bot(publicity={"modules": modules})
    number = await submit(bot)
    await bot.click("sunli", f"accept:{number}")
    assert (await article(bot, number)).best_channel == "factory"
    assert await total(bot, "wangfang") == 250
