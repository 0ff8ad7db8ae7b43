"""Activities through encrypted callbacks, on a clock the test sets: 活动 announces with a sign-in code,
签到 inside the window books the type's points once, 请假 before the start is decided by the organiser,
the reminder before and the report after, 活动 #N, 我的 and the 活动签到 sheet; every refusal records
nothing.

The cast: 张伟 is the secretary of 第一党支部 (甲班: 王芳, 孙丽, 周杰, 赵磊, 陈静, 刘洋, 李强); 吴昊 the
secretary of 第二党支部; 李强 the committee.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import func, select

from handlers.export import build_workbook
from handlers.periods import period_of
from storage.activities import Activity, Attendance
from tests.kit import BotKit, item_status, ledger
from tests.test_points import cards, item_number, total

ANNOUNCE = (
    "活动\n名称：学习贯彻党的二十届四中全会精神\n类型：主题教育\n时间：明天 19:30\n地点：车间党员活动室"
)


class Clock:
    """What the dispatcher tells handlers the time is; moved by the test."""

    def __init__(self, bot: BotKit, start: datetime):
        self.now = start
        self.start_day = start.date()
        bot.app.dispatcher.clock = lambda: self.now

    def at(self, days: int, hour: int, minute: int) -> datetime:
        """Set the time to `days` after the start's day, at hour:minute."""
        day = self.start_day + timedelta(days=days)
        self.now = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.now.tzinfo)
        return self.now


@pytest.fixture
def clock(bot: BotKit) -> Callable[[int, int, int], datetime]:
    start = datetime(2026, 12, 2, 9, 0, tzinfo=bot.app.config.tz)  # a Wednesday in 2026Q4
    return Clock(bot, start).at


def quarter() -> str:
    return period_of("quarter", datetime(2026, 12, 2).date()).key


async def announce(bot: BotKit, userid: str = "zhangwei", text: str = ANNOUNCE) -> tuple[int, str]:
    reply = await bot.say(userid, text)
    assert "已发布活动" in reply, reply
    code = re.search(r"签到码 (\d{4})", reply)
    assert code, reply
    return item_number(reply), code.group(1)


async def signed(bot: BotKit, number: int) -> int:
    return await bot.query(
        lambda s: s.execute(
            select(func.count()).select_from(Attendance).where(Attendance.activity_id == number)
        ).scalar_one()
    )


async def test_an_activity_is_announced_to_its_branch_group_and_people_with_a_code(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    await bot.drain()
    notice = [t for t in bot.texts_to("wangfang") if f"#{number}" in t]
    assert notice and f"签到 {code}" in notice[0] and "12-03 19:30" in notice[0], notice
    assert not [t for t in bot.texts_to("wuhao") if f"#{number}" in t]  # another branch
    [post] = bot.fake.webhooks("第一支部群")
    assert "学习贯彻" in post.body["content"] and code in post.body["content"]
    assert bot.fake.webhooks("第二支部群") == []
    row = await bot.query(lambda s: s.get(Activity, number))
    assert (row.points_x100, row.scope, row.ends_at - row.starts_at) == (100, "branch", timedelta(minutes=90))
    assert await item_status(bot, number) == ("approved", "zhangwei")


async def test_sign_in_inside_the_window_books_once_and_every_wrong_try_records_nothing(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 5)  # the window opens at 19:10
    before = await ledger(bot)
    assert "19:10 开始" in await bot.say("wangfang", f"签到 {code}")
    clock(1, 19, 15)
    wrong = "0000" if code != "0000" else "1111"
    assert f"签到码 {wrong} 不对" in await bot.say("wangfang", f"签到 {wrong}")
    assert "4 位数字" in await bot.say("wangfang", "签到 12")
    assert await ledger(bot) == before and await signed(bot, number) == 0
    reply = await bot.say("wangfang", f"签到 {code}")
    assert reply == f"签到成功：#{number} 学习贯彻党的二十届四中全会精神，+1 分。", reply
    assert await total(bot, "wangfang", quarter()) == 100
    after = await ledger(bot)
    assert "无需重复签到" in await bot.say("wangfang", f"签到 {code}")
    assert await ledger(bot) == after and await signed(bot, number) == 1
    clock(1, 21, 0)  # 19:30 + 90 minutes: closed
    assert "签到已于 21:00 结束" in await bot.say("chenjing", f"签到 {code}")
    assert await ledger(bot) == after and await signed(bot, number) == 1


async def test_someone_outside_the_scope_may_sign_in_but_earns_nothing_unless_configured(make_bot):  # type: ignore[no-untyped-def]
    for paid in (False, True):
        bot = await make_bot(activities={"out_of_scope_points": paid})
        start = datetime(2026, 12, 2, 9, 0, tzinfo=bot.app.config.tz)
        bot.app.dispatcher.clock = lambda start=start: start
        number, code = await announce(bot)
        bot.app.dispatcher.clock = lambda start=start: start + timedelta(days=1, hours=10, minutes=20)
        reply = await bot.say("wuhao", f"签到 {code}")
        if paid:
            assert "+1 分" in reply, reply
            assert await total(bot, "wuhao", quarter()) == 100
        else:
            assert "不在这项活动的范围" in reply and "不计分" in reply, reply
            assert await total(bot, "wuhao", quarter()) == 0
        assert await signed(bot, number) == 1
        await bot.app.stop()


async def test_sign_in_alone_asks_for_the_code_when_one_activity_is_open(bot: BotKit, clock):
    clock(0, 9, 0)
    assert "现在没有你可以签到的活动" in await bot.say("wangfang", "签到")
    number, _code = await announce(bot)
    clock(1, 19, 20)
    reply = await bot.say("wangfang", "签到")
    assert f"请回复「签到 签到码」签到 #{number}" in reply, reply
    assert "现在没有" in await bot.say("wuhao", "签到")  # not in the scope


async def test_leave_before_the_start_is_decided_by_the_organiser_and_counts_as_excused(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    reply = await bot.say("chenjing", f"请假 #{number} 上中班")
    assert "已提交请假" in reply and "张伟" in reply, reply
    leave = item_number(reply.split("已提交请假")[1])
    await bot.drain()
    card = cards(bot, "zhangwei")[-1]
    assert [(b["text"], b["key"]) for b in card["button_list"]] == [
        ("准假", f"approve:{leave}"),
        ("不准", f"reject:{leave}"),
    ]
    assert "仅限" in await bot.say("chenjing", f"通过 #{leave}")
    assert "只能由活动组织者张伟" in await bot.say("wuhao", f"通过 #{leave}")
    assert await item_status(bot, leave) == ("pending", "")
    assert "重复请假" in await bot.say("chenjing", f"请假 #{number} 上中班")
    await bot.click("zhangwei", f"approve:{leave}")
    assert await item_status(bot, leave) == ("approved", "zhangwei")
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    clock(1, 19, 31)
    before = await ledger(bot)
    assert "不能再请假" in await bot.say("liuyang", f"请假 #{number} 临时有事")
    assert await ledger(bot) == before
    clock(1, 21, 2)
    result = (await bot.app.scheduler.run("activity_tick", clock(1, 21, 2))).detail
    assert "发出 1 份出勤报告" in result, result
    await bot.drain()
    report = [t for t in bot.texts_to("zhangwei") if "出勤报告" in t][-1]
    assert "应到 7，签到 1，请假 1，缺席 5" in report and "甲班：签到 1，请假 1，缺席 5" in report, report
    assert "陈静" not in report.split("缺席：")[1] and "刘洋" in report
    result = (await bot.app.scheduler.run("activity_tick", clock(1, 21, 7))).detail
    assert "没有要提醒或报告" in result  # reported once


async def test_the_reminder_goes_an_hour_before_to_those_not_on_leave(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    await bot.say("chenjing", f"请假 #{number} 上中班")
    result = (await bot.app.scheduler.run("activity_tick", clock(1, 18, 32))).detail
    assert "提醒了 1 项活动" in result, result
    await bot.drain()
    assert any("活动提醒" in t and f"签到 {code}" in t for t in bot.texts_to("wangfang"))
    assert not any("活动提醒" in t for t in bot.texts_to("chenjing"))
    assert not any("活动提醒" in t for t in bot.texts_to("wuhao"))
    result = (await bot.app.scheduler.run("activity_tick", clock(1, 18, 37))).detail
    assert "没有要提醒或报告" in result  # reminded once


async def test_who_may_announce_and_what_they_may_announce(bot: BotKit, clock):
    clock(0, 9, 0)
    before = await ledger(bot)
    assert "仅限支部书记、党总支发布" in await bot.say("wangfang", ANNOUNCE)
    reply = await bot.say("zhangwei", ANNOUNCE.replace("主题教育", "主题教肓"))
    assert "没有「主题教肓」这个类型" in reply and "主题教育" in reply, reply
    await bot.say("zhangwei", "取消")
    assert "由党总支发布" in await bot.say("zhangwei", ANNOUNCE + "\n范围：车间")
    assert "只能发布本支部" in await bot.say("zhangwei", ANNOUNCE + "\n范围：第二党支部")
    reply = await bot.say("zhangwei", ANNOUNCE.replace("明天 19:30", "今天 08:00"))
    assert "不能早于现在" in reply, reply
    await bot.say("zhangwei", "取消")
    reply = await bot.say("zhangwei", ANNOUNCE + "\n范围：第三支布")
    assert "没有「第三支布」这个范围" in reply, reply
    await bot.say("zhangwei", "取消")
    assert await ledger(bot) == before
    number, _ = await announce(bot, "liqiang", ANNOUNCE + "\n范围：车间\n时长：2小时\n积分：2")
    row = await bot.query(lambda s: s.get(Activity, number))
    assert (row.scope, row.points_x100, row.ends_at - row.starts_at) == ("workshop", 200, timedelta(hours=2))
    await bot.drain()
    assert bot.fake.webhooks("制丝车间群")


async def test_codes_are_unique_among_open_activities(bot: BotKit, clock):
    clock(0, 9, 0)
    codes = {(await announce(bot))[1] for _ in range(6)}
    assert len(codes) == 6


async def test_activity_number_shows_the_report_and_my_activities_are_in_my_profile(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    reply = await bot.say("zhangwei", f"活动 #{number}")
    assert "应到 7，签到 1" in reply, reply
    reply = await bot.say("wangfang", f"活动 #{number}")
    assert "你已于 19:20 签到" in reply and "缺席" not in reply, reply
    assert "没有编号为 #999 的活动" in await bot.say("wangfang", "活动 #999")
    profile = await bot.say("wangfang", "我的")
    assert f"活动：本季度 1 项，已签到 1 项（#{number} 学习贯彻党的二十届… 12-03 已签到）" in profile, profile


async def test_the_quarter_workbook_has_an_attendance_sheet(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    period = period_of("quarter", datetime(2026, 12, 2).date())

    def build(s: Any) -> bytes:
        return build_workbook(s, bot.app.config, period)

    wb = load_workbook(io.BytesIO(await bot.query(build)))
    ws = wb["活动签到"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("编号", "活动", "类型")
    assert rows[1][0] == number and rows[1][7] == "甲班" and rows[1][8:12] == (7, 1, 0, 6)


async def test_voiding_an_activity_reverses_the_sign_in_points(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    assert "无需处理" not in await bot.say("wuhao", f"撤销 #{number} 误发")
    assert await item_status(bot, number) == ("approved", "zhangwei")  # not his to void
    reply = await bot.say("zhangwei", f"撤销 #{number} 场地临时调整，改期")
    assert "已作废" in reply and "王芳 -1 分" in reply, reply
    assert await total(bot, "wangfang", quarter()) == 0


async def test_the_organiser_records_someone_who_could_not_sign_in_and_others_may_not(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    before = await ledger(bot)
    assert "签到还没开始" in await bot.say("zhangwei", f"补签 #{number} 王芳")
    assert "仅限" in await bot.say("wangfang", f"补签 #{number} 陈静")
    assert "只能由组织者" in await bot.say("wuhao", f"补签 #{number} 陈静")
    assert await ledger(bot) == before
    clock(1, 21, 30)
    await bot.say("liuyang", f"签到 {code}")  # closed: recorded by the organiser instead
    reply = await bot.say("zhangwei", f"补签 #{number} 陈静、刘洋")
    assert "补签：陈静 +1 分、刘洋 +1 分" in reply, reply
    assert "已签到过" in await bot.say("zhangwei", f"补签 #{number} 陈静")
    assert await signed(bot, number) == 2 and await total(bot, "chenjing", quarter()) == 100


async def test_branch_attendance_rate_for_the_assessment(bot: BotKit, clock):
    from storage.activities import branch_attendance
    from storage.people import branch_id

    clock(0, 9, 0)
    number, code = await announce(bot)
    leave = item_number((await bot.say("chenjing", f"请假 #{number} 上中班")).split("已提交请假")[1])
    await bot.say("zhangwei", f"通过 #{leave}")
    clock(1, 19, 20)
    for userid in ("wangfang", "sunli", "wuhao"):  # 吴昊 is outside the scope: counted nowhere
        await bot.say(userid, f"签到 {code}")
    tz = bot.app.config.tz
    lo, hi = period_of("quarter", datetime(2026, 12, 2).date()).bounds(tz)
    early = await bot.query(lambda s: branch_attendance(s, lo, hi, clock(1, 20, 0)))
    assert early == {}  # sign-in still open
    figures = await bot.query(lambda s: branch_attendance(s, lo, hi, clock(1, 21, 5)))
    first = await bot.query(lambda s: branch_id(s, "第一党支部"))
    # 8 members of 第一党支部 less the organiser 张伟 = 7 invited; 陈静 excused; 2 of 6 present.
    assert (figures[first].expected, figures[first].present, figures[first].excused) == (6, 2, 1)
    assert round(figures[first].rate, 3) == 0.333
    assert list(figures) == [first]


def every_invitation(acts, members, present, excused):  # type: ignore[no-untyped-def]
    """The rule of `branch_attendance`, one (activity, member) at a time: what the counting must match."""
    figures: dict[int, list[int]] = {}
    for activity_id, scope, scope_id, organiser_id in acts:
        for member_id, branch_id, team_id in members:
            if branch_id is None:
                continue
            invited = (
                scope == "workshop"
                or (scope == "branch" and scope_id == branch_id)
                or (scope == "team" and scope_id == team_id)
            )
            if not invited or member_id == organiser_id:
                continue
            counts = figures.setdefault(branch_id, [0, 0, 0])
            if (activity_id, member_id) in excused:
                counts[2] += 1
            else:
                counts[0] += 1
                counts[1] += (activity_id, member_id) in present
    return {b: tuple(c) for b, c in figures.items()}


@settings(max_examples=300, deadline=None)
@given(
    acts=st.lists(
        st.tuples(
            st.sampled_from(["workshop", "branch", "team"]),
            st.integers(1, 3),  # the branch's or team's id
            st.integers(1, 12),  # the organiser (may be outside the scope, or not a member here)
        ),
        max_size=5,
    ),
    members=st.lists(st.tuples(st.none() | st.integers(1, 3), st.none() | st.integers(1, 3)), max_size=10),
    pairs=st.sets(st.tuples(st.integers(1, 5), st.integers(1, 12)), max_size=30),
    leave=st.sets(st.tuples(st.integers(1, 5), st.integers(1, 12)), max_size=10),
)
def test_the_attendance_counting_matches_the_rule_one_invitation_at_a_time(acts, members, pairs, leave):  # type: ignore[no-untyped-def]
    from storage.activities import attendance_figures

    acts = [(i + 1, scope, scope_id, organiser) for i, (scope, scope_id, organiser) in enumerate(acts)]
    members = [(i + 1, branch, team) for i, (branch, team) in enumerate(members)]
    counted = attendance_figures(acts, members, pairs, leave)
    assert {b: (a.expected, a.present, a.excused) for b, a in counted.items()} == every_invitation(
        acts, members, pairs, leave
    )


async def test_the_kept_assessment_moves_when_a_sign_in_closes_though_no_table_changed(
    bot: BotKit, clock, monkeypatch: pytest.MonkeyPatch
):
    import handlers.activities
    from handlers.assessment import assess
    from storage.people import branch_id

    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 20)
    for userid in ("wangfang", "sunli"):
        await bot.say(userid, f"签到 {code}")
    first = await bot.query(lambda s: branch_id(s, "第一党支部"))
    q = period_of("quarter", datetime(2026, 12, 2).date())
    real = datetime

    async def attendance(moment: datetime) -> float | None:
        def read(s):  # type: ignore[no-untyped-def]
            class At(real):
                @classmethod
                def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
                    return moment

            monkeypatch.setattr(handlers.activities, "datetime", At)
            [score] = [b for b in assess(s, bot.app.config, q) if b.branch_id == first]
            return next(p.value for p in score.parts if p.key == "activity_attendance")

        return await bot.query(read)

    assert await attendance(clock(1, 20, 0)) == 0.0  # sign-in still open: not counted yet
    assert round(await attendance(clock(1, 21, 5)), 3) == round(2 / 7, 3)  # closed: 2 of 7 invited


async def test_a_report_more_than_a_day_late_is_not_sent(bot: BotKit, clock):
    clock(0, 9, 0)
    number, _code = await announce(bot)
    result = (await bot.app.scheduler.run("activity_tick", clock(3, 9, 2))).detail
    assert "发出 0 份出勤报告；1 项活动结束已超过一天" in result, result
    await bot.drain()
    assert not [t for t in bot.texts_to("zhangwei") if "出勤报告" in t]
    assert "应到 7" in await bot.say("zhangwei", f"活动 #{number}")


async def test_the_organiser_is_booked_the_types_organiser_points_once_after_the_window(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot)
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    assert await total(bot, "zhangwei", quarter()) == 0  # not while the sign-in is open
    await bot.app.scheduler.run("activity_tick", clock(1, 21, 2))
    assert await total(bot, "zhangwei", quarter()) == 300  # 主题教育: organiser_points 3
    before = await ledger(bot)
    await bot.app.scheduler.run("activity_tick", clock(1, 21, 7))
    assert await ledger(bot) == before  # once
    reply = await bot.say("zhangwei", f"撤销 #{number} 登记有误")
    assert "已作废" in reply and "张伟 -3 分" in reply and "王芳 -1 分" in reply, reply
    assert await total(bot, "zhangwei", quarter()) == 0 and await total(bot, "wangfang", quarter()) == 0


async def test_no_organiser_points_for_an_activity_nobody_attended(bot: BotKit, clock):
    clock(0, 9, 0)
    await announce(bot)
    before = await ledger(bot)
    result = (await bot.app.scheduler.run("activity_tick", clock(1, 21, 2))).detail
    assert "发出 1 份出勤报告" in result, result
    assert await ledger(bot) == before and await total(bot, "zhangwei", quarter()) == 0


async def test_a_type_with_no_organiser_points_books_only_the_sign_ins(bot: BotKit, clock):
    clock(0, 9, 0)
    number, code = await announce(bot, text=ANNOUNCE.replace("类型：主题教育", "类型：主题党日"))
    clock(1, 19, 20)
    await bot.say("wangfang", f"签到 {code}")
    before = await ledger(bot)
    await bot.app.scheduler.run("activity_tick", clock(1, 21, 2))
    assert await ledger(bot) == before and await total(bot, "zhangwei", quarter()) == 0
