"""排行 (members, teams, branches), 我的, and the ranking broadcast, through encrypted callbacks."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from sqlalchemy import text

from bot.config import parse_config
from handlers.periods import parse_period, period_of, previous
from handlers.rankings import broadcast_result
from tests.kit import BotKit, quiet_schedules, shipped_config
from tests.test_points import add_members, approve, claim, today
from tests.test_projects import statements


def ranked(reply: str) -> list[tuple[int, str, str, str]]:
    """(rank, name, points, change) of each ranking line."""
    found = re.findall(r"^(\d+)\. (\S+?)(?:（你(?:所在)?）)?(?: \S+)? ([-\d.]+) 分 ?(\S*)", reply, re.M)
    return [(int(r), n, p, c.split("（")[0]) for r, n, p, c in found]


async def award(
    bot: BotKit, secretary: str, who: str, indicator: str, points: int, day: object = None
) -> None:
    text = f"加分 {who} {indicator} {points} 记分" + (f"\n日期：{day}" if day else "")
    reply = await bot.say(secretary, text)
    assert "已记" in reply, reply


PEOPLE = [f"p{i:02d},成员{i:02d},第一党支部,甲班,,,党员," for i in range(1, 12)]


async def test_ties_share_a_rank_and_my_place_shows_outside_the_top_ten(bot: BotKit):
    await add_members(bot, *PEOPLE)
    for i, points in enumerate([20, 18, 18, 15, 12, 12, 12, 9, 8, 7, 6], start=1):
        await award(bot, "zhangwei", f"p{i:02d}", "A04", points)
    await award(bot, "zhangwei", "王芳", "A04", 1)
    reply = await bot.say("wangfang", "排行")
    assert reply.startswith(f"个人积分排行 · {period_of('quarter', today(bot)).label}")
    rows = ranked(reply)
    assert [(r, n, p) for r, n, p, _ in rows] == [
        (1, "成员01", "20"),
        (2, "成员02", "18"),
        (2, "成员03", "18"),
        (4, "成员04", "15"),
        (5, "成员05", "12"),
        (5, "成员06", "12"),
        (5, "成员07", "12"),
        (8, "成员08", "9"),
        (9, "成员09", "8"),
        (10, "成员10", "7"),
    ]
    assert all(c == "新" for *_, c in rows)
    assert "—— 你：第 12 名，1 分 新" in reply and "共 12 人上榜" in reply
    # Inside the top ten, the asker is marked in place instead.
    mine = await bot.say("p02", "排行")
    assert "2. 成员02（你）" in mine and "—— 你" not in mine
    # Somebody without points this period is told so.
    assert "本期还没有积分，暂未上榜" in await bot.say("zhaolei", "排行")
    assert ranked(await bot.say("wangfang", "排行 前3"))[-1][:2] == (2, "成员03")


async def test_the_change_in_rank_against_the_previous_period(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"claim_backdate": True})
    last = previous(period_of("quarter", today(bot))).last
    await award(bot, "zhangwei", "王芳", "A04", 5, last)
    await award(bot, "zhangwei", "赵磊", "A04", 3, last)
    await award(bot, "zhangwei", "周杰", "A04", 1, last)
    await award(bot, "zhangwei", "周杰", "A02", 6)
    await award(bot, "zhangwei", "王芳", "A04", 4)
    await award(bot, "zhangwei", "孙丽", "A04", 2)
    rows = ranked(await bot.say("zhaolei", "排行"))
    assert rows == [(1, "周杰", "6", "↑2"), (2, "王芳", "4", "↓1"), (3, "孙丽", "2", "新")]
    before = ranked(await bot.say("zhaolei", "排行 上季度"))
    assert before == [(1, "王芳", "5", "新"), (2, "赵磊", "3", "新"), (3, "周杰", "1", "新")]
    reply = await bot.say("zhaolei", "排行")
    assert "—— 你：本期还没有积分" in reply


async def test_periods_and_categories(bot: BotKit):
    n = await claim(bot, "wangfang", "A01")
    await approve(bot, "zhangwei", n)
    await award(bot, "zhangwei", "赵磊", "D03", 2)
    month = period_of("month", today(bot))
    this_month = [(1, "王芳", "3", "新"), (2, "赵磊", "2", "新")]
    assert ranked(await bot.say("wangfang", "排行 本月")) == this_month
    assert ranked(await bot.say("wangfang", f"排行 {month.key}")) == this_month
    assert [n for _, n, _, _ in ranked(await bot.say("wangfang", "排行 本周"))] == ["王芳", "赵磊"]
    only_a = await bot.say("wangfang", "排行 攻坚克难")
    assert "· 攻坚克难" in only_a and [n for _, n, _, _ in ranked(only_a)] == ["王芳"]
    assert [n for _, n, _, _ in ranked(await bot.say("wangfang", "排行 个人 本年 D"))] == ["赵磊"]
    assert "本期还没有积分记录" in await bot.say("wangfang", "排行 2025Q1")
    assert "「2026Q5」不是有效的时间段" in await bot.say("wangfang", "排行 2026Q5")
    assert "看不懂「明天」" in await bot.say("wangfang", "排行 明天")


async def test_innovation_points_have_their_own_ranking(bot: BotKit):
    reply = await bot.say(
        "zhaolei", "创新\n类型：合理化建议\n名称：烘丝机排潮风门加装限位\n级别：车间\n等次：一等"
    )
    await approve(bot, "zhangwei", int(re.search(r"#(\d+)", reply).group(1)))  # type: ignore[union-attr]
    assert "本期还没有积分记录" in await bot.say("wangfang", "排行")
    rows = ranked(await bot.say("wangfang", "排行 创新"))
    assert rows == [(1, "赵磊", "3", "新")]


async def test_team_and_branch_rankings(bot: BotKit):
    await award(bot, "zhangwei", "王芳", "A04", 7)
    await award(bot, "zhangwei", "刘洋", "A04", 10)  # 群众: counts for the team, not the branch's average
    await award(bot, "wuhao", "徐明", "A04", 2)
    teams = await bot.say("xuming", "排行 班组")
    assert ranked(teams) == [(1, "甲班", "17", "新"), (2, "乙班", "2", "新")]
    assert "乙班（你所在）" in teams
    assert "—— 你的班组：第 2 名，2 分 新" in await bot.say("xuming", "排行 班组 前1")
    # Outside a quarter's overall total it is points per party member, and says so.
    branches = await bot.say("wangfang", "排行 支部 本月")
    assert branches.startswith(f"支部人均积分排行 · {period_of('month', today(bot)).label}")
    assert ranked(branches) == [(1, "第一党支部", "1", "新"), (2, "第二党支部", "0.5", "新")]
    assert "党员 7 人，人均 1" in branches and "党员 4 人，人均 0.5" in branches
    assert "党建考评按季度计" in branches and "「考评」" in branches
    by_category = await bot.say("wangfang", "排行 支部 攻坚克难")
    assert by_category.startswith("支部人均积分排行") and "· 攻坚克难" in by_category


async def test_the_branch_ranking_of_a_quarter_is_the_assessment(make_bot):  # type: ignore[no-untyped-def]
    """排行 支部 for a quarter shows the 党建考评's scores and ranks, the numbers 考评 shows."""
    bot = await make_bot(points={"claim_backdate": True})
    quarter = period_of("quarter", today(bot))
    last = previous(quarter)
    # Last quarter 第二党支部 led; this quarter 第一党支部 does, despite the committee's +2 for 第二.
    await award(bot, "wuhao", "徐明", "A04", 6, last.last)
    await award(bot, "zhangwei", "王芳", "A04", 1, last.last)
    await award(bot, "zhangwei", "王芳", "A04", 7)
    await award(bot, "wuhao", "徐明", "A04", 2)
    assert "已记考评加分" in await bot.say("liqiang", "考评 加分 第二支部 2 承办车间党建+质量现场会")
    assessed = [(r, n, p) for r, n, p, _ in ranked(await bot.say("liqiang", "考评"))]
    branches = await bot.say("wangfang", "排行 支部")
    assert branches.startswith(f"支部党建考评排行 · {quarter.label}")
    assert [(r, n, p) for r, n, p, _ in ranked(branches)] == assessed
    assert [n for _, n, _ in assessed] == ["第一党支部", "第二党支部"]
    assert assessed[1][2] != "0.5"  # not the 人均积分 alone
    assert [c for *_, c in ranked(branches)] == ["↑1", "↓1"]  # against last quarter's 考评
    assert "第一党支部（你所在）" in branches and "与「考评」一致" in branches
    assert "党建考评按季度计" not in branches
    # The same quarter written otherwise gives the same; where my branch stands outside the top.
    assert ranked(await bot.say("wangfang", f"排行 支部 {quarter.key}")) == ranked(branches)
    second = assessed[1]
    assert f"—— 你的支部：第 2 名，{second[2]} 分 ↓1" in await bot.say("xuming", "排行 支部 前1")
    # Last quarter against 考评 上季度: nothing before it, so every branch is 新.
    before = ranked(await bot.say("wangfang", "排行 支部 上季度"))
    assert [(r, n, p) for r, n, p, _ in before] == [
        (r, n, p) for r, n, p, _ in ranked(await bot.say("liqiang", "考评 上季度"))
    ]
    assert [n for _, n, _, c in before] == ["第二党支部", "第一党支部"] and {c for *_, c in before} == {"新"}
    assert "该季度还没有党建考评得分" in await bot.say("wangfang", "排行 支部 2025Q1")


async def test_the_quarterly_branch_broadcast_posts_the_assessment(make_bot):  # type: ignore[no-untyped-def]
    schedule = {
        "name": "branch_ranking_quarterly",
        "cron": "0 0 29 2 *",
        "grace_minutes": 0,
        "job": "ranking_broadcast",
        "arguments": {"groups": ["党总支群"], "scope": "branch", "period": "previous_quarter"},
    }
    monthly = {**schedule, "name": "branch_ranking_monthly"}
    monthly["arguments"] = {**schedule["arguments"], "period": "previous_month"}
    bot = await make_bot(schedules=[*quiet_schedules(), schedule, monthly])
    quarter = period_of("quarter", today(bot))
    await award(bot, "zhangwei", "王芳", "A04", 7)
    await award(bot, "wuhao", "徐明", "A04", 2)
    assessed = ranked(await bot.say("liqiang", "考评"))
    fired = datetime.combine(quarter.end + timedelta(days=1), time(7, 23), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_ranking_quarterly", fired)
    assert result.status == "done" and "支部党建考评排行" in result.detail
    await bot.drain()
    post, picture = bot.fake.webhooks("党总支群")
    assert picture.msgtype == "image"  # the chart follows the markdown (tests/test_charts.py reads it)
    text = post.body["content"]
    assert text.startswith(f"### 支部党建考评排行 · {quarter.label}")
    for rank, name, points, _ in assessed:
        assert f'**{rank}.** {name} <font color="info">{points} 分</font>' in text
    month = period_of("month", today(bot))
    fired = datetime.combine(month.end + timedelta(days=1), time(7, 13), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_ranking_monthly", fired)
    assert result.status == "done" and "支部人均积分排行" in result.detail


async def test_the_branch_rule_comes_from_the_config(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"branch_ranking": {"rule": "total"}})
    await award(bot, "zhangwei", "王芳", "A04", 7)
    await award(bot, "zhangwei", "刘洋", "A04", 10)
    await award(bot, "wuhao", "徐明", "A04", 2)
    reply = await bot.say("wangfang", "排行 支部 本月")
    assert reply.startswith("支部积分合计排行")
    assert ranked(reply) == [
        (1, "第一党支部", "17", "新"),
        (2, "第二党支部", "2", "新"),
    ]


async def test_my_profile_shows_points_ranks_pending_and_the_last_five_entries(bot: BotKit):
    first = await claim(bot, "wangfang", "A01", "参加突击队")
    await approve(bot, "zhangwei", first)
    for indicator, points in (("A04", 2), ("D03", 2), ("K01", -2), ("B04", 5), ("C04", 3)):
        await award(bot, "zhangwei", "王芳", indicator, points)
    pending = await claim(bot, "wangfang", "A02", "牵头解决烘丝机排潮故障")
    await award(bot, "zhangwei", "赵磊", "A02", 20)
    await award(bot, "wuhao", "徐明", "A02", 15)
    me = await bot.say("wangfang", "我的")
    assert "王芳（党员）" in me  # the basics are still there
    assert f"本季度积分（{period_of('quarter', today(bot)).label}）：13 分" in me
    assert "攻坚克难 5 · 能力素质提升 5 · 岗位教练指导 3 · 企业文化 2 · 扣分项 -2" in me
    assert "排名：第一党支部第 2 名（共 2 人）、全车间第 3 名（共 3 人）" in me
    assert f"待审：#{pending} A02 牵头解决设备或工艺难题 5 分" in me
    recent = me.split("最近记分：\n")[1].split("\n待审：")[0].splitlines()
    assert len(recent) == 5
    assert "+3 C04" in recent[0] and "-2 K01" in recent[2]
    assert all(f"#{first}" not in line for line in recent)  # the oldest entry is beyond the last five
    assert "暂未上榜" in await bot.say("liuyang", "我的")


async def test_the_ranking_broadcast_posts_markdown_to_the_configured_groups(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(points={"claim_backdate": True})
    now = datetime.now(bot.app.config.tz)
    result = await bot.app.scheduler.run("ranking_monthly", now)
    last_month = previous(period_of("month", today(bot)))
    assert result.status == "done"
    assert result.detail == f"上月（{last_month.label}）还没有积分记录，没有发布排行。"
    await bot.drain()
    assert bot.fake.webhooks() == []
    await award(bot, "zhangwei", "王芳", "A04", 5, last_month.start)
    await award(bot, "wuhao", "徐明", "A04", 3, last_month.start)
    await award(bot, "zhangwei", "赵磊", "A04", 9)  # this month: not in last month's ranking
    result = await bot.app.scheduler.run("ranking_monthly", now + timedelta(minutes=1))
    assert result.status == "done"
    assert result.detail == (
        f"已把上月（{last_month.label}）的个人积分排行发到 3 个群：制丝车间群、第一支部群、第二支部群。"
    )
    await bot.drain()
    for group in ("制丝车间群", "第一支部群", "第二支部群"):
        post, picture = bot.fake.webhooks(group)
        assert (post.msgtype, picture.msgtype) == ("markdown", "image")
    text = bot.fake.webhooks("制丝车间群")[0].body["content"]
    assert text.startswith(f"### 个人积分排行 · {last_month.label}")
    assert "**1.** 王芳" in text and '<font color="info">5 分</font>' in text and "**2.** 徐明" in text
    assert "赵磊" not in text and "|" not in text  # no tables in WeCom markdown
    await bot.app.scheduler.run("team_ranking_monthly", now + timedelta(minutes=2))
    await bot.drain()
    team = bot.fake.webhooks("制丝车间群")[-2].body["content"]
    assert team.startswith("### 班组积分排行") and "**1.** 甲班" in team


async def test_the_branch_assessment_reports_the_quarter_just_ended(bot: BotKit):
    """Fired on day 10 of the next quarter, whatever today's date: the scheduled time is the job's now.
    The post is the 党建考评 (handlers/assessment.py), whose 人均积分 is this ranking's branch rule."""
    quarter = period_of("quarter", today(bot))
    await award(bot, "zhangwei", "王芳", "A04", 7)
    await award(bot, "wuhao", "徐明", "A04", 2)
    fired = datetime.combine(quarter.end + timedelta(days=9), time(9, 37), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_assessment", fired)
    assert result.status == "done" and result.detail.startswith(f"已把{quarter.label}党建考评")
    await bot.drain()
    post, _picture = bot.fake.webhooks("党总支群")
    assert post.body["content"].startswith(f"### 党建考评 · {quarter.label}")
    assert "**1.** 第一党支部" in post.body["content"] and "**2.** 第二党支部" in post.body["content"]
    assert bot.fake.webhooks("制丝车间群") == []  # the assessment goes to the committee only
    # The quarter after has nothing yet: nothing is posted.
    later = datetime.combine(quarter.end + timedelta(days=100), time(9, 37), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_assessment", later)
    assert result.status == "done" and "没有党建考评得分" in result.detail
    await bot.drain()
    assert len(bot.fake.webhooks("党总支群")) == 2


def test_the_broadcast_result_says_in_a_sentence_what_was_posted():
    config = parse_config(shipped_config(), env={})
    week = parse_period("2026W48", datetime(2026, 12, 2).date())
    assert week is not None
    assert broadcast_result(config, "previous_week", week, "", [], ["制丝车间群"]) == (
        "上周（2026年第48周）还没有积分记录，没有发布排行。"
    )
    assert broadcast_result(config, "previous_week", week, "创新", [], []) == (
        "上周（2026年第48周）还没有创新积分记录，没有发布排行。"
    )
    assert broadcast_result(
        config, "previous_week", week, "", ["member", "team"], ["制丝车间群", "党总支群"]
    ) == ("已把上周（2026年第48周）的个人积分排行、班组积分排行发到 2 个群：制丝车间群、党总支群。")
    assert "没有配置要发布的群" in broadcast_result(config, "previous_week", week, "", ["member"], [])
    assert broadcast_result(config, "previous_week", week, "", ["branch_average"], ["党总支群"]) == (
        "已把上周（2026年第48周）的支部人均积分排行发到 1 个群：党总支群。"
    )


async def test_team_sums_are_read_once_per_change_of_the_totals_or_a_team(bot: BotKit):
    """排行 班组's sums are kept under the `totals` token, which team names move too."""
    await award(bot, "zhangwei", "王芳", "A04", 7)
    seen = statements(bot)

    def sums_read() -> int:
        return sum("sum(member_totals.points_x100)" in s and "team_id" in s for s in seen)

    assert ranked(await bot.say("xuming", "排行 班组")) == [(1, "甲班", "7", "新")]
    read = sums_read()
    assert read >= 1
    assert ranked(await bot.say("xuming", "排行 班组")) == [(1, "甲班", "7", "新")]
    assert sums_read() == read  # kept: nothing changed
    await bot.query(lambda s: s.execute(text("UPDATE teams SET name = '甲一班' WHERE name = '甲班'")))
    assert ranked(await bot.say("xuming", "排行 班组")) == [(1, "甲一班", "7", "新")]
    await award(bot, "wuhao", "徐明", "A04", 2)
    assert ranked(await bot.say("xuming", "排行 班组")) == [(1, "甲一班", "7", "新"), (2, "乙班", "2", "新")]
    assert sums_read() > read


async def test_places_are_read_once_per_change_of_the_totals(bot: BotKit):
    """排行's arrows and 我的's rank come from standings kept until `member_totals` changes
    (storage/rankings.py, storage/generations.py): a second ask reads no totals, any change is seen."""
    await award(bot, "zhangwei", "王芳", "A04", 3)
    await award(bot, "zhangwei", "赵磊", "A04", 5)
    seen = statements(bot)

    def standings_read() -> int:
        return sum("member_totals.branch_id, member_totals.points_x100" in s for s in seen)

    assert "排名：第一党支部第 2 名（共 2 人）、全车间第 2 名（共 2 人）" in await bot.say("wangfang", "我的")
    read = standings_read()
    assert read >= 1
    assert "全车间第 2 名（共 2 人）" in await bot.say("wangfang", "我的")
    assert standings_read() == read  # kept: nothing changed
    # A change made outside the bot's code (an operator's UPDATE) still moves the token, and the place.
    await bot.query(
        lambda s: s.execute(text("UPDATE member_totals SET points_x100 = 900 WHERE points_x100 = 300"))
    )
    assert "排名：第一党支部第 1 名（共 2 人）、全车间第 1 名（共 2 人）" in await bot.say("wangfang", "我的")
    assert standings_read() > read
