"""Commands, forms, dialogues, help and permissions, as people type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.context import Context, Sender
from bot.router import Router
from storage.models import AuditLog, Dialogue
from tests.kit import BotKit
from tests.spine_router import router as spine_router


@pytest.fixture
async def sbot(make_bot) -> BotKit:  # type: ignore[no-untyped-def]
    return await make_bot(router=spine_router)


async def repairs(bot: BotKit) -> list[tuple[str, str]]:
    return await bot.query(
        lambda s: s.execute(
            select(AuditLog.subject, AuditLog.detail).where(AuditLog.action == "repair").order_by(AuditLog.id)
        ).all()
    )


async def test_a_whole_form_in_one_message(sbot: BotKit):
    reply = await sbot.say("wangfang", "报修\n事项：更换切丝机刀片\n数量：3")
    assert reply == "已登记：更换切丝机刀片 × 3"
    assert await repairs(sbot) == [("更换切丝机刀片", "3")]


@pytest.mark.parametrize(
    "text",
    [
        "报修 事项:更换刀片 数量:２",  # half-width colon, full-width digit
        "报修\n事项 ： 更换刀片\n数量：2",  # spaces around a full-width colon
        "维修，事项：更换刀片，数量：2",  # an alias, full-width commas on one line
        "报修\n内容：更换刀片\n数量：2",  # a field alias
        "报修\n更换刀片\n2",  # bare lines fill the fields in order
    ],
)
async def test_forgiving_about_how_people_type(sbot: BotKit, text: str):
    assert await sbot.say("wangfang", text) == "已登记：更换刀片 × 2"


async def test_a_colon_inside_free_text_stays_in_the_value(sbot: BotKit):
    reply = await sbot.say("wangfang", "报修\n事项：注意：刀片松动\n数量：1")
    assert reply == "已登记：注意：刀片松动 × 1"


async def test_missing_fields_start_a_dialogue_that_asks_for_each(sbot: BotKit):
    first = await sbot.say("wangfang", "报修")
    assert "请输入「事项」" in first and "例：更换切丝机刀片" in first
    assert "请输入「数量」" in await sbot.say("wangfang", "更换刀片")
    wrong = await sbot.say("wangfang", "三个")
    assert "「数量」应是整数（例：3）" in wrong and "请输入「数量」" in wrong
    assert await sbot.say("wangfang", "3") == "已登记：更换刀片 × 3"
    assert await sbot.query(lambda s: s.get(Dialogue, "wangfang")) is None


async def test_each_field_error_names_the_field_the_problem_and_an_example(sbot: BotKit):
    reply = await sbot.say("wangfang", "报修\n事项：换刀\n数量：0\n日期：2099-01-01")
    assert "「数量」应大于 0（例：3）" in reply
    assert "「日期」不能晚于今天（例：2026-11-20）" in reply
    assert await repairs(sbot) == []


async def test_bad_date_is_refused_and_a_good_one_accepted(sbot: BotKit):
    assert "「日期」不是有效的日期" in await sbot.say("wangfang", "报修\n事项：换刀\n数量：1\n日期：十三月")
    assert await sbot.say("wangfang", "昨天") == (
        f"已登记：换刀 × 1，日期 {(datetime.now(UTC) + timedelta(hours=8) - timedelta(days=1)).date()}"
    )


async def test_cancel_ends_the_dialogue_and_records_nothing(sbot: BotKit):
    await sbot.say("wangfang", "报修\n事项：换刀")
    assert await sbot.say("wangfang", "取消") == "已取消，填写的内容没有保存。"
    assert await sbot.say("wangfang", "取消") == "当前没有进行中的填写。"
    assert await repairs(sbot) == []


async def test_a_bare_command_leaves_the_dialogue(sbot: BotKit):
    await sbot.say("wangfang", "报修")
    assert "可以用这些命令" in await sbot.say("wangfang", "帮助")
    assert await sbot.query(lambda s: s.get(Dialogue, "wangfang")) is None


async def test_dialogue_expires_after_its_time(sbot: BotKit):
    await sbot.say("wangfang", "报修")
    past = datetime.now(UTC) - timedelta(minutes=1)
    await sbot.query(lambda s: s.execute(update(Dialogue).values(expires_at=past)))
    reply = await sbot.say("wangfang", "更换刀片")
    assert "没有「更换刀片」这个命令" in reply


async def test_dialogue_survives_a_restart(make_bot):  # type: ignore[no-untyped-def]
    first = await make_bot(router=spine_router)
    await first.say("wangfang", "报修\n事项：换刀")
    await first.app.stop()
    second = await make_bot(
        router=spine_router,
        members=False,
        wecom={
            "token": first.app.config.wecom.token,
            "encoding_aes_key": first.app.config.wecom.encoding_aes_key,
        },
    )
    assert await second.say("wangfang", "5") == "已登记：换刀 × 5"


async def test_help_lists_only_what_the_senders_roles_allow(sbot: BotKit):
    worker = await sbot.say("liuyang", "帮助")
    secretary = await sbot.say("zhangwei", "帮助")
    assert "· 报修：" in worker and "· 报修：" in secretary
    assert "裁定" not in worker and "· 裁定：" in secretary


def test_the_commands_a_sender_may_use_follow_roles_party_membership_and_new_commands():
    # 帮助's list is kept for each set of roles: what changes it must still change it.
    router = Router("t")
    decide = {"roles": frozenset({"secretary"})}

    def reply(ctx: Context) -> str:
        return ""

    router.command("甲", code="a")(reply)
    router.command("乙", code="b", roles={"secretary"})(reply)
    router.command("丙", code="c", roles=lambda: decide["roles"])(reply)
    router.command("丁", code="d", party_only=True)(reply)
    worker = Sender(1, "w", "工人", "群众", frozenset({"member"}))
    secretary = Sender(2, "s", "书记", "党员", frozenset({"member", "secretary"}))

    def names(sender: Sender) -> list[str]:
        return [c.name for c in router.available_to(sender)]

    assert names(worker) == ["甲"]
    assert names(secretary) == ["甲", "乙", "丙", "丁"]
    decide["roles"] = frozenset({"committee"})  # a command's roles given as a function changed
    assert names(secretary) == ["甲", "乙", "丁"]
    assert names(worker) == ["甲"]
    router.command("戊", code="e")(reply)  # registered after the lists were kept
    assert names(worker) == ["甲", "戊"]
    router.available_to(worker).clear()  # the caller's copy: what is kept stays whole
    assert names(worker) == ["甲", "戊"]


async def test_help_for_one_command_shows_a_filled_in_example(sbot: BotKit):
    reply = await sbot.say("wangfang", "帮助 报修")
    assert reply.startswith("【报修】登记一次维修")
    assert "示例：\n报修\n事项：更换切丝机刀片\n数量：3\n日期：2026-11-20" in reply
    assert "日期（选填）" in reply


async def test_unknown_input_gets_the_nearest_commands(sbot: BotKit):
    reply = await sbot.say("wangfang", "保修 刀片")
    assert reply.startswith("没有「保修」这个命令。你是不是想用：报修")
    assert "发送「帮助」查看你可以用的命令" in await sbot.say("wangfang", "今天天气怎么样")


async def test_a_command_word_at_the_start_of_a_sentence_is_not_that_command(sbot: BotKit):
    reply = await sbot.say("wangfang", "我想请假")
    assert reply.startswith("没有「我想请假」这个命令")
    assert (await sbot.say("wangfang", "帮助报修")).startswith("【报修】")
    assert (await sbot.say("wangfang", "维修事项：换刀 数量：2")) == "已登记：换刀 × 2"


async def test_suggestions_never_offer_what_the_sender_may_not_use(sbot: BotKit):
    worker = await sbot.say("liuyang", "裁决")
    assert worker.startswith("没有「裁决」这个命令") and "裁定" not in worker
    secretary = await sbot.say("zhangwei", "裁决")
    assert secretary.startswith("没有「裁决」这个命令。你是不是想用：裁定")


async def test_a_command_outside_your_roles_is_refused_before_its_handler(sbot: BotKit):
    reply = await sbot.say("liuyang", "裁定 #1 同意")
    assert reply == "「裁定」仅限支部书记、党总支使用。发送「帮助」查看你可以用的命令。"
    assert sbot.fake.card_updates() == []


async def test_card_clicks_are_checked_like_text(sbot: BotKit):
    assert await sbot.say("wangfang", "报修\n事项：换刀\n数量：1") == "已登记：换刀 × 1"
    await sbot.drain()
    card = sbot.sent_to("zhangwei", "template_card")[0]
    refused = await sbot.click("liuyang", "decide:1 好的", task_id=card.body["task_id"])
    assert refused is not None and refused.text.startswith("「裁定」仅限")
    decided = await sbot.click("zhangwei", "decide:1 好的", task_id=card.body["task_id"])
    assert decided is not None and decided.replace_button == "已裁定"
    await sbot.drain()
    assert sbot.texts_to("zhangwei")[-1] == "已裁定 1：好的"
    assert [(u.userids, u.button_replace_name) for u in sbot.fake.card_updates()] == [
        (["zhangwei"], "已裁定 · 张伟")
    ]


async def test_positional_fields_and_a_command_glued_to_its_argument(sbot: BotKit):
    assert await sbot.say("zhangwei", "裁定 #3 缺少现场照片") == "已裁定 #3：缺少现场照片"
    assert await sbot.say("zhangwei", "裁定#4 同意") == "已裁定 #4：同意"
    asked = await sbot.say("zhangwei", "裁定 #5")
    assert "请输入「理由」" in asked
    assert await sbot.say("zhangwei", "材料齐全") == "已裁定 #5：材料齐全"


async def test_a_stranger_is_refused_politely_and_admins_hear_once(sbot: BotKit):
    reply = await sbot.say("visitor01", "帮助")
    assert "还不是「先锋」的登记成员" in reply
    await sbot.say("visitor01", "我的")
    await sbot.drain()
    notices = [t for t in sbot.texts_to("liqiang") if "visitor01" in t]
    assert len(notices) == 1


async def test_first_me_shows_name_branch_team_and_roles(sbot: BotKit):
    reply = await sbot.say("zhoujie", "我的")
    assert reply.startswith("周杰（党员）\n支部：第一党支部\n班组：甲班\n党小组：第一党小组")
    assert "角色：班组长、党小组长" in reply


async def test_nothing_is_half_written_when_a_form_fails(sbot: BotKit):
    reply = await sbot.say("wangfang", "报修\n事项：换刀\n数量：-1")
    assert "「数量」应大于 0" in reply and "请输入「数量」" in reply
    count = await sbot.query(
        lambda s: s.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "repair")
        ).scalar_one()
    )
    assert count == 0
