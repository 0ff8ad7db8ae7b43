"""The activities practice's demo history for local mode: a month of activities in 第一党支部 and
the workshop.

张伟 (secretary, 第一党支部) announces a 主题党日 and a 我来阅读 session; 陈静 asks for leave and is
excused; people sign in at the activity (here recorded by the organiser with 补签, since a replayed
script cannot read the sign-in code from the notice); 李强 (committee) announces a workshop-wide
宣讲 for tomorrow, so `签到` and `活动 #N` have something live. `{label}` stands for the `#N` the bot
answered to the step labelled so.
"""

from __future__ import annotations

from bot.simulator.demo import Step, say


def form(*lines: str) -> str:
    return "\n".join(lines)


DEMO_HISTORY: tuple[Step, ...] = (
    say(
        "zhangwei",
        23,
        "09:05",
        form(
            "活动",
            "名称：11月主题党日：学习贯彻全会精神",
            "类型：主题党日",
            "时间：明天 14:30",
            "地点：车间党员活动室",
        ),
        label="主题党日",
    ),
    say("chenjing", 23, "12:20", "请假 {主题党日} 上中班，15:30 接班", label="陈静-请假"),
    say("zhangwei", 23, "12:41", "通过 {陈静-请假}"),
    say("zhangwei", 22, "16:10", "补签 {主题党日} 王芳、孙丽、周杰、赵磊、李强"),
    say(
        "zhangwei",
        10,
        "10:30",
        form(
            "活动",
            "名称：我来阅读：《习近平谈治国理政》第四卷分享",
            "类型：我来阅读",
            "时间：明天 19:30",
            "地点：车间职工书屋",
            "时长：60分钟",
        ),
        label="读书会",
    ),
    say("zhangwei", 9, "20:40", "补签 {读书会} 王芳、陈静、刘洋"),
    say(
        "liqiang",
        0,
        "08:20",
        form(
            "活动",
            "名称：微宣讲：安全生产“三违”典型案例",
            "类型：宣讲",
            "时间：明天 16:30",
            "地点：制丝车间会议室",
            "范围：车间",
        ),
        label="安全宣讲",
    ),
)
