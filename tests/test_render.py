"""Handlers speak the domain and bot/ speaks WeCom: value objects rendered into template-card JSON,
markdown font tags and images, through the outbox to the fake WeCom API."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from bot.replies import Button, Card, Image, Markdown, Text, tone
from bot.wecom import render
from tests.kit import BotKit
from tests.test_outbox import send

# A 1×1 PNG: small enough to read, real enough for the fake API's checks.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_tones_become_font_tags_in_markdown_and_vanish_in_plain_text():
    content = f"**1.** 王芳 {tone('12 分', 'info')} {tone('第一党支部', 'comment')} {tone('超时', 'warning')}"
    assert render.markdown(content) == (
        '**1.** 王芳 <font color="info">12 分</font> <font color="comment">第一党支部</font> '
        '<font color="warning">超时</font>'
    )
    assert render.plain(content) == "**1.** 王芳 12 分 第一党支部 超时"


def test_a_card_becomes_a_button_interaction_template_card_within_wecom_limits():
    card = Card(
        title="创新申报 #12：降低叶丝干燥工序水分标准偏差攻关项目组",
        subtitle="QC成果《降低叶丝干燥工序水分标准偏差》厂级一等",
        facts=(("提交人", "王芳（第一党支部）"), ("王芳", "组长 8 分"), ("赵磊", "成员 4 分")),
        description="2026年厂QC成果发布会一等奖" * 10,
        buttons=(Button("通过", "approve", "12"), Button("驳回", "reject", "12", primary=False)),
        ref="item:12",
        source="先锋 · 积分审核",
    )
    body = render.template_card(card, "wang.fang", datetime(2026, 11, 30, 8, tzinfo=UTC))
    assert body["card_type"] == "button_interaction"
    assert len(body["main_title"]["title"]) == 26 and body["main_title"]["title"].endswith("…")
    assert body["button_list"] == [
        {"text": "通过", "style": 1, "key": "approve:12"},
        {"text": "驳回", "style": 2, "key": "reject:12"},
    ]
    assert [f["keyname"] for f in body["horizontal_content_list"]] == ["提交人", "王芳", "赵磊"]
    assert len(body["sub_title_text"]) == 100
    assert re.fullmatch(r"[A-Za-z0-9_@-]{1,128}", body["task_id"]) and "wang-fang" in body["task_id"]


async def test_markdown_cards_and_images_reach_wecom_rendered(bot: BotKit):
    card = Card(
        title="待审 #9", buttons=(Button("通过", "approve", "9"),), facts=(("分值", "3 分"),), ref="item:9"
    )
    await bot.query(lambda s: send(s, "zhangwei", Markdown(f"本周 {tone('第 1 名', 'info')}")))
    await bot.query(lambda s: send(s, "zhangwei", card))
    await bot.query(lambda s: send(s, "zhangwei", Image("排行.png", PNG)))
    await bot.query(lambda s: send(s, "zhangwei", Text("你好")))
    await bot.query(lambda s: send(s, broadcast=("制丝车间群", Image("排行.png", PNG))))
    await bot.drain()
    kinds = [(m.msgtype, m.body) for m in bot.fake.sent("zhangwei")]
    assert kinds[0] == ("markdown", {"content": '本周 <font color="info">第 1 名</font>'})
    assert kinds[1][0] == "template_card" and kinds[1][1]["button_list"][0]["key"] == "approve:9"
    assert kinds[2][0] == "image" and bot.fake.media(kinds[2][1]["media_id"])[0] == PNG
    assert kinds[3] == ("text", {"content": "你好"})
    [posted] = [w for w in bot.fake.webhooks() if w.msgtype == "image"]
    assert posted.body == {"base64": base64.b64encode(PNG).decode(), "md5": hashlib.md5(PNG).hexdigest()}
