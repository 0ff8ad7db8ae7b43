"""The 以技带岗 / 多能工 demo history for local mode: ten weeks of three-step training on the 制丝 line.

The levels people already held come from `bot/simulator/skills.csv` (imported first); on top of that,
through the real commands: 周杰 (甲班 team leader) plans 陈静's rotation into 切叶丝岗 under 赵磊, who
takes her through 示范, two rounds of 指导 and a passed 考核 (I → L, the plan closes); 马强 (乙班) plans
黄鑫 into 机械维修岗 under 徐明, who brings him to U (a new certification, points for both); the
secretary 张伟 rates 王芳 U in 切叶丝岗 and 马强 rates 郭琳 O after the JI trainer course; and 刘洋's
rotation into 松散回潮岗 is under way, with a step 2 still waiting for his confirmation — so 技能,
技能 甲班 (with the matrix picture), 技能 缺口, 我的, 导出 and 待审 all have something to show.

Only the words people type are used; `{label}` stands for the `#N` the bot answered to that step.
"""

from __future__ import annotations

from bot.simulator.demo import Step, click, say


def form(*lines: str) -> str:
    return "\n".join(lines)


DEMO_HISTORY: tuple[Step, ...] = (
    # -- 甲班: 陈静 into 切叶丝岗 under 赵磊 -------------------------------------------------------------
    say(
        "zhoujie",
        68,
        "08:40",
        form("轮训", "学员：陈静", "技能：切丝", "师傅：赵磊", "周期：60"),
        label="陈静-切丝轮训",
    ),
    say("zhaolei", 67, "14:10", "带教 陈静 切丝 示范", label="陈静-示范"),
    click("chenjing", 67, "16:45", "确认", item="陈静-示范"),
    say(
        "zhaolei",
        60,
        "10:20",
        form(
            "带教",
            "学员：陈静",
            "技能：切叶丝岗",
            "步骤：指导",
            "点评：换刀后没有先试切就放料，刀门压力也没有复核，丝宽偏差超过 0.05mm",
        ),
        label="陈静-指导1",
    ),
    say("chenjing", 60, "11:02", "确认 {陈静-指导1}"),
    say(
        "zhaolei",
        52,
        "15:30",
        form(
            "带教",
            "学员：陈静",
            "技能：切丝",
            "步骤：2",
            "点评：来料水分偏高时没有及时通知回潮岗调整，其余操作规范",
        ),
        label="陈静-指导2",
    ),
    click("chenjing", 52, "17:20", "确认", item="陈静-指导2"),
    say("zhaolei", 45, "09:50", form("带教 陈静 切丝 考核", "成绩：88"), label="陈静-考核"),
    click("chenjing", 45, "10:15", "确认", item="陈静-考核"),
    # -- 乙班: 黄鑫 into 机械维修岗 under 徐明 (L → U: a new certification) -------------------------------
    say(
        "maqiang",
        40,
        "08:30",
        form("轮训", "学员：黄鑫", "技能：机修", "师傅：徐明", "周期：90"),
        label="黄鑫-机修轮训",
    ),
    say("xuming", 39, "13:40", "带教 黄鑫 机修 1", label="黄鑫-示范"),
    click("huangxin", 39, "15:05", "确认", item="黄鑫-示范"),
    say(
        "xuming",
        30,
        "14:20",
        form("带教 黄鑫 机修 2", "点评：更换切丝机刀辊轴承前没有挂牌上锁，拆卸顺序也不对"),
        label="黄鑫-指导",
    ),
    click("huangxin", 30, "16:30", "确认", item="黄鑫-指导"),
    say("xuming", 18, "10:10", form("带教 黄鑫 机修 3", "成绩：合格"), label="黄鑫-考核"),
    click("huangxin", 18, "11:40", "确认", item="黄鑫-考核"),
    # -- direct ratings, with their reasons -----------------------------------------------------------------
    say("zhangwei", 33, "16:05", "定级 王芳 切丝 U 多年切丝机顶岗主操，经车间实操考核认定"),
    say("maqiang", 12, "09:20", "定级 郭琳 掺配 O 通过 JI 一线教练资格培训，可带教掺配加香岗"),
    # -- 甲班 now: 刘洋 into 松散回潮岗 under 周杰, step 2 waiting for his confirmation -----------------
    say(
        "zhoujie", 15, "08:50", form("轮训", "学员：刘洋", "技能：回潮", "师傅：周杰"), label="刘洋-回潮轮训"
    ),
    say("zhoujie", 14, "14:30", "带教 刘洋 回潮 示范", label="刘洋-示范"),
    click("liuyang", 14, "15:10", "确认", item="刘洋-示范"),
    say(
        "zhoujie",
        1,
        "15:40",
        form("带教 刘洋 回潮 指导", "点评：回潮机出口温度偏低时只调了蒸汽阀，没有先确认加水比例"),
        label="刘洋-指导",
    ),
)
