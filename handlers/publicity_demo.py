"""The publicity practice's demo history for local mode: a few weeks of "1+1+N" articles.

王芳 (correspondent, 工艺质量) and 徐明 (correspondent, 设备管理) submit articles; their module leads
孙丽 and 郭琳 accept them at a channel (by the card's button or by text), send one back for a revision
that comes back improved, and one article is later published higher up and pays the difference. One
article waits for 孙丽, so her 待审 and card have something to show. `{label}` stands for the `#N`
the bot answered to the step labelled so.
"""

from __future__ import annotations

from bot.simulator.demo import Step, click, say


def form(*lines: str) -> str:
    return "\n".join(lines)


DEMO_HISTORY: tuple[Step, ...] = (
    say(
        "wangfang",
        40,
        "15:20",
        form(
            "投稿",
            "标题：叶丝干燥出口水分标准偏差降到0.15",
            "内容：工艺质量模块QC小组围绕薄板烘丝机出口水分波动开展攻关，调整热风温度与筒壁温度的匹配，"
            "连续30个批次出口水分标准偏差由0.21降到0.15。",
        ),
        label="王芳-烘丝水分",
    ),
    click("sunli", 39, "09:10", "录用", item="王芳-烘丝水分"),
    say(
        "xuming",
        26,
        "16:45",
        form(
            "投稿",
            "标题：设备维修组开展切丝机刀辊专项保养",
            "内容：设备维修组利用周末停产时间，对4台切丝机刀辊进行专项保养，更换磨损刀片，校准刀门压力。",
        ),
        label="徐明-刀辊保养",
    ),
    say("guolin", 25, "10:02", "退回 {徐明-刀辊保养} 请补充保养前后切丝宽度合格率的数据和现场照片"),
    say(
        "xuming",
        24,
        "17:30",
        form(
            "投稿 {徐明-刀辊保养}",
            "内容：设备维修组利用周末停产时间，对4台切丝机刀辊进行专项保养，更换磨损刀片32片，"
            "校准刀门压力；保养后切丝宽度合格率由97.6%提升到99.3%。",
        ),
    ),
    say("guolin", 23, "08:40", "录用 {徐明-刀辊保养} 厂内"),
    say("sunli", 12, "14:15", "录用 {王芳-烘丝水分} 广西中烟"),
    say(
        "wangfang",
        5,
        "20:10",
        form(
            "投稿",
            "标题：掺配加香段牌号切换“零混牌”",
            "内容：本月掺配加香段完成牌号切换46次，严格执行清线确认和双人复核，实现零混牌、零错牌。",
            "作者：陈静",
        ),
        label="王芳-零混牌",
    ),
    click("sunli", 4, "08:55", "录用", item="王芳-零混牌"),
    say(
        "wangfang",
        1,
        "19:40",
        form(
            "投稿",
            "标题：党员突击队连夜抢修梗丝膨胀线",
            "内容：11月梗丝膨胀线蒸汽阀组故障，党员突击队连夜抢修4小时，保障了次日早班按时开机。",
            "链接：https://mp.weixin.qq.com/s/pioneer-demo",
        ),
        label="王芳-突击队",
    ),
)
