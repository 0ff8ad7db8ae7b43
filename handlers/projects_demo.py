"""The 书记项目 and 党建考评 demo history for local mode: about ten weeks of topics, projects and their
acceptance in a 制丝 workshop.

李强 (liqiang, 党总支) sets three topics. 张伟 (zhangwei, 第一党支部) takes the first, runs it with
周杰 and 赵磊 through two milestones, and has it accepted at the start of this quarter; 吴昊 (wuhao,
第二党支部) takes the second with 马强 and 郭琳 and is behind on a milestone (so the reminders and the
overdue marks have something to show); the third is still open for 选题. The committee also adds one
item to the 党建考评 by hand. Dates in forms are counted from the step's day (`20天后`), so the
history stays valid whenever the demo is started.
"""

from __future__ import annotations

from bot.simulator.demo import Step, click, say


def form(*lines: str) -> str:
    return "\n".join(lines)


DEMO_HISTORY: tuple[Step, ...] = (
    # -- last quarter: a topic taken by 第一党支部 ---------------------------------------------------------
    say(
        "liqiang",
        70,
        "09:23",
        form(
            "出题",
            "名称：降低叶丝干燥出口含水率波动",
            "说明：薄板烘丝机出口含水率标准偏差 0.32%，目标 ≤0.20%；涉及蒸汽压力与热风温度的联动控制",
            "积分：20",
        ),
        label="课题-含水率",
    ),
    say("zhangwei", 69, "08:41", "选题 {课题-含水率}", label="项目-含水率"),
    say(
        "zhangwei",
        69,
        "08:55",
        form(
            "项目 {项目-含水率}",
            "成员：周杰、赵磊",
            "里程碑：10天后 完成出口含水率现状测量与数据分析",
            "里程碑：30天后 蒸汽阀组PID参数优化并试运行",
        ),
    ),
    say(
        "zhaolei",
        66,
        "16:12",
        "进展 {项目-含水率} 连续3个班次采样，出口含水率标准偏差0.31%，波动集中在换牌后30分钟",
    ),
    say("zhangwei", 59, "10:05", "完成 {项目-含水率} 1"),
    say("zhoujie", 50, "15:40", "进展 {项目-含水率} 蒸汽压力与热风温度联动参数已调整，试运行两个班次"),
    say("zhangwei", 40, "09:30", "完成 {项目-含水率} 2"),
    say(
        "zhangwei",
        39,
        "14:20",
        form(
            "结题 {项目-含水率}",
            "成果：出口含水率标准偏差 0.32%→0.18%，优于目标 0.20%",
            "说明：PID参数写入烘丝机作业指导书，换牌后先行预热10分钟",
        ),
        label="结题-含水率",
    ),
    click("liqiang", 38, "09:12", "验收通过", item="结题-含水率"),
    # -- this quarter: a topic taken by 第二党支部, behind on a milestone ------------------------------------
    say(
        "liqiang",
        55,
        "10:17",
        form(
            "出题",
            "名称：提高切丝宽度合格率",
            "说明：切丝宽度合格率 92%，目标 98%；涉及切叶丝机刀门压力与磨刀周期",
            "积分：30",
        ),
        label="课题-切丝",
    ),
    say("wuhao", 54, "08:36", "选题 {课题-切丝}", label="项目-切丝"),
    say(
        "wuhao",
        54,
        "09:02",
        form(
            "项目 {项目-切丝}",
            "成员：马强、郭琳",
            "里程碑：10天后 完成切丝宽度测量",
            "里程碑：40天后 刀门压力标定纳入周保养",
            "里程碑：75天后 合格率连续两周达到98%",
        ),
    ),
    say(
        "maqiang",
        46,
        "17:10",
        "进展 {项目-切丝} 完成2台切叶丝机切丝宽度测量，合格率92.4%，刀门压力波动是主因",
    ),
    say("wuhao", 44, "08:50", "完成 {项目-切丝} 1"),
    say("guolin", 20, "11:25", "进展 {项目-切丝} 磨刀周期由8小时改为6小时，试行一周合格率95.1%"),
    # -- an open topic, and the committee's hand in the 党建考评 -------------------------------------------
    say(
        "liqiang",
        12,
        "09:47",
        form(
            "出题",
            "名称：研制振动输送机传动总成拆装专用工装",
            "说明：传动总成拆装需3人2小时，目标1人40分钟，降低检修劳动强度",
            "截止：90天后",
        ),
    ),
    say("liqiang", 9, "16:05", "考评 加分 第二党支部 2 承办车间党建+质量现场会"),
)
