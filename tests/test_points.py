"""尽责 claims, evidence photos, 创新 claims and direct 加分, through encrypted callbacks.

The helpers at the top are shared by the other points tests (approvals, rankings, export).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.members import MEMBER_HEADER, import_members
from handlers.periods import period_of
from storage.items import ApprovalRequest, Item
from storage.models import MediaFile, Member
from storage.points import (
    INNOVATION,
    TOTAL,
    InnovationMember,
    MemberTotal,
    PointEntry,
    Submission,
)
from tests.kit import BotKit, Ledger, ledger, shipped_config


def today(bot: BotKit) -> Any:
    return datetime.now(bot.app.config.tz).date()


def quarter(bot: BotKit) -> str:
    return period_of("quarter", today(bot)).key


def item_number(reply: str) -> int:
    m = re.search(r"#(\d+)", reply)
    assert m, f"no #N in {reply!r}"
    return int(m.group(1))


async def claim(
    bot: BotKit,
    userid: str,
    indicator: str = "A01",
    description: str = "参加切丝机停产技改突击队",
    extra: str = "",
) -> int:
    reply = await bot.say(
        userid, f"尽责\n指标：{indicator}\n说明：{description}" + (f"\n{extra}" if extra else "")
    )
    assert "已提交尽责申报" in reply, reply
    return item_number(reply)


async def approve(bot: BotKit, approver: str, number: int) -> str:
    reply = await bot.say(approver, f"通过 #{number}")
    assert f"已通过 #{number}" in reply, reply
    return reply


async def add_members(bot: BotKit, *rows: str) -> None:
    text = ",".join(MEMBER_HEADER) + "\n" + "\n".join(rows) + "\n"
    report = await bot.query(lambda s: import_members(s, text, actor="test"))
    assert not report.problems, report.problems


async def member_id(bot: BotKit, userid: str) -> int:
    return await bot.query(lambda s: s.execute(select(Member.id).where(Member.userid == userid)).scalar_one())


async def total(bot: BotKit, userid: str, period: str | None = None, category: str = TOTAL) -> int:
    """A member's points (x100) as kept in member_totals; 0 without a row."""
    mid = await member_id(bot, userid)
    key = period or quarter(bot)
    row = await bot.query(lambda s: s.get(MemberTotal, (mid, key, category)))
    return row.points_x100 if row is not None else 0


async def submission(bot: BotKit, number: int) -> Any:
    """An item and its points side as one record (kind, status, title … and indicator, day, points)."""

    def read(s: Any) -> Any:
        item, sub = s.get(Item, number), s.get(Submission, number)
        return (
            SimpleNamespace(**sub.model_dump(), **item.model_dump(exclude={"id"})) if item and sub else None
        )

    return await bot.query(read)


async def entries(bot: BotKit, number: int) -> list[PointEntry]:
    return await bot.query(
        lambda s: (
            s.execute(select(PointEntry).where(PointEntry.item_id == number).order_by(PointEntry.id))
            .scalars()
            .all()
        )
    )


def cards(bot: BotKit, userid: str) -> list[dict[str, Any]]:
    return [m.body for m in bot.sent_to(userid, "template_card")]


# -- 尽责 -------------------------------------------------------------------------------------------


async def test_a_claim_is_pending_and_reaches_the_branch_secretary_as_a_card(bot: BotKit):
    reply = await bot.say("wangfang", "尽责\n指标：A01\n说明：参加切丝机停产技改突击队，连续两个夜班")
    n = item_number(reply)
    assert f"已提交尽责申报 #{n}" in reply and "3 分" in reply and "张伟" in reply
    sub = await submission(bot, n)
    assert (sub.status, sub.indicator, sub.category, sub.points_x100, sub.kind) == (
        "pending",
        "A01",
        "A",
        300,
        "尽责",
    )
    assert sub.day == today(bot)
    await bot.drain()
    [card] = cards(bot, "zhangwei")
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == f"尽责申报 #{n}"
    fields = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
    assert fields == {
        "提交人": "王芳（第一党支部）",
        "指标": "A01 参加党员突击队/攻坚任务",
        "日期": f"{today(bot):%m-%d}",
        "分值": "3 分",
        "证明材料": "0 个",
    }
    assert [(b["text"], b["key"]) for b in card["button_list"]] == [
        ("通过", f"approve:{n}"),
        ("驳回", f"reject:{n}"),
    ]
    assert re.fullmatch(r"[A-Za-z0-9_@-]{1,128}", card["task_id"])
    # Only the branch's secretary is asked: not the other branch's, not the committee, not the claimant.
    assert cards(bot, "wuhao") == [] and cards(bot, "liqiang") == [] and cards(bot, "wangfang") == []
    assert await bot.query(
        lambda s: (
            s.execute(select(ApprovalRequest.approver_id).where(ApprovalRequest.item_id == n)).scalars().all()
        )
    ) == [await member_id(bot, "zhangwei")]
    assert await total(bot, "wangfang") == 0  # nothing is booked before approval


async def test_task_ids_are_unique_per_card(bot: BotKit):
    await add_members(bot, "zhaoyun,赵云,第一党支部,甲班,,,党员,secretary")
    n = await claim(bot, "wangfang")
    await bot.drain()
    ids = {c["task_id"] for u in ("zhangwei", "zhaoyun") for c in cards(bot, u)}
    assert len(ids) == 2 and all(i.startswith(f"item-{n}_") for i in ids)


async def test_claim_by_a_close_name(bot: BotKit):
    reply = await bot.say("wangfang", "尽责 突击队 参加梗丝线抢修")
    assert "A01 参加党员突击队/攻坚任务" in reply
    sub = await submission(bot, item_number(reply))
    assert (sub.indicator, sub.description) == ("A01", "参加梗丝线抢修")


async def test_an_ambiguous_indicator_lists_the_candidates_and_asks_again(bot: BotKit):
    reply = await bot.say("wangfang", "尽责\n指标：党员\n说明：示范岗达标")
    assert "对应多个指标" in reply and "A01" in reply and "A05" in reply and "请输入「指标」" in reply
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 0
    )
    reply = await bot.say("wangfang", "A05")
    assert "已提交尽责申报" in reply and "A05" in reply


async def test_an_unknown_indicator_is_refused_with_suggestions(bot: BotKit):
    reply = await bot.say("wangfang", "尽责\n指标：Z99\n说明：没有这个指标")
    assert "没有「Z99」这个指标" in reply and "A01" in reply
    reply = await bot.say("wangfang", "取消")
    assert "已取消" in reply
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 0
    )


async def test_indicators_booked_by_other_flows_and_deductions_cannot_be_claimed(bot: BotKit):
    reply = await bot.say("wangfang", "尽责\n指标：A03\n说明：书记项目节点")
    assert "不能手工申报" in reply
    await bot.say("wangfang", "取消")
    reply = await bot.say("wangfang", "尽责\n指标：K01\n说明：缺席")
    assert "扣分项" in reply and "加分" in reply


async def test_only_party_members_may_claim(bot: BotKit):
    for userid in ("liuyang", "huangxin"):  # 群众, 团员
        reply = await bot.say(userid, "尽责\n指标：A01\n说明：参加抢修")
        assert "仅限党员（含预备党员）" in reply
    reply = await bot.say("chenjing", "尽责\n指标：A01\n说明：参加抢修")  # 预备党员
    assert "已提交尽责申报" in reply
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 1
    )


async def test_a_date_in_the_future_is_refused(bot: BotKit):
    tomorrow = today(bot) + timedelta(days=1)
    reply = await bot.say("wangfang", f"尽责\n指标：A01\n说明：参加抢修\n日期：{tomorrow:%Y-%m-%d}")
    assert "「日期」不能晚于今天" in reply and "请输入「日期」" in reply


async def test_a_date_before_the_quarter_is_refused_unless_the_config_allows_it(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot()
    before = period_of("quarter", today(bot)).start - timedelta(days=1)
    reply = await bot.say("wangfang", f"尽责\n指标：A01\n说明：参加抢修\n日期：{before:%Y-%m-%d}")
    assert "「日期」不能早于本季度" in reply
    await bot.say("wangfang", "取消")
    late = await make_bot(points={"claim_backdate": True})
    reply = await late.say("wangfang", f"尽责\n指标：A01\n说明：参加抢修\n日期：{before:%Y-%m-%d}")
    assert "已提交尽责申报" in reply
    assert (await submission(late, item_number(reply))).day == before


async def test_a_missing_field_starts_a_dialogue(bot: BotKit):
    reply = await bot.say("wangfang", "尽责 A04")
    assert "请输入「说明」" in reply
    reply = await bot.say("wangfang", "国庆节假日保产顶岗")
    n = item_number(reply)
    sub = await submission(bot, n)
    assert (sub.indicator, sub.description, sub.points_x100) == ("A04", "国庆节假日保产顶岗", 200)


async def test_a_variant_sets_the_points_and_a_wrong_one_is_refused(bot: BotKit):
    n = await claim(bot, "wangfang", "A06", "优化回潮机加水方式的建议被采纳", extra="档次：采纳")
    assert (await submission(bot, n)).points_x100 == 300
    reply = await bot.say("wangfang", "尽责\n指标：A06\n说明：建议\n档次：特等")
    assert "没有「特等」这个档次" in reply and "提交、采纳、推广" in reply


async def test_a_cap_per_period_is_enforced_counting_pending_claims(bot: BotKit):
    # A05 责任区/示范岗: at most once a month.
    n = await claim(bot, "wangfang", "A05", "11 月责任区关键指标达标")
    reply = await bot.say("wangfang", "尽责\n指标：A05\n说明：又一次达标")
    assert "每月最多 1 次" in reply and "含待审 1 次" in reply and "不能再记" in reply
    await approve(bot, "zhangwei", n)
    reply = await bot.say("wangfang", "尽责\n指标：A05\n说明：再一次达标")
    assert "每月最多 1 次" in reply and "已有 1 次" in reply
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 1
    )


# -- evidence ---------------------------------------------------------------------------------------


async def test_photos_sent_after_a_claim_are_kept_as_its_evidence(bot: BotKit):
    n = await claim(bot, "wangfang")
    assert await bot.image("wangfang", b"\x89PNG first") == f"已附到 #{n}（共 1 个附件）。"
    assert await bot.image("wangfang", b"\x89PNG second") == f"已附到 #{n}（共 2 个附件）。"
    await bot.drain()
    kept = await bot.query(
        lambda s: s.execute(
            select(MediaFile.data, MediaFile.status)
            .where(MediaFile.ref == f"item:{n}")
            .order_by(MediaFile.id)
        ).all()
    )
    assert [(d, st) for d, st in kept] == [(b"\x89PNG first", "fetched"), (b"\x89PNG second", "fetched")]
    listing = await bot.say("zhangwei", "待审")
    assert f"#{n}" in listing and "附件 2" in listing


async def test_a_photo_without_a_recent_claim_gets_the_default_answer(bot: BotKit):
    assert "请先发送申报或投稿" in await bot.image("wangfang")
    n = await claim(bot, "wangfang")
    eleven = datetime.now(bot.app.config.tz) - timedelta(minutes=11)
    await bot.query(lambda s: s.execute(update(Item).where(Item.id == n).values(created_at=eleven)))
    assert "请先发送申报或投稿" in await bot.image("wangfang")
    assert await bot.query(lambda s: s.execute(select(func.count()).select_from(MediaFile)).scalar_one()) == 0


# -- 创新 -------------------------------------------------------------------------------------------

QC = "创新\n类型：QC\n名称：降低叶丝干燥工序水分标准偏差\n级别：{level}\n等次：一等\n成员：赵磊、chenjing"


async def test_an_innovation_claim_takes_points_from_the_table_and_shares_them(bot: BotKit):
    reply = await bot.say("wangfang", QC.format(level="厂级"))
    n = item_number(reply)
    assert "8 分" in reply and "王芳 8、赵磊 4、陈静 4" in reply
    await bot.drain()
    # Innovation approvers: the branch secretary and the committee; never a team member.
    assert [c["main_title"]["title"] for c in cards(bot, "zhangwei")] == [f"创新申报 #{n}"]
    assert [c["main_title"]["title"] for c in cards(bot, "liqiang")] == [f"创新申报 #{n}"]
    assert cards(bot, "zhaolei") == []
    await approve(bot, "liqiang", n)
    assert await total(bot, "wangfang", category=INNOVATION) == 800
    assert await total(bot, "zhaolei", category=INNOVATION) == 400
    assert await total(bot, "chenjing", category=INNOVATION) == 400
    assert await total(bot, "wangfang") == 0  # innovation points form their own ranking by default
    await bot.drain()
    assert any(f"#{n}" in t and "+4" in t for t in bot.texts_to("zhaolei"))


async def test_a_higher_level_later_pays_only_the_difference(bot: BotKit):
    first = item_number(await bot.say("wangfang", QC.format(level="厂级")))
    await approve(bot, "zhangwei", first)
    reply = await bot.say("wangfang", QC.format(level="车间"))
    assert "已按 厂级一等 计 8 分" in reply and "只补差额" in reply
    reply = await bot.say("wangfang", QC.format(level="厂级"))
    assert "只按最高级别计一次" in reply
    reply = await bot.say(
        "wangfang", QC.replace("降低", "《降低").replace("偏差", "偏差》").format(level="公司级")
    )
    n = item_number(reply)
    assert "王芳 4、赵磊 2、陈静 2" in reply and "已扣除" in reply
    await approve(bot, "zhangwei", n)
    assert await total(bot, "wangfang", category=INNOVATION) == 1200
    assert await total(bot, "zhaolei", category=INNOVATION) == 600
    paid = await bot.query(
        lambda s: (
            s.execute(
                select(InnovationMember.paid_x100)
                .where(InnovationMember.innovation_id == n)
                .order_by(InnovationMember.member_id)
            )
            .scalars()
            .all()
        )
    )
    assert sorted(paid) == [200, 200, 400]


async def test_a_pending_claim_of_the_same_result_blocks_another(bot: BotKit):
    n = item_number(await bot.say("wangfang", QC.format(level="厂级")))
    reply = await bot.say("zhaolei", QC.replace("赵磊", "王芳").format(level="公司级"))
    assert f"已有待审的申报 #{n}" in reply


async def test_unknown_and_ambiguous_innovation_members_are_refused(bot: BotKit):
    reply = await bot.say("wangfang", QC.replace("赵磊", "赵四").format(level="厂级"))
    assert "「成员」找不到成员「赵四」" in reply and "请输入「成员」" in reply
    await bot.say("wangfang", "取消")
    await add_members(bot, "zhaolei2,赵磊,第二党支部,乙班,,,党员,")
    reply = await bot.say("wangfang", QC.format(level="厂级"))
    assert (
        "有 2 位「赵磊」" in reply and "zhaolei（第一党支部）" in reply and "zhaolei2（第二党支部）" in reply
    )
    reply = await bot.say("wangfang", "zhaolei2、陈静")
    assert "已提交创新申报" in reply and "赵磊 4" in reply
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 1
    )


async def test_innovation_fields_are_checked(bot: BotKit):
    reply = await bot.say("wangfang", "创新\n类型：论文\n名称：x\n级别：厂级")
    assert "没有「论文」这个类型" in reply and "QC成果" in reply
    await bot.say("wangfang", "取消")
    reply = await bot.say("wangfang", "创新\n类型：专利\n名称：一种梗丝膨胀装置\n级别：厂级")
    assert "「专利」需要写等次" in reply and "发明授权" in reply
    reply = await bot.say("wangfang", "实用新型")
    assert "已提交创新申报" in reply and "6 分" in reply


async def test_the_equal_split_rule(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(innovation={"split": {"rule": "equal"}})
    reply = await bot.say(
        "wangfang", "创新\n类型：小改小革\n名称：回潮机喷嘴防堵改造\n级别：车间\n等次：效益5万\n成员：赵磊"
    )
    assert "5 分" in reply and "王芳 2.5、赵磊 2.5" in reply


# -- 加分 -------------------------------------------------------------------------------------------


async def test_a_secretary_awards_points_directly_and_it_is_audited(bot: BotKit):
    reply = await bot.say("zhangwei", "加分 王芳 A04 2 国庆节假日保产顶岗")
    n = item_number(reply)
    assert f"已记 #{n}" in reply and "+2" in reply
    sub = await submission(bot, n)
    assert (sub.kind, sub.status, sub.points_x100) == ("加分", "approved", 200)
    assert sub.decided_by == await member_id(bot, "zhangwei")
    [entry] = await entries(bot, n)
    assert (entry.points_x100, entry.category, entry.indicator, entry.approver_id, entry.kind) == (
        200,
        "A",
        "A04",
        await member_id(bot, "zhangwei"),
        "entry",
    )
    assert await total(bot, "wangfang") == 200 and await total(bot, "wangfang", category="A") == 200
    await bot.drain()
    assert any(f"#{n}" in t and "+2" in t for t in bot.texts_to("wangfang"))


async def test_award_refusals_self_other_branch_and_members(bot: BotKit):
    assert "不能给自己加分" in await bot.say("zhangwei", "加分 张伟 A04 2 保产")
    reply = await bot.say("zhangwei", "加分 徐明 A04 2 保产")
    assert "第二党支部" in reply and "只能由其所在支部书记或党总支" in reply
    assert "仅限支部书记、党总支" in await bot.say("wangfang", "加分 赵磊 A04 2 保产")
    assert "找不到成员" in await bot.say("zhangwei", "加分 无名氏 A04 2 保产")
    await bot.say("zhangwei", "取消")
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).select_from(Submission)).scalar_one()) == 0
    )
    # The committee may award in any branch.
    assert "已记" in await bot.say("liqiang", "加分 徐明 A04 2 保产")


async def test_deductions_always_deduct_and_a_veto_zeroes_the_quarter(bot: BotKit):
    await bot.say("zhangwei", "加分 王芳 A01 3 参加突击队")
    await bot.say("zhangwei", "加分 王芳 A02 5 解决烘丝机故障")
    reply = await bot.say("zhangwei", "扣分 王芳 K01 2 无故缺席支部党员大会")
    assert "-2" in reply
    assert await total(bot, "wangfang") == 600 and await total(bot, "wangfang", category="K") == -200
    reply = await bot.say("zhangwei", "加分 王芳 K03 0 受到厂规处分")
    assert "一票否决" in reply and "-6" in reply
    assert await total(bot, "wangfang") == 0


async def test_a_cap_also_holds_for_direct_awards(bot: BotKit):
    await bot.say("zhangwei", "加分 王芳 A05 2 10 月责任区达标")
    reply = await bot.say("zhangwei", "加分 王芳 A05 2 又一次")
    assert "每月最多 1 次" in reply
    assert await total(bot, "wangfang") == 200


# -- refusals that record nothing -------------------------------------------------------------------


def a04_capped_at_four_points_a_month() -> list[dict[str, Any]]:
    categories = shipped_config()["points"]["categories"]
    for indicator in categories[0]["indicators"]:
        if indicator["code"] == "A04":
            indicator["cap"] = {"points": 4, "period": "month"}
    return categories


async def test_a_cap_by_points_counts_pending_claims_and_direct_awards(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"categories": a04_capped_at_four_points_a_month()})
    first = await claim(bot, "wangfang", "A04", "国庆节假日保产顶岗")
    second = await claim(bot, "wangfang", "A04", "周末抢修保产")  # 2 + 2 = 4: just fits
    before = await ledger(bot)
    reply = await bot.say("wangfang", "尽责\n指标：A04\n说明：又一次顶岗")
    assert "每月最多 4 分" in reply and "已有 4 分（含待审 2 次）" in reply and "再加 2 分会超过上限" in reply
    await bot.say("wangfang", "取消")
    assert await ledger(bot) == before
    await approve(bot, "zhangwei", first)
    await approve(bot, "zhangwei", second)
    full = await ledger(bot)
    reply = await bot.say("zhangwei", "加分 王芳 A04 1 夜班顶岗")
    assert "每月最多 4 分" in reply and "再加 1 分会超过上限" in reply
    assert await ledger(bot) == full and await total(bot, "wangfang") == 400


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("加分 王芳 A04 0 保产", "「分值」不能为 0"),
        ("加分 王芳 A04 500 保产", "「分值」一次最多 ±100 分"),
        ("加分 王芳 A04 -1000 保产", "「分值」一次最多 ±100 分"),
        ("加分 王芳 Z99 2 保产", "没有「Z99」这个指标"),
    ],
)
async def test_an_award_of_nothing_of_an_absurd_value_or_an_unknown_indicator_is_refused(
    bot: BotKit, typed: str, refusal: str
):
    reply = await bot.say("zhangwei", typed)
    assert refusal in reply
    assert await bot.say("zhangwei", "取消") == "已取消，填写的内容没有保存。"
    assert await ledger(bot) == Ledger(items=0, entries=0, points_x100=0)
    await bot.drain()
    assert bot.texts_to("wangfang") == []


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ("类型：QC\n名称：降低烟丝造碎\n级别：宇宙级\n等次：一等", "没有「宇宙级」这个级别"),
        (
            "类型：合理化建议\n名称：排潮风门限位\n级别：车间\n等次：特等",
            "「合理化建议」没有「特等」这个等次",
        ),
        ("类型：专利\n名称：一种梗丝膨胀装置\n级别：厂级\n等次：一等", "「专利」没有「一等」这个等次"),
    ],
)
async def test_an_innovation_of_an_unknown_level_or_a_grade_its_type_lacks_is_refused(
    bot: BotKit, fields: str, refusal: str
):
    reply = await bot.say("wangfang", "创新\n" + fields)
    assert refusal in reply
    await bot.say("wangfang", "取消")
    assert await ledger(bot) == Ledger(items=0, entries=0, points_x100=0)
    await bot.drain()
    assert cards(bot, "zhangwei") == [] and cards(bot, "liqiang") == []


# -- what every command does, shown on a practice command --------------------------------------------


async def test_help_for_a_practice_command_and_by_role(bot: BotKit):
    reply = await bot.say("wangfang", "帮助 尽责")
    assert reply.startswith("【尽责】")
    assert "示例：\n尽责\n指标：" in reply and "\n说明：" in reply and "日期（选填）" in reply
    member, secretary = await bot.say("wangfang", "帮助"), await bot.say("zhangwei", "帮助")
    assert "· 尽责：" in member and "· 尽责：" in secretary
    assert "· 加分：" in secretary and "· 加分：" not in member
    assert "· 通过：" in secretary and "· 通过：" not in member


async def test_a_retried_claim_is_recorded_once_and_answered_the_same(bot: BotKit):
    plain = bot.wecom.text("wangfang", "尽责\n指标：A01\n说明：参加切丝机停产技改突击队")
    first = await bot.deliver(plain)
    again = await bot.deliver(plain)
    assert (first.status, again.status) == (200, 200)
    assert first.reply is not None and first.reply.text.startswith("已提交尽责申报 #")
    assert again.reply == first.reply
    assert (await ledger(bot)).items == 1
    await bot.drain()
    assert len(cards(bot, "zhangwei")) == 1  # the secretary is asked once
