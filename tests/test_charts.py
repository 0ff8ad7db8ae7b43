"""The pictures in chat: the ranking broadcast's bar chart through the front door (posted after the
markdown, a PNG that decodes, under 2 MB, with the group robot's md5), the chart's drawing rules, the
house table, the 2 MB limit, and a broadcast without a CJK font (the text still goes, the job says
which package to install)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os

import pytest
from PIL import Image

from bot.pictures import RENDERERS
from handlers import charts
from handlers.periods import period_of, previous
from handlers.rankings import CHART_NOTE
from tests.kit import BotKit
from tests.test_points import today
from tests.test_rankings import award


def decode(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    picture = Image.open(io.BytesIO(data))
    picture.load()  # the whole image decodes, not only its header
    assert picture.format == "PNG"
    return picture


async def last_month_ranking(bot: BotKit) -> None:
    last_month = previous(period_of("month", today(bot)))
    await award(bot, "zhangwei", "王芳", "A04", 5, last_month.start)
    await award(bot, "wuhao", "徐明", "A04", 3, last_month.start)
    await award(bot, "zhangwei", "赵磊", "A04", 3, last_month.start)


async def test_the_ranking_broadcast_posts_a_bar_chart_after_its_markdown(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"claim_backdate": True})
    await last_month_ranking(bot)
    result = await bot.app.scheduler.run("ranking_monthly", bot.app.dispatcher.clock())
    assert result.status == "done" and "图表未生成" not in result.detail
    await bot.drain()
    post, picture = bot.fake.webhooks("制丝车间群")
    assert post.msgtype == "markdown" and picture.msgtype == "image"
    data = base64.b64decode(picture.body["base64"])
    assert picture.body["md5"] == hashlib.md5(data).hexdigest()
    assert len(data) < charts.MAX_BYTES
    image = decode(data)
    assert image.width == charts.BAR_WIDTH and image.height == 84 + 3 * charts.BAR_ROW + 44
    # The first place's bar is the longest, in the party red; a bar past the podium would be paler.
    first = image.getpixel((image.width // 2, 84 + charts.BAR_ROW // 2))
    assert first == charts.PARTY_RED


async def test_without_a_cjk_font_the_broadcast_still_posts_its_text_and_names_the_package(
    make_bot, monkeypatch
):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"claim_backdate": True})
    await last_month_ranking(bot)
    charts.font_file.cache_clear()
    charts.font.cache_clear()
    monkeypatch.setattr(charts.shutil, "which", lambda _name: None)
    monkeypatch.setattr(charts, "_KNOWN_FONTS", ("/nonexistent/NoSuchFont.ttc",))
    try:
        result = await bot.app.scheduler.run("ranking_monthly", bot.app.dispatcher.clock())
    finally:
        monkeypatch.undo()
        charts.font_file.cache_clear()
        charts.font.cache_clear()
    assert result.status == "done" and "图表未生成" in result.detail and "fonts-noto-cjk" in result.detail
    await bot.drain()
    assert [m.msgtype for m in bot.fake.webhooks("制丝车间群")] == ["markdown"]


def test_bars_are_as_long_as_their_values_and_fifty_rows_stay_small():
    bars = [charts.Bar(1, "王芳", 20, "20 分", "↑2", "第一党支部"), charts.Bar(2, "徐明", 10, "10 分", "新")]
    image = decode(charts.bar_chart("个人积分排行 · 2026年11月", "2026-11-01 至 2026-11-30", bars))
    lengths = []
    for i in range(2):
        y = 84 + charts.BAR_ROW * i + charts.BAR_ROW // 2
        lengths.append(sum(1 for x in range(image.width) if image.getpixel((x, y)) == charts.PARTY_RED))
    assert lengths[0] > 0 and abs(lengths[0] - 2 * lengths[1]) <= 4, lengths
    many = [charts.Bar(i + 1, f"成员{i:02d}", 50 - i, f"{50 - i} 分", "↓1", "第二党支部") for i in range(50)]
    data = charts.bar_chart("个人积分排行", "前 50 名", many, CHART_NOTE)
    assert len(data) < charts.MAX_BYTES // 4 and decode(data).height == 84 + 50 * charts.BAR_ROW + 44
    # Nothing to draw a bar for (everyone at 0 or below) still makes a picture, without bars.
    assert decode(charts.bar_chart("个人积分排行", "", [charts.Bar(1, "王芳", -2, "-2 分")]))


def test_the_house_table_decodes_and_a_picture_over_2_mb_is_refused():
    table = decode(
        charts.table_png("党建考评 · 2026年第四季度", ["名次", "支部", "得分"], [["1", "第一党支部", "92.5"]])
    )
    assert table.width > 200 and table.getpixel((table.width // 2, 56 + 5)) == charts.PARTY_RED
    noise = Image.frombytes("RGB", (1100, 1100), os.urandom(1100 * 1100 * 3))
    with pytest.raises(charts.ChartError, match="2 MB"):
        charts.to_png(noise)


def test_a_matrix_goes_to_the_outbox_as_a_string_per_person_and_comes_back_whole():
    matrix = charts.Matrix(
        title="甲班多能工训练表",
        people=["王芳", "赵磊"],
        posts=["切叶丝", "叶丝干燥"],
        levels=[[2, 3], [4, 0]],
        below_target=[[True, False], [False, True]],
        expired=[[False, False], [True, False]],
        coverage=["2/4", "1/4"],
        short=[True, True],
    )
    data = json.loads(json.dumps(matrix.data()))  # as the outbox row keeps it
    cells = (data["levels"], data["below_target"], data["expired"])
    assert cells == (["23", "40"], ["10", "01"], ["00", "10"])
    assert charts.Matrix.from_data(data) == matrix
    as_lists = json.loads(json.dumps(vars(matrix)))  # a row queued before cells became strings
    assert charts.Matrix.from_data(as_lists) == matrix
    picture = decode(RENDERERS["iluo_matrix"](data))
    assert picture.tobytes() == decode(RENDERERS["iluo_matrix"](as_lists)).tobytes()
