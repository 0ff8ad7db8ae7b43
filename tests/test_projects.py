"""书记项目 from 出题 to 验收, its reminders and workbook sheet, and the quarterly 党建考评 (its rule tested
directly with the worked example of docs/configuration.md, its command, additions, broadcast and sheet),
through encrypted callbacks. Every refusal is checked to record nothing.
"""

from __future__ import annotations

import base64
import io
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from handlers.assessment import combine, rescale_factor
from handlers.assessment_config import Weighted
from handlers.periods import period_of
from storage.assessment import AssessmentAddition
from storage.items import Item
from storage.models import MediaFile
from storage.points import PointEntry
from storage.projects import Milestone, Progress, Project, ProjectMember, Topic
from tests.kit import BotKit, watch_statements
from tests.test_points import cards, item_number, today, total


async def count(bot: BotKit, model: Any) -> int:
    return await bot.query(lambda s: s.execute(select(func.count()).select_from(model)).scalar_one())


async def new_topic(bot: BotKit, extra: str = "") -> int:
    reply = await bot.say(
        "liqiang",
        "出题\n名称：提高切丝宽度合格率\n说明：切丝宽度合格率 92%，目标 98%"
        + (f"\n{extra}" if extra else ""),
    )
    assert "已发布课题" in reply, reply
    return item_number(reply)


async def take(bot: BotKit, secretary: str, topic: int) -> int:
    reply = await bot.say(secretary, f"选题 #{topic}")
    assert "已选题：书记项目" in reply, reply
    return item_number(reply)


def later(bot: BotKit, days: int) -> date:
    return today(bot) + timedelta(days=days)


async def staffed_project(bot: BotKit, members: str = "王芳、赵磊") -> tuple[int, int]:
    topic = await new_topic(bot)
    project = await take(bot, "zhangwei", topic)
    reply = await bot.say(
        "zhangwei",
        f"项目 #{project}\n成员：{members}\n"
        f"里程碑：20天后 完成切丝宽度测量\n里程碑：{later(bot, 5)} 标定刀门压力",
    )
    assert f"已更新项目 #{project}" in reply, reply
    return topic, project


# -- 出题 / 课题 / 选题 -------------------------------------------------------------------------------


async def test_a_topic_is_announced_to_the_secretaries_and_the_committee_group(bot: BotKit):
    reply = await bot.say(
        "liqiang",
        "出题\n名称：提高切丝宽度合格率\n说明：切丝宽度合格率 92%，目标 98%\n截止：2099-12-31\n积分：30",
    )
    topic = item_number(reply)
    assert reply.startswith(f"已发布课题 #{topic}《提高切丝宽度合格率》，截止 2099-12-31，30 分。")
    await bot.drain()
    for secretary in ("zhangwei", "wuhao"):
        assert any(f"选题 #{topic}" in t for t in bot.texts_to(secretary))
    [post] = bot.fake.webhooks("党总支群")
    assert post.msgtype == "markdown" and f"书记项目课题 #{topic}" in post.body["content"]
    row = await bot.query(lambda s: s.get(Topic, topic))
    assert (row.points_x100, row.deadline) == (3000, date(2099, 12, 31))
    listing = await bot.say("wangfang", "课题")
    assert f"#{topic}《提高切丝宽度合格率》30 分 截止 12-31 — 尚未有支部选题" in listing


@pytest.mark.parametrize("who", ["zhangwei", "wangfang"])
async def test_only_the_committee_sets_topics(bot: BotKit, who: str):
    reply = await bot.say(who, "出题\n名称：提高切丝宽度合格率\n说明：目标 98%")
    assert "已发布" not in reply and "出题" in reply
    assert await count(bot, Topic) == 0 and await count(bot, Item) == 0


async def test_a_topic_with_a_past_deadline_is_refused(bot: BotKit):
    reply = await bot.say("liqiang", "出题\n名称：提高切丝宽度合格率\n说明：目标 98%\n截止：2020-01-01")
    assert "截止日期已经过去" in reply
    assert await count(bot, Topic) == 0


async def test_a_secretary_takes_a_topic_once_and_one_branch_holds_it(bot: BotKit):
    topic = await new_topic(bot)
    reply = await bot.say("zhangwei", f"选题 #{topic}")
    project = item_number(reply.split("书记项目", 1)[1])
    assert f"书记项目 #{project}《提高切丝宽度合格率》，第一党支部，第一责任人 张伟" in reply
    row = await bot.query(lambda s: s.get(Project, project))
    assert row.topic_id == topic and row.leader_id is not None
    again = await bot.say("zhangwei", f"选题 #{topic}")
    assert again == f"第一党支部已经选了课题 #{topic}，项目是 #{project}，不能重复选题。"
    other = await bot.say("wuhao", f"选题 #{topic}")
    assert other == f"课题 #{topic} 已由第一党支部（张伟）选题，一个课题只能由一个支部承担。"
    member = await bot.say("wangfang", f"选题 #{topic}")
    assert "已选题" not in member
    missing = await bot.say("zhangwei", "选题 #999")
    assert missing.startswith("没有编号为 #999 的课题")
    assert await count(bot, Project) == 1
    listing = await bot.say("wuhao", "课题")
    assert f"第一党支部 张伟 项目 #{project}" in listing


async def test_several_branches_may_take_a_topic_when_configured(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(projects={"several_branches": True})
    topic = await new_topic(bot)
    await take(bot, "zhangwei", topic)
    await take(bot, "wuhao", topic)
    assert await count(bot, Project) == 2


# -- 项目 / 进展 / 完成 ----------------------------------------------------------------------------------


async def test_the_leader_sets_members_and_several_milestones_and_everyone_sees_the_project(bot: BotKit):
    _, project = await staffed_project(bot)
    steps = await bot.query(
        lambda s: (
            s.execute(select(Milestone).where(Milestone.project_id == project).order_by(Milestone.seq))
            .scalars()
            .all()
        )
    )
    assert [(m.seq, m.title, m.due) for m in steps] == [
        (1, "标定刀门压力", later(bot, 5)),
        (2, "完成切丝宽度测量", later(bot, 20)),
    ]
    await bot.drain()
    assert any(f"书记项目 #{project}" in t for t in bot.texts_to("wangfang"))
    view = await bot.say("xuming", f"项目 #{project}")
    assert "第一党支部 · 第一责任人 张伟" in view and "成员：王芳、赵磊" in view
    assert f"1. {later(bot, 5)} 标定刀门压力 — 未完成，还有 5 天" in view


async def test_a_misspelt_member_gets_a_did_you_mean_and_nothing_is_saved(bot: BotKit):
    topic = await new_topic(bot)
    project = await take(bot, "zhangwei", topic)
    reply = await bot.say("zhangwei", f"项目 #{project}\n成员：王芳、周洁\n里程碑：{later(bot, 9)} 测量")
    assert reply.startswith("没有保存：找不到成员「周洁」。你是不是想写：") and "周杰" in reply
    assert await count(bot, ProjectMember) == 0 and await count(bot, Milestone) == 0


def statements(bot: BotKit) -> list[str]:
    """Every SQL statement the bot runs from now on, on any of its engines (writer and readers)."""
    seen: list[str] = []
    watch_statements(bot, lambda sql, _params: seen.append(sql))
    return seen


async def test_the_assessment_is_reused_until_a_table_it_reads_changes(bot: BotKit):
    await bot.say("zhangwei", "加分 王芳 A04 5 国庆保产")
    seen = statements(bot)
    first = await bot.say("liqiang", "考评")
    computed = len(seen)
    assert first == await bot.say("liqiang", "考评")

    def components(sql: list[str]) -> list[str]:  # the averages' and the coverage's reads
        return [s for s in sql if "FROM member_totals" in s or "FROM skill_levels" in s]

    assert len(components(seen[:computed])) >= 2
    assert components(seen[computed:]) == []  # the second time, none of it ran again

    await bot.say("zhangwei", "加分 孙丽 A04 5 国庆保产")  # a ledger line: 第一党支部's average moves
    after = await bot.say("liqiang", "考评")
    assert after != first and "党员人均积分" in after
    await bot.query(
        lambda s: s.execute(text("UPDATE members SET political_status = '群众' WHERE userid = 'sunli'"))
    )
    assert await bot.say("liqiang", "考评") != after  # a plain UPDATE outside the bot's code moves it too


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("里程碑：明年 测量", "要先写日期"),
        ("里程碑：2020-01-02 测量宽度", "已经过去"),
        ("目标：98%", "看不懂"),
    ],
)
async def test_bad_milestones_are_refused_and_nothing_is_saved(bot: BotKit, line: str, says: str):
    topic = await new_topic(bot)
    project = await take(bot, "zhangwei", topic)
    reply = await bot.say("zhangwei", f"项目 #{project}\n{line}")
    assert reply.startswith("没有保存") and says in reply
    assert await count(bot, Milestone) == 0


async def test_only_the_leader_changes_the_project(bot: BotKit):
    _, project = await staffed_project(bot)
    reply = await bot.say("wangfang", f"项目 #{project}\n成员：王芳")
    assert reply == f"只有项目 #{project} 的第一责任人可以设置成员和里程碑。"
    assert await count(bot, ProjectMember) == 2


async def test_members_report_progress_with_photos_and_outsiders_cannot(bot: BotKit):
    _, project = await staffed_project(bot)
    reply = await bot.say("wangfang", f"进展 #{project} 完成3台切丝机刀门压力标定，波动降到±0.1MPa")
    assert reply.startswith(f"已记录项目 #{project} 的进展")
    photo = await bot.image("wangfang")
    assert photo == f"已附到项目 #{project} 的进展。"
    [entry] = await bot.query(lambda s: s.execute(select(Progress)).scalars().all())
    files = await bot.query(
        lambda s: s.execute(select(func.count()).where(MediaFile.ref == f"progress:{entry.id}")).scalar_one()
    )
    assert files == 1
    await bot.drain()
    assert any("完成3台切丝机" in t for t in bot.texts_to("zhangwei"))
    outsider = await bot.say("xuming", f"进展 #{project} 我也来帮忙测量")
    assert outsider.startswith(f"你不是项目 #{project} 的成员")
    assert await count(bot, Progress) == 1
    view = await bot.say("zhangwei", f"项目 #{project}")
    assert "王芳：完成3台切丝机刀门压力标定" in view and "（图 1）" in view


async def test_the_leader_marks_a_milestone_done(bot: BotKit):
    _, project = await staffed_project(bot)
    refused = await bot.say("wangfang", f"完成 #{project} 1")
    assert refused == f"只有项目 #{project} 的第一责任人可以标记里程碑完成。"
    wrong = await bot.say("zhangwei", f"完成 #{project} 7")
    assert wrong.startswith(f"请写里程碑序号，例：完成 #{project} 1")
    assert await bot.query(lambda s: s.execute(select(Milestone.done_at)).scalars().all()) == [None, None]
    reply = await bot.say("zhangwei", f"完成 #{project} 1")
    assert reply == f"已标记项目 #{project} 里程碑 1「标定刀门压力」完成。还有 1 个未完成。"
    again = await bot.say("zhangwei", f"完成 #{project} 1")
    assert "已于" in again


# -- 结题 / 验收 -------------------------------------------------------------------------------------


async def test_closing_is_accepted_by_the_committee_and_pays_the_team_by_the_split(bot: BotKit):
    _, project = await staffed_project(bot)
    await bot.say("zhangwei", f"完成 #{project} 1")
    refused = await bot.say("wangfang", f"结题 #{project}\n成果：切丝宽度合格率 92%→98%")
    assert refused == f"只有项目 #{project} 的第一责任人可以申请结题。"
    assert await count(bot, Item) == 2  # the topic and the project
    reply = await bot.say(
        "zhangwei", f"结题 #{project}\n成果：切丝宽度合格率 92%→98%\n说明：刀门压力标定纳入周保养"
    )
    closing = item_number(reply.split("结题", 1)[1])
    # 20 points, leader 40 % = 8, the other 12 shared by two = 6 each; one milestone × 2 to everyone.
    assert "张伟 10、王芳 8、赵磊 8（含里程碑 1 个 × 2 分）" in reply and "李强" in reply
    again = await bot.say("zhangwei", f"结题 #{project}\n成果：再交一次")
    assert again == f"项目 #{project} 待验收（#{closing}），不能重复申请结题。"
    await bot.drain()
    [card] = cards(bot, "liqiang")
    labels = [b["text"] for b in card["button_list"]]
    assert labels == ["验收通过", "退回"]
    secretary = await bot.say("wuhao", f"通过 #{closing}")
    assert "已通过" not in secretary
    await bot.say("liqiang", f"通过 #{closing}")
    assert await total(bot, "zhangwei") == 1000
    assert await total(bot, "wangfang") == 800 and await total(bot, "zhaolei") == 800
    lines = await bot.query(
        lambda s: s.execute(select(PointEntry).where(PointEntry.item_id == closing)).scalars().all()
    )
    assert {(e.category, e.indicator) for e in lines} == {("A", "A03")} and all(e.approver_id for e in lines)
    view = await bot.say("zhangwei", f"项目 #{project}")
    assert f"· 已验收 #{closing}" in view
    after = await bot.say("wangfang", f"进展 #{project} 继续跟踪")
    assert after == f"项目 #{project} 已验收，不能再记录进展。"


async def test_sending_back_reopens_the_project(bot: BotKit):
    _, project = await staffed_project(bot)
    first = item_number(
        (await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→95%")).split("结题", 1)[1]
    )
    reply = await bot.say("liqiang", f"驳回 #{first} 未达到 98% 的目标，请继续攻关")
    assert reply.startswith(f"已驳回 #{first}")
    assert "· 进行中" in await bot.say("zhangwei", f"项目 #{project}")
    assert (await bot.say("wangfang", f"进展 #{project} 调整磨刀周期后复测")).startswith("已记录")
    second = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%")
    assert "已提交结题" in second
    assert await total(bot, "zhangwei") == 0


async def test_nobody_accepts_a_project_they_are_on(bot: BotKit):
    _, project = await staffed_project(bot, members="王芳、李强")
    reply = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%")
    closing = item_number(reply.split("结题", 1)[1])
    own = await bot.say("liqiang", f"通过 #{closing}")
    assert own.startswith(f"#{closing} 是你所在项目组的结题，不能由你验收")
    assert await total(bot, "liqiang") == 0 and await total(bot, "zhangwei") == 0
    status = await bot.query(lambda s: s.get(Item, closing).status)
    assert status == "pending"


async def test_the_leader_proposes_the_split_when_configured(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(projects={"split": "proposed", "milestone_points": 0})
    _, project = await staffed_project(bot)
    missing = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%")
    assert "请加一行「分配：" in missing
    wrong = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%\n分配：张伟 10、王芳 5、赵磊 4")
    assert wrong.startswith("分配合计 19 分，应等于课题积分 20 分")
    stranger = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%\n分配：张伟 10、徐明 10")
    assert stranger == f"徐明不是项目 #{project} 的成员，不能参与分配。"
    assert (
        await bot.query(lambda s: s.execute(select(func.count()).where(Item.kind == "结题")).scalar_one())
        == 0
    )
    reply = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%\n分配：张伟 6、王芳 9、赵磊 5")
    closing = item_number(reply.split("结题", 1)[1])
    await bot.say("liqiang", f"通过 #{closing}")
    assert [await total(bot, u) for u in ("zhangwei", "wangfang", "zhaolei")] == [600, 900, 500]


# -- reminders ---------------------------------------------------------------------------------------


async def test_reminders_before_on_the_day_overdue_and_idle(bot: BotKit):
    _, project = await staffed_project(bot)
    tz = bot.app.config.tz
    monday = later(bot, 30)
    monday -= timedelta(days=monday.weekday())
    # 3 days before milestone 1 (due in 5 days): the whole team.
    result = await bot.app.scheduler.run(
        "project_reminders", datetime.combine(later(bot, 2), time(8, 27), tz)
    )
    assert result.status == "done" and result.detail.startswith("已发 3 条里程碑提醒")
    await bot.drain()
    for who in ("zhangwei", "wangfang", "zhaolei"):
        assert any("「标定刀门压力」还有 3 天（" in t for t in bot.texts_to(who))
    # Overdue on a Monday past both: the leader, and the committee's group.
    result = await bot.app.scheduler.run("project_reminders", datetime.combine(monday, time(8, 27), tz))
    assert result.detail.endswith("逾期 2 个里程碑已发到 党总支群。")
    await bot.drain()
    assert any("已逾期" in t for t in bot.texts_to("zhangwei"))
    assert not any("已逾期" in t for t in bot.texts_to("wangfang"))
    post = bot.fake.webhooks("党总支群")[-1].body["content"]
    assert post.startswith("### 书记项目逾期里程碑") and f"#{project}" in post
    # 14 days without progress: the leader.
    idle = datetime.combine(today(bot) + timedelta(days=14), time(8, 27), tz)
    result = await bot.app.scheduler.run("project_reminders", idle)
    assert "1 条无进展提醒" in result.detail
    await bot.drain()
    assert any("已有 14 天没有记录进展" in t for t in bot.texts_to("zhangwei"))


# -- 党建考评: the rule ------------------------------------------------------------------------------

WEIGHTS = [
    Weighted(key="average_points", weight=40, scale="relative"),
    Weighted(key="projects_accepted", weight=20, scale="relative"),
    Weighted(key="training_coverage", weight=15, scale="rate"),
    Weighted(key="publicity_quota", weight=10, scale="rate"),
    Weighted(key="activity_attendance", weight=15, scale="rate"),
    Weighted(key="additions", weight=1, scale="direct"),
]
BRANCHES = [(1, "第一党支部"), (2, "第二党支部")]


def test_the_worked_example_of_the_documentation_with_three_components_not_installed():
    """docs/configuration.md: 人均 12.5 / 10, projects 2 / 1, additions +3 / 0; 60 of 100 registered."""
    values = {
        "average_points": {1: 12.5, 2: 10.0},
        "projects_accepted": {1: 2.0, 2: 1.0},
        "additions": {1: 3.0},
    }
    assert rescale_factor(WEIGHTS, list(values)) == pytest.approx(100 / 60)
    first, second = combine(WEIGHTS, values, BRANCHES, {})
    assert (first.name, first.score, first.rank) == ("第一党支部", 103.0, 1)
    assert (second.name, second.score, second.rank) == ("第二党支部", 70.0, 2)
    assert [p.points for p in second.parts] == [53.33, 16.67, 0.0, 0.0, 0.0, 0.0]
    assert [p.value for p in second.parts][2:5] == [None, None, None]  # 未接入


def test_the_worked_example_with_every_component_installed():
    values = {
        "average_points": {1: 12.5, 2: 10.0},
        "projects_accepted": {1: 2.0, 2: 1.0},
        "training_coverage": {1: 0.8, 2: 1.2},
        "publicity_quota": {1: 0.5, 2: 1.0},
        "activity_attendance": {1: 0.9, 2: 0.6},
        "additions": {1: 3.0, 2: -1.0},
    }
    first, second = combine(WEIGHTS, values, BRANCHES, {})
    # 第一: 40 + 20 + 12 + 5 + 13.5 + 3 = 93.5; 第二: 32 + 10 + 15 (capped at 100 %) + 10 + 9 - 1 = 75
    assert (first.score, second.score) == (93.5, 75.0)


def test_ties_share_a_rank_and_nothing_to_compare_scores_zero():
    values = {"average_points": {1: 0.0, 2: 0.0}, "projects_accepted": {}, "additions": {}}
    first, second = combine(WEIGHTS, values, BRANCHES, {})
    assert (first.score, first.rank, second.score, second.rank) == (0.0, 1, 0.0, 1)


# -- 党建考评: through the bot -----------------------------------------------------------------------


async def test_assessment_shows_components_and_secretaries_see_their_own_line(bot: BotKit):
    await bot.say("zhangwei", "加分 王芳 A04 5 国庆保产")
    reply = await bot.say("liqiang", "考评 加分 第一支部 3 承办车间党建+质量现场会")
    addition = item_number(reply)
    assert reply.startswith(f"已记考评加分 #{addition}：第一党支部 +3 分")
    shown = await bot.say("liqiang", "考评")
    quarter = period_of("quarter", today(bot))
    assert shown.startswith(f"党建考评 · {quarter.label}")
    assert "1. 第一党支部" in shown and "2. 第二党支部" in shown
    assert "考评加分 +3分→3" in shown
    # Every component is registered by its practice: nothing is 未接入.
    for label in ("以技带岗覆盖率", "宣传录用完成率", "活动出勤率"):
        assert label in shown
    assert "未接入" not in shown
    own = await bot.say("wuhao", "考评 本季度")
    assert "第二党支部" in own and "第一党支部" not in own and "共 2 个支部参评" in own
    taken = await bot.say("liqiang", "考评 扣分 第二党支部 1 三会一课记录不全")
    assert "第二党支部 -1 分" in taken and "考评加分 -1分→-1" in await bot.say("liqiang", "考评")
    # 撤销 with a reason voids the addition: it no longer counts.
    await bot.say("liqiang", f"撤销 #{addition} 重复记录")
    assert "考评加分 0分→0" in await bot.say("liqiang", "考评")


@pytest.mark.parametrize(
    ("who", "text", "says"),
    [
        ("zhangwei", "考评 加分 第一党支部 3 承办现场会", "只能由党总支委员记录"),
        ("liqiang", "考评 加分 第三支部 3 承办现场会", "没有「第三支部」这个支部。你是不是想写："),
        ("liqiang", "考评 加分 第一党支部 30 承办现场会", "分值应在 ±10 分以内"),
        ("liqiang", "考评 加分 第一党支部 3", "请写支部、分值和说明"),
        ("liqiang", "考评 2026-11", "不是季度"),
    ],
)
async def test_assessment_refusals_record_nothing(bot: BotKit, who: str, text: str, says: str):
    reply = await bot.say(who, text)
    assert says in reply, reply
    assert await count(bot, AssessmentAddition) == 0 and await count(bot, Item) == 0


async def test_members_cannot_see_the_assessment(bot: BotKit):
    reply = await bot.say("wangfang", "考评")
    assert "党建考评 ·" not in reply


async def test_the_quarterly_job_posts_markdown_and_a_png_table(bot: BotKit):
    quarter = period_of("quarter", today(bot))
    await bot.say("zhangwei", "加分 王芳 A04 7 国庆保产")
    fired = datetime.combine(quarter.end + timedelta(days=9), time(9, 37), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_assessment", fired)
    assert result.detail == f"已把{quarter.label}党建考评（文字和表格图片）发到 1 个群：党总支群。"
    await bot.drain()
    text, picture = bot.fake.webhooks("党总支群")
    assert text.msgtype == "markdown" and text.body["content"].startswith(f"### 党建考评 · {quarter.label}")
    assert "**1.** 第一党支部" in text.body["content"]
    assert picture.msgtype == "image"
    assert base64.b64decode(picture.body["base64"]).startswith(b"\x89PNG")
    nothing = datetime.combine(quarter.end + timedelta(days=100), time(9, 37), bot.app.config.tz)
    result = await bot.app.scheduler.run("branch_assessment", nothing)
    assert "没有党建考评得分，没有发布" in result.detail


async def test_the_workbook_gains_the_project_and_assessment_sheets(bot: BotKit):
    _, project = await staffed_project(bot)
    await bot.say("liqiang", "考评 加分 第二党支部 2 承办现场会")
    await bot.say("liqiang", "导出")
    await bot.drain()
    [sent] = bot.sent_to("liqiang", "file")
    data, _ = bot.fake.media(sent.body["media_id"])
    wb = load_workbook(io.BytesIO(data))
    assert "书记项目" in wb.sheetnames and "党建考评" in wb.sheetnames
    rows = list(wb["书记项目"].iter_rows(values_only=True))
    assert rows[1][0] == f"#{project}" and rows[1][5] == "0/2" and rows[1][7] == "进行中"
    scores = list(wb["党建考评"].iter_rows(values_only=True))
    assert scores[0][:4] == ("名次", "支部", "党员人均积分", "党员人均积分得分")
    assert scores[1][1] == "第二党支部" and scores[1][-1] == 2


async def test_voiding_an_accepted_closing_reverses_the_points_and_reopens_the_project(bot: BotKit):
    _, project = await staffed_project(bot)
    reply = await bot.say("zhangwei", f"结题 #{project}\n成果：合格率 92%→98%")
    closing = item_number(reply)
    await bot.say("liqiang", f"通过 #{closing}")
    assert await total(bot, "zhangwei") == 800
    voided = await bot.say("liqiang", f"撤销 #{closing} 复核发现合格率数据取样不足")
    assert voided.startswith(f"已作废 #{closing}")
    assert await total(bot, "zhangwei") == 0 and await total(bot, "wangfang") == 0
    assert "· 进行中" in await bot.say("zhangwei", f"项目 #{project}")


async def test_topics_and_projects_are_not_decided_or_voided(bot: BotKit):
    topic, project = await staffed_project(bot)
    for number in (topic, project):
        reply = await bot.say("liqiang", f"撤销 #{number} 不需要了")
        assert reply.startswith(f"#{number} 是") and "不需要审核，也不能撤销" in reply
        assert "不需要审核" in await bot.say("liqiang", f"通过 #{number}")
    statuses = await bot.query(lambda s: s.execute(select(Item.status)).scalars().all())
    assert set(statuses) == {"approved"}


async def test_my_projects_show_in_my_profile(bot: BotKit):
    _, project = await staffed_project(bot)
    mine = await bot.say("wangfang", "我的")
    assert "—— 书记项目" in mine
    assert f"#{project}《提高切丝宽度合格率》成员 · 进行中，下个里程碑" in mine and "标定刀门压力" in mine
    assert "书记项目" not in await bot.say("xuming", "我的")


def test_without_a_chinese_font_the_picture_fails_naming_the_debian_package(monkeypatch):  # type: ignore[no-untyped-def]
    from handlers import charts

    charts.font_file.cache_clear()
    charts.font.cache_clear()
    monkeypatch.setattr(charts.shutil, "which", lambda _name: None)  # no fontconfig to ask
    monkeypatch.setattr(charts, "_KNOWN_FONTS", ("/nonexistent/NoSuchFont.ttc",))
    try:
        with pytest.raises(charts.ChartError, match="fonts-noto-cjk"):
            charts.table_png("党建考评", ["支部"], [["第一党支部"]])
    finally:
        monkeypatch.undo()
        charts.font_file.cache_clear()
        charts.font.cache_clear()
    assert charts.table_png("党建考评", ["支部"], [["第一党支部"]]).startswith(b"\x89PNG")
