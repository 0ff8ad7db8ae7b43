"""以技带岗 and 多能工 through encrypted callbacks: three-step training confirmed by the trainee, 定级 with
its history, a member's row, the team matrix as text and picture, gaps, the weekly and reminder jobs,
the workbook sheets, the member import's `post` column and the coverage measure for the assessment.

The cast's levels are the demo's (`bot/simulator/skills.csv`): 赵磊 is O in 切叶丝岗, 陈静 I, 王芳 L.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.members import MEMBER_HEADER, import_members
from handlers.skills import import_levels
from storage import skills as skill_store
from storage.models import AuditLog, Member, SkillLevel
from storage.points import PointEntry
from storage.skills import SkillChange, TrainingStep
from tests.kit import ROOT, BotKit
from tests.test_export import received_workbook, rows
from tests.test_points import cards, item_number
from tests.test_projects import statements

LEVELS = (ROOT / "bot" / "simulator" / "skills.csv").read_text(encoding="utf-8")


@pytest.fixture
async def sbot(bot: BotKit) -> BotKit:
    report = await bot.query(lambda s: import_levels(s, bot.app.config, LEVELS, actor="test"))
    assert not report.problems
    return bot


@dataclass(frozen=True)
class Recorded:
    steps: int
    changes: int
    entries: int


async def recorded(bot: BotKit) -> Recorded:
    def read(s: Session) -> Recorded:
        return Recorded(
            s.execute(select(func.count()).select_from(TrainingStep)).scalar_one(),
            s.execute(select(func.count()).select_from(SkillChange)).scalar_one(),
            s.execute(select(func.count()).select_from(PointEntry)).scalar_one(),
        )

    return await bot.query(read)


async def level_of(bot: BotKit, userid: str, skill: str) -> str:
    def read(s: Session) -> str:
        member = s.execute(select(Member.id).where(Member.userid == userid)).scalar_one()
        found = s.get(SkillLevel, (member, skill))
        return found.level if found else "0"

    return await bot.query(read)


async def entries(bot: BotKit, userid: str) -> list[tuple[str, int, int | None]]:
    def read(s: Session) -> list[tuple[str, int, int | None]]:
        stmt = (
            select(PointEntry.indicator, PointEntry.points_x100, PointEntry.approver_id)
            .join(Member, Member.id == PointEntry.member_id)
            .where(Member.userid == userid)
            .order_by(PointEntry.id)
        )
        return [tuple(r) for r in s.execute(stmt).all()]  # type: ignore[misc]

    return await bot.query(read)


async def step(bot: BotKit, text_: str, coach: str = "zhaolei") -> int:
    reply = await bot.say(coach, text_)
    assert "已记录带教" in reply, reply
    return item_number(reply)


async def confirm(bot: BotKit, number: int, trainee: str = "chenjing") -> str:
    reply = await bot.say(trainee, f"确认 #{number}")
    assert f"已确认 #{number}" in reply, reply
    return reply


# -- 带教 and 确认 ------------------------------------------------------------------------------------


async def test_a_step_reaches_the_trainee_as_a_card_to_confirm_and_counts_once_confirmed(sbot: BotKit):
    n = await step(sbot, "带教 陈静 切丝 1")
    await sbot.drain()
    [card] = [c for c in cards(sbot, "chenjing") if str(n) in c["main_title"]["title"]]
    assert card["main_title"]["title"] == f"带教记录 #{n} 请确认"
    facts = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
    assert facts["技能"] == "切叶丝岗" and facts["师傅"] == "赵磊" and "我来做你来看" in facts["步骤"]
    assert [b["key"] for b in card["button_list"]] == [f"confirm:{n}"]
    assert "还没有确认" in await sbot.say("zhaolei", "带教 陈静 切丝 2\n点评：刀门压力没核对")
    assert f"待确认的带教：#{n} 陈静 切叶丝岗 第一步 我来做你来看" in await sbot.say("chenjing", "我的")
    await sbot.app.scheduler.run("pending_digest", datetime.now(sbot.app.config.tz))
    await sbot.drain()
    assert not [t for t in sbot.texts_to("chenjing") if "待审提醒" in t]  # trainees are no approvers
    passive = await sbot.click("chenjing", f"confirm:{n}")
    assert passive is not None and passive.replace_button.startswith("已确认 · 陈静")
    status = await sbot.query(lambda s: s.execute(text(f"SELECT status FROM items WHERE id = {n}")).scalar())
    assert status == "approved"
    assert "待确认的带教" not in await sbot.say("chenjing", "我的")
    m = await step(sbot, "带教\n学员：陈静\n技能：切叶丝岗\n步骤：指导\n点评：下刀前没有确认来料水分")
    assert m > n


async def test_three_steps_passed_raise_the_trainee_and_pay_coach_and_new_certification(sbot: BotKit):
    # Round one: I → L; the coach is paid, L is no certification.
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 1"))
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 2 点评：刀门间隙没复核"))
    second = await step(sbot, "带教 陈静 切丝 2 点评：换刀后没有试切")
    assert await sbot.query(lambda s: s.get(TrainingStep, second).attempt) == 2  # step 2 repeats, counted
    await confirm(sbot, second)
    exam = await step(sbot, "带教 陈静 切丝 3 成绩：85")
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "I"  # counts only once confirmed
    await confirm(sbot, exam)
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "L"
    assert await entries(sbot, "zhaolei") == [("C02", 200, await member_id(sbot, "chenjing"))]
    assert await entries(sbot, "chenjing") == []
    # Round two: L → U, a new certification: the trainee gets B03 3 分.
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 示范"))
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 指导 点评：断料处理慢"))
    failed = await step(sbot, "带教 陈静 切丝 考核 成绩：不合格")
    await confirm(sbot, failed)
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "L"  # a failed exam raises nothing
    passed = await step(sbot, "带教 陈静 切丝 3 成绩：合格")
    await confirm(sbot, passed)
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "U"
    assert [e[:2] for e in await entries(sbot, "chenjing")] == [("B03", 300)]
    assert len(await entries(sbot, "zhaolei")) == 2
    # Never above U by training alone.
    reply = await sbot.say("zhaolei", "带教 陈静 切丝 1")
    assert "最高到 U 级" in reply and "定级" in reply
    history = await sbot.say("chenjing", "技能 陈静")
    assert "切叶丝岗 L → U 带教" in history and "师傅 赵磊" in history


async def member_id(bot: BotKit, userid: str) -> int:
    return await bot.query(lambda s: s.execute(select(Member.id).where(Member.userid == userid)).scalar_one())


REFUSALS = [
    # (who, what, words in the answer)
    ("wangfang", "带教 陈静 切丝 1", "需要你在该岗位达到 U 级"),  # 王芳 is L in 切叶丝岗
    ("zhaolei", "带教 赵磊 切丝 1", "不能给自己带教"),
    ("zhaolei", "带教 陈静 切丝 2 点评：没有核对", "还没有第一步"),
    ("zhaolei", "带教 陈静 切丝 3 成绩：90", "还没有完成第二步"),
    ("zhaolei", "带教 陈静 切丝 2", "第二步（指导）必须写点评"),
    ("zhaolei", "带教 陈静 切丝 3", "第三步（考核）必须写成绩"),
    ("zhaolei", "带教 陈静 切丝 9", "应写 1、2、3"),
    ("zhaolei", "带教 陈静 切丝机 1", "你是不是想写：切叶丝岗"),
    ("zhaolei", "带教 陈晶 切丝 1", "你是不是想写：陈静"),
]


@pytest.mark.parametrize(("who", "what", "words"), REFUSALS)
async def test_each_training_refusal_says_why_and_records_nothing(
    sbot: BotKit, who: str, what: str, words: str
):
    before = await recorded(sbot)
    reply = await sbot.say(who, what)
    assert words in reply, reply
    assert await recorded(sbot) == before
    await sbot.say(who, "取消")


async def test_only_the_trainee_confirms(sbot: BotKit):
    n = await step(sbot, "带教 陈静 切丝 1")
    for other in ("wangfang", "zhaolei", "zhangwei"):
        reply = await sbot.say(other, f"确认 #{n}")
        assert "只能由学员确认" in reply, reply
    passive = await sbot.click("wangfang", f"confirm:{n}")
    assert passive is not None and "只能由学员确认" in passive.text
    status = await sbot.query(lambda s: s.execute(text(f"SELECT status FROM items WHERE id = {n}")).scalar())
    assert status == "pending"
    assert "没有等你确认的带教记录" in await sbot.say("chenjing", "确认 #999")


async def test_a_step_unconfirmed_for_a_day_reminds_the_trainee_once(sbot: BotKit):
    n = await step(sbot, "带教 陈静 切丝 1")
    now = datetime.now(sbot.app.config.tz)
    early = await sbot.app.scheduler.run("training_reminders", now + timedelta(hours=2))
    assert "没有超过一天" in early.detail
    result = await sbot.app.scheduler.run("training_reminders", now + timedelta(hours=25))
    assert "已提醒 1 条" in result.detail
    await sbot.drain()
    reminders = [t for t in sbot.texts_to("chenjing") if t.startswith("提醒") and f"#{n}" in t]
    assert len(reminders) == 1
    again = await sbot.app.scheduler.run("training_reminders", now + timedelta(hours=49))
    assert "没有超过一天" in again.detail


# -- 定级 and 技能 ------------------------------------------------------------------------------------


async def test_a_team_leader_rates_their_team_with_an_audited_history(sbot: BotKit):
    reply = await sbot.say("zhoujie", "定级 王芳 切丝 U 经车间实操考核认定")
    assert "已定级：王芳 切叶丝岗 L → U" in reply
    assert await level_of(sbot, "wangfang", "切叶丝岗") == "U"
    await sbot.drain()
    assert any("周杰将你的切叶丝岗 L → U" in t for t in sbot.texts_to("wangfang"))
    audit = await sbot.query(
        lambda s: s.execute(
            select(AuditLog.actor, AuditLog.detail).where(AuditLog.action == "skill.定级")
        ).all()
    )
    assert [tuple(a) for a in audit] == [("zhoujie", "切叶丝岗: L → U（经车间实操考核认定）")]
    history = await sbot.say("wangfang", "技能 王芳")
    assert "切叶丝岗 L → U 定级 · 周杰 · 经车间实操考核认定" in history
    assert "◕ 切叶丝岗 U" in history


@pytest.mark.parametrize(
    ("who", "what", "words"),
    [
        ("maqiang", "定级 陈静 切丝 U", "不在你的班组"),  # team leader of 乙班
        ("wuhao", "定级 陈静 切丝 U", "第一党支部的成员"),  # secretary of the other branch
        ("zhoujie", "定级 周杰 切丝 U", "不能给自己定级"),
        ("zhoujie", "定级 陈静 切丝 X", "应写 I、L、U、O"),
        ("zhoujie", "定级 陈静 切叶 U", "你是不是想写：切叶丝岗"),
        ("zhoujie", "定级 陈静 切丝 I", "已经是 I 级"),
        ("chenjing", "定级 刘洋 切丝 U", "班组长"),
    ],
)
async def test_each_rating_refusal_records_nothing(sbot: BotKit, who: str, what: str, words: str):
    before = await recorded(sbot)
    reply = await sbot.say(who, what)
    assert words in reply, reply
    assert await recorded(sbot) == before
    await sbot.say(who, "取消")


async def test_my_row_shows_levels_with_labels_and_targets(sbot: BotKit):
    reply = await sbot.say("wangfang", "技能")
    assert reply.startswith("王芳的技能（本岗位：叶丝干燥岗）")
    assert "◕ 叶丝干燥岗 U 可独立上岗（计入覆盖）" in reply
    assert "◑ 切叶丝岗 L 可在监护下操作" in reply
    assert "技能：切叶丝 L、叶丝干燥 U" in await sbot.say("wangfang", "我的")


async def test_the_team_matrix_comes_as_a_table_and_a_picture(sbot: BotKit):
    reply = await sbot.say("zhoujie", "技能 班组")
    assert reply.startswith("甲班多能工训练表")
    assert "\n切叶丝岗 1/4 ⚠：赵磊● 王芳◑ 陈静◔\n" in reply  # highest first
    assert "\n气流烘丝岗 0/4 ⚠：无人\n" in reply
    await sbot.drain()
    [image] = sbot.sent_to("zhoujie", "image")
    data, filename = sbot.fake.media(image.body["media_id"])
    assert filename == "甲班多能工训练表.png"
    picture = PILImage.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.width > 400 and picture.height > 300
    assert len(data) < 2 * 1024 * 1024
    assert "需要是该班组的班组长" in await sbot.say("chenjing", "技能 甲班")
    assert "需要是该班组的班组长" in await sbot.say("maqiang", "技能 甲班")
    assert "甲班多能工训练表" in await sbot.say("zhangwei", "技能 甲班")


async def test_the_matrix_is_read_once_per_change_of_a_level_a_member_or_a_team(sbot: BotKit):
    """A team's matrix is kept under the `skills` token (storage/skills.py): asked again it reads no
    levels; a 定级, a member's change and a team's change are each seen at the next ask."""
    seen = statements(sbot)

    def levels_read() -> int:
        return sum("FROM skill_levels" in s and "skill_levels.updated_at" in s for s in seen)

    first = await sbot.say("zhoujie", "技能 班组")
    read = levels_read()
    assert read >= 1 and "\n切叶丝岗 1/4 ⚠：赵磊● 王芳◑ 陈静◔\n" in first
    assert await sbot.say("zhoujie", "技能 班组") == first
    assert levels_read() == read  # kept: nothing changed

    async def asked_after(change: Any) -> str:
        await change()
        before = levels_read()
        reply = await sbot.say("zhoujie", "技能 班组")
        assert levels_read() > before  # read again
        return reply

    async def rated() -> None:
        assert "王芳 切叶丝岗 L → U" in await sbot.say("zhoujie", "定级 王芳 切丝 U 经车间实操考核认定")

    async def sql(statement: str) -> None:
        await sbot.query(lambda s: s.execute(text(statement)))

    assert "\n切叶丝岗 2/4 ⚠：赵磊● 王芳◕ 陈静◔\n" in await asked_after(rated)
    renamed = await asked_after(lambda: sql("UPDATE members SET name = '王芳芳' WHERE userid = 'wangfang'"))
    assert "赵磊● 王芳芳◕ 陈静◔" in renamed
    moved = await asked_after(lambda: sql("UPDATE teams SET name = '甲一班' WHERE name = '甲班'"))
    assert moved.startswith("甲一班多能工训练表")
    await sbot.drain()
    pictures = [sbot.fake.media(m.body["media_id"])[0] for m in sbot.sent_to("zhoujie", "image")]
    assert len(pictures) == 5 and pictures[0] == pictures[1] and len(set(pictures)) == 4


async def test_a_big_team_gets_counts_per_post_and_the_names_in_the_picture(sbot: BotKit):
    header = ",".join(MEMBER_HEADER + ["post"])
    people = "\n".join(f"w{i:02d},工人{i:02d},第一党支部,甲班,第一党小组,,群众,,切叶丝岗" for i in range(30))
    levels = "\n".join(f"w{i:02d},切叶丝岗,{'OULI'[i % 4]}" for i in range(30))
    report = await sbot.query(lambda s: import_members(s, f"{header}\n{people}\n", actor="test"))
    assert not report.problems
    report = await sbot.query(
        lambda s: import_levels(s, sbot.app.config, f"userid,skill,level\n{levels}\n", actor="test")
    )
    assert not report.problems
    reply = await sbot.say("zhoujie", "技能 班组")
    team = reply.splitlines()
    assert team[0].startswith("甲班多能工训练表（") and "人，名单见下图" in team[0]
    assert "切叶丝岗 17/4：●O 9 · ◕U 8 · ◑L 8 · ◔I 8" in team  # 赵磊 O, 王芳 L, 陈静 I and the thirty
    assert "气流烘丝岗 0/4 ⚠：无人" in team
    assert "工人" not in reply and "赵磊" not in reply
    await sbot.drain()
    [image] = sbot.sent_to("zhoujie", "image")
    picture = PILImage.open(io.BytesIO(sbot.fake.media(image.body["media_id"])[0]))
    assert picture.height > 30 * 20  # a row per person
    await age_level(sbot, "sunli", "中控室岗", 400)  # 孙丽's U lapses (recert_days: 365)
    assert "中控室岗 0/4 ⚠：⊘过期 1" in (await sbot.say("zhoujie", "技能 班组")).splitlines()


async def test_gaps_list_short_posts_single_points_and_people_below_target(sbot: BotKit):
    reply = await sbot.say("zhoujie", "技能 缺口")
    assert reply.startswith("甲班技能缺口")
    assert "· 切叶丝岗 1/4 · 单点风险 · 可带教：赵磊" in reply
    assert "陈静：切叶丝岗 I→U" in reply
    assert "未登记本岗位（无法判断目标）：李强" in reply
    assert "供班组长" in await sbot.say("chenjing", "技能 缺口")
    result = await sbot.app.scheduler.run("skill_gaps_weekly", datetime.now(sbot.app.config.tz))
    assert "已向 2 位班组长" in result.detail
    await sbot.drain()
    assert any(t.startswith("乙班技能缺口") for t in sbot.texts_to("maqiang"))
    assert any(t.startswith("甲班技能缺口") for t in sbot.texts_to("zhoujie"))


async def test_the_workbook_has_the_matrix_and_the_training_records(sbot: BotKit):
    n = await step(sbot, "带教 陈静 切丝 1")
    await confirm(sbot, n)
    await sbot.say("zhangwei", "导出")
    _, wb = await received_workbook(sbot, "zhangwei")
    matrix = rows(wb, "多能工训练表")
    assert matrix[0][:4] == ("姓名", "班组", "本岗位", "开箱喂料岗")
    zhaolei = next(r for r in matrix if r[0] == "赵磊")
    assert zhaolei[2] == "切叶丝岗" and "● O" in zhaolei
    assert matrix[-2][0] == "合格/理想" and matrix[-1][0] == "可带教（O）"
    assert "徐明" not in [r[0] for r in matrix]  # the other branch
    records = rows(wb, "带教记录")
    assert records[1][0] == n and records[1][2:6] == ("赵磊", "陈静", "切叶丝岗", "1 示范")
    assert records[1][10] == "已确认"


# -- the import, and the measure for the assessment --------------------------------------------------


async def test_the_member_import_takes_an_optional_post_column(sbot: BotKit):
    old = ",".join(MEMBER_HEADER) + "\nchenjing,陈静,第一党支部,甲班,第二党小组,,预备党员,\n"
    report = await sbot.query(lambda s: import_members(s, old, actor="test"))
    assert not report.problems
    post = await sbot.query(
        lambda s: s.execute(select(Member.post).where(Member.userid == "chenjing")).scalar()
    )
    assert post == "切叶丝岗"  # a file without the column keeps the posts
    new = (
        ",".join([*MEMBER_HEADER, "post"])
        + "\nchenjing,陈静,第一党支部,甲班,第二党小组,,预备党员,,叶丝干燥岗\n"
    )
    assert not (await sbot.query(lambda s: import_members(s, new, actor="test"))).problems
    post = await sbot.query(
        lambda s: s.execute(select(Member.post).where(Member.userid == "chenjing")).scalar()
    )
    assert post == "叶丝干燥岗"


async def test_training_coverage_per_branch_for_the_assessment(sbot: BotKit):
    config = sbot.app.config
    from handlers.skills_config import SkillsConfig

    skills = SkillsConfig.of(config)
    ideal = {p.name: 1 for p in skills.posts}

    def measure(s: Session) -> Any:
        return skill_store.training_coverage(s, ideal, skills.iluo.targets.own)

    first, second = await sbot.query(
        lambda s: s.execute(text("SELECT id FROM branches ORDER BY id")).scalars().all()
    )
    found = await measure_by(sbot, measure)
    # 第一党支部 holds U/O in 叶片加料, 松散回潮, 切叶丝, 叶丝干燥, 中控室, 开箱喂料 = 6 of 13 posts.
    assert (found[first].covered, found[first].posts) == (6, 13)
    assert found[first].coverage == pytest.approx(6 / 13)
    # Own posts at U or above: 王芳, 周杰, 赵磊, 刘洋, 孙丽 of 张伟, 王芳, 孙丽, 周杰, 赵磊, 陈静, 刘洋.
    assert (found[first].members, found[first].at_target) == (7, 5)
    assert found[second].covered == 6  # 机械维修, 电气维修, 梗丝膨胀, 压梗切梗, 掺配加香, 贮丝出柜
    # A year and more later, the posts with re-certification (中控室, 电气维修) have lapsed.
    lapse = {p.name: p.recert_days for p in skills.posts if p.recert_days}
    later = datetime.now(config.tz) + timedelta(days=400)
    aged = await measure_by(
        sbot,
        lambda s: skill_store.training_coverage(
            s, ideal, skills.iluo.targets.own, lapse_days=lapse, at=later
        ),
    )
    assert (aged[first].covered, aged[second].covered) == (5, 5)
    assert aged[first].at_target == 4  # 孙丽's own post 中控室 no longer counts


async def measure_by(bot: BotKit, fn: Any) -> Any:
    return await bot.query(fn)


# -- 轮训 -------------------------------------------------------------------------------------------


async def plan(bot: BotKit, text_: str, leader: str = "zhoujie") -> int:
    reply = await bot.say(leader, text_)
    assert "已安排轮训" in reply, reply
    return item_number(reply)


async def test_a_rotation_plan_defaults_its_cycle_reminds_and_closes_on_passing(sbot: BotKit):
    reply = await sbot.say("zhoujie", "轮训\n学员：陈静\n技能：切丝\n师傅：赵磊")
    assert "（90 天）" in reply, reply  # 切叶丝岗 is complexity 4: 90 days
    n = item_number(reply)
    await sbot.drain()
    assert any(f"为你安排了轮训 #{n}" in t for t in sbot.texts_to("chenjing"))
    assert any(f"请你带教 陈静的切叶丝岗（轮训 #{n}）" in t for t in sbot.texts_to("zhaolei"))
    assert f"轮训 #{n}：切叶丝岗" in await sbot.say("chenjing", "我的")
    assert "尚未开始" in await sbot.say("chenjing", "我的")
    now = datetime.now(sbot.app.config.tz)
    for days, words in ((0, "今天开始"), (45, "已过一半"), (88, "还剩 2 天")):
        result = await sbot.app.scheduler.run("training_plans", now + timedelta(days=days, minutes=1))
        assert "轮训提醒 1 条" in result.detail, (days, result.detail)
        await sbot.drain()
        for who in ("chenjing", "zhaolei"):
            assert sum(words in t and f"#{n}" in t for t in sbot.texts_to(who)) == 1, (who, words)
    quiet = await sbot.app.scheduler.run("training_plans", now + timedelta(days=89))
    assert "轮训提醒 0 条" in quiet.detail
    late = await sbot.app.scheduler.run("training_plans", now + timedelta(days=93))
    assert late.detail == "轮训提醒 0 条。"  # overdue plans go to the secretaries in the digest
    await run_digest(sbot, now + timedelta(days=93))
    assert any(f"轮训 #{n} 陈静 学 切叶丝岗，已逾期 3 天" in t for t in sbot.texts_to("zhangwei"))
    assert "自动关闭" in await sbot.say("zhangwei", f"通过 #{n}")
    # Passing step 3 closes it.
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 1"))
    assert "已完成：示范" in await sbot.say("chenjing", "我的")
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 2 点评：没有核对刀门压力"))
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 3 成绩：92"))
    status = await sbot.query(lambda s: s.execute(text(f"SELECT status FROM items WHERE id = {n}")).scalar())
    assert status == "approved"
    await sbot.drain()
    assert any(f"轮训 #{n}" in t and "已完成" in t for t in sbot.texts_to("zhoujie"))
    assert f"轮训 #{n}" not in await sbot.say("chenjing", "我的")


async def run_digest(bot: BotKit, when: datetime) -> str:
    # Run as by hand: the dates here fall where they fall, and a workdays schedule skips days off.
    result = await bot.app.scheduler.run("pending_digest", when, trigger="manual")
    assert result.status == "done", result
    await bot.drain()
    return result.detail


async def test_an_overdue_plan_is_in_its_branchs_secretary_digest_and_not_a_message_of_its_own(
    sbot: BotKit,
):
    n = await plan(sbot, "轮训 陈静 切丝\n周期：30")
    m = await plan(sbot, "轮训 黄鑫 切丝\n周期：30", leader="maqiang")  # 乙班, 第二党支部
    await sbot.drain()
    now = datetime.now(sbot.app.config.tz)
    due = (now + timedelta(days=30)).date()
    before = {u: len(sbot.texts_to(u)) for u in ("zhangwei", "wuhao", "liqiang")}
    job = await sbot.app.scheduler.run("training_plans", now + timedelta(days=33))
    assert job.detail == "轮训提醒 0 条。"
    await sbot.drain()
    assert {u: len(sbot.texts_to(u)) for u in before} == before  # the training job says nothing of them
    detail = await run_digest(sbot, now + timedelta(days=33))
    assert detail == "已提醒 2 人：共 0 项等待审核，另有 2 条其他提醒。", detail
    [digest] = sbot.texts_to("zhangwei")[before["zhangwei"] :]
    assert digest.startswith("待审提醒")
    assert f"轮训 #{n} 陈静 学 切叶丝岗，已逾期 3 天（到期 {due:%m-%d}）" in digest
    assert f"#{m}" not in digest and "等你审核" not in digest
    [other] = sbot.texts_to("wuhao")[before["wuhao"] :]
    assert f"轮训 #{m} 黄鑫 学 切叶丝岗，已逾期 3 天" in other and f"#{n} " not in other
    assert len(sbot.texts_to("liqiang")) == before["liqiang"]


async def test_waiting_items_and_overdue_plans_come_in_one_digest(sbot: BotKit):
    n = await plan(sbot, "轮训 陈静 切丝\n周期：30")
    reply = await sbot.say("wangfang", "尽责\n指标：A01\n说明：参加切丝机停产技改突击队")
    assert "已提交尽责申报" in reply, reply
    claim = item_number(reply)
    await sbot.drain()
    before = len(sbot.texts_to("zhangwei"))
    now = datetime.now(sbot.app.config.tz)
    detail = await run_digest(sbot, now + timedelta(days=32))
    assert detail.startswith("已提醒 1 人：共 1 项等待审核"), detail
    [digest] = sbot.texts_to("zhangwei")[before:]
    assert f"待审提醒：有 1 项申报等你审核，最早的 #{claim} 已等 32 天" in digest
    assert f"轮训 #{n} 陈静 学 切叶丝岗，已逾期 2 天" in digest


@pytest.mark.parametrize(
    ("who", "what", "words"),
    [
        ("maqiang", "轮训 陈静 切丝", "不在你的班组"),
        ("chenjing", "轮训 刘洋 切丝", "班组长"),
        ("zhoujie", "轮训 陈静 切丝\n师傅：王芳", "带教需要 U 级或以上"),
        ("zhoujie", "轮训 王芳 烘丝", "无需轮训"),  # 王芳 is U in 叶丝干燥岗
        ("zhoujie", "轮训 陈静 切叶\n周期：30", "你是不是想写：切叶丝岗"),
        ("zhoujie", "轮训 陈静 切丝\n周期：两个月", "应写 1 到 365 之间的天数"),
    ],
)
async def test_each_plan_refusal_records_nothing(sbot: BotKit, who: str, what: str, words: str):
    count = "SELECT count(*) FROM training_plans"
    reply = await sbot.say(who, what)
    assert words in reply, reply
    assert await sbot.query(lambda s: s.execute(text(count)).scalar()) == 0
    await sbot.say(who, "取消")


async def test_a_second_plan_for_the_same_skill_is_refused(sbot: BotKit):
    n = await plan(sbot, "轮训 陈静 切丝\n周期：30")
    assert f"已有切叶丝岗的轮训计划 #{n}" in await sbot.say("zhoujie", "轮训 陈静 切丝")
    assert await sbot.query(lambda s: s.execute(text("SELECT count(*) FROM training_plans")).scalar()) == 1


# -- re-certification -------------------------------------------------------------------------------


async def age_level(bot: BotKit, userid: str, skill: str, days: int) -> None:
    def move(s: Session) -> None:
        member = s.execute(select(Member.id).where(Member.userid == userid)).scalar_one()
        found = s.get(SkillLevel, (member, skill))
        assert found is not None
        found.updated_at = datetime.now(bot.app.config.tz) - timedelta(days=days)

    await bot.query(move)


async def test_a_lapsed_level_stops_counting_until_it_is_renewed(sbot: BotKit):
    before = await sbot.say("zhangwei", "技能 缺口")
    assert "· 中控室岗 1/4 · 单点风险" in before  # 孙丽 alone
    await age_level(sbot, "sunli", "中控室岗", 400)  # 中控室岗 has recert_days: 365
    row = await sbot.say("sunli", "技能")
    assert "中控室岗 U" in row and "过期，需重新定级或考核" in row
    gaps = await sbot.say("zhangwei", "技能 缺口")
    assert "· 中控室岗 0/4" in gaps
    matrix = await sbot.say("zhoujie", "技能 班组")
    assert "\n中控室岗 0/4 ⚠：孙丽⊘" in matrix
    renewed = await sbot.say("zhangwei", "定级 孙丽 中控 U 复训考核合格")
    assert "中控室岗 U 级重新认定，有效期 365 天" in renewed
    assert "过期" not in await sbot.say("sunli", "技能")
    assert "· 中控室岗 1/4" in await sbot.say("zhangwei", "技能 缺口")


async def test_a_level_lapses_on_its_day_with_nothing_else_changed(sbot: BotKit):
    # The team's matrix is kept until the skills change, and what counts of it until the next lapse:
    # a day passing must show as much as a new level does.
    await sbot.query(
        lambda s: import_levels(s, sbot.app.config, "userid,skill,level\nwangfang,中控室岗,O\n", actor="test")
    )
    await age_level(sbot, "sunli", "中控室岗", 364)  # 365 days: lapses tomorrow
    await age_level(sbot, "wangfang", "中控室岗", 300)  # in 65 days
    today = sbot.app.dispatcher.clock()

    async def post_at(now: datetime) -> str:
        sbot.app.dispatcher.clock = lambda: now
        reply = await sbot.say("zhoujie", "技能 班组")
        [line] = [x for x in reply.splitlines() if x.startswith("中控室岗")]
        return line

    assert await post_at(today) == "中控室岗 2/4 ⚠：王芳● 孙丽◕"
    assert await post_at(today) == "中控室岗 2/4 ⚠：王芳● 孙丽◕"  # asked again: the same
    assert await post_at(today + timedelta(days=2)) == "中控室岗 1/4 ⚠：王芳● 孙丽⊘"
    assert await post_at(today + timedelta(days=70)) == "中控室岗 0/4 ⚠：王芳⊘ 孙丽⊘"
    assert await post_at(today + timedelta(days=2)) == "中控室岗 1/4 ⚠：王芳● 孙丽⊘"  # a past moment
    assert await post_at(today) == "中控室岗 2/4 ⚠：王芳● 孙丽◕"
    assert "· 中控室岗 2/4" in await sbot.say("zhangwei", "技能 缺口")


async def test_levels_about_to_lapse_are_announced_30_and_7_days_before(sbot: BotKit):
    await age_level(sbot, "sunli", "中控室岗", 335)
    now = datetime.now(sbot.app.config.tz)
    result = await sbot.app.scheduler.run("recertification", now)
    assert "已提醒 1 个" in result.detail
    await sbot.drain()
    assert any("复训提醒：你的中控室岗 U 级" in t and "还剩 30 天" in t for t in sbot.texts_to("sunli"))
    assert any("孙丽的中控室岗 U 级" in t for t in sbot.texts_to("zhoujie"))
    other = await sbot.app.scheduler.run("recertification", now + timedelta(days=1))
    assert "没有 30 天或 7 天后到期" in other.detail
    week = await sbot.app.scheduler.run("recertification", now + timedelta(days=23))
    assert "已提醒 1 个" in week.detail


async def test_the_demo_levels_fill_in_and_never_undo_training(sbot: BotKit):
    from handlers.skills import demo_levels

    await sbot.say("zhoujie", "定级 陈静 切丝 L 补录")
    report = await sbot.query(lambda s: demo_levels(s, sbot.app.config, LEVELS))
    assert not report.problems and report.created == report.updated == 0
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "L"  # local mode restarts keep what was done


async def test_voiding_a_passed_exam_reverses_the_points_and_the_level(sbot: BotKit):
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 1"))
    await confirm(sbot, await step(sbot, "带教 陈静 切丝 2 点评：刀门间隙没复核"))
    exam = await step(sbot, "带教 陈静 切丝 3 成绩：合格")
    await confirm(sbot, exam)
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "L"
    for who in ("chenjing", "zhaolei"):
        refused = await sbot.say(who, f"撤销 #{exam} 记错了")
        assert "不能" in refused and "已作废" not in refused, refused
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "L"
    reply = await sbot.say("zhangwei", f"撤销 #{exam} 考核记录有误")
    assert f"已作废 #{exam}" in reply and "赵磊 -2 分" in reply
    assert await level_of(sbot, "chenjing", "切叶丝岗") == "I"
    assert sum(points for _, points, _ in await entries(sbot, "zhaolei")) == 0
    assert "切叶丝岗 L → I 作废 · 张伟" in await sbot.say("zhangwei", "技能 陈静")
