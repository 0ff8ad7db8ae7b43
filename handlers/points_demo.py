"""The points practice's demo history for local mode: about ten weeks of a 制丝 workshop's 积分 chat.

Members of the demo cast (`bot/simulator/cast.csv`) claim 尽责 indicators, report innovation results
and are awarded points by their secretaries; the secretaries approve most, reject some with the
reasons a secretary would give, and leave a few waiting, so that 排行 (with its arrows against the
previous week, month and quarter), 我的, 待审, 导出 and the ranking broadcasts have something to show
on the first click. Only the words people type are used (see `帮助` and docs/guide.md), never
item numbers: `{label}` stands for the `#N` the bot answered to the step labelled so.

The cast: 第一党支部 (secretary 张伟 zhangwei; 李强 liqiang is on the 党总支 committee) with 王芳
wangfang, 孙丽 sunli, 周杰 zhoujie, 赵磊 zhaolei, 陈静 chenjing (预备党员) and 刘洋 liuyang (群众);
第二党支部 (secretary 吴昊 wuhao) with 徐明 xuming, 黄鑫 huangxin (团员), 马强 maqiang and 郭琳 guolin.
A secretary's own claims go to the 党总支 (李强).
"""

from __future__ import annotations

from bot.simulator.demo import Step, click, say


def form(*lines: str) -> str:
    return "\n".join(lines)


DEMO_HISTORY: tuple[Step, ...] = (
    # -- the end of last quarter: a first standing for the arrows of 本季度 -------------------------------
    say(
        "maqiang",
        74,
        "08:52",
        form("尽责", "指标：A01", "说明：梗丝膨胀线停产技改突击队，连续两个夜班完成管道改造"),
        label="马强-膨胀线技改",
    ),
    say(
        "zhaolei",
        73,
        "16:20",
        form(
            "尽责",
            "指标：A02",
            "说明：切叶丝机刀门压力波动大，重新标定压力传感器并调整刀门间隙，波动由±0.3MPa降到±0.1MPa",
        ),
        label="赵磊-刀门",
    ),
    say(
        "wangfang",
        72,
        "10:05",
        form("尽责", "指标：B02", "档次：撰写", "说明：学习心得《以严的标准守好制丝质量关》"),
        label="王芳-心得",
    ),
    say(
        "xuming",
        71,
        "14:40",
        form("尽责", "指标：A04", "说明：中秋节假日保产，值守薄板烘丝机检修"),
        label="徐明-中秋保产",
    ),
    say("zhoujie", 70, "09:12", "尽责 B01 参加第三季度支部党员大会", label="周杰-党员大会"),
    click("wuhao", 70, "09:40", "通过", item="马强-膨胀线技改"),
    say("wuhao", 70, "09:41", "通过 {徐明-中秋保产}"),
    click("zhangwei", 69, "08:35", "通过", item="赵磊-刀门"),
    say("zhangwei", 69, "08:37", "通过 {王芳-心得} {周杰-党员大会}"),
    say(
        "maqiang",
        66,
        "17:05",
        form("尽责", "指标：C04", "说明：修订《梗丝膨胀岗作业指导书》，补充开机预热与断料处置要点"),
        label="马强-SOP",
    ),
    say("guolin", 65, "11:18", "尽责 D03 参加社区敬老院志愿服务", label="郭琳-志愿"),
    say("wuhao", 64, "08:50", "通过 {马强-SOP} {郭琳-志愿}"),
    say("zhangwei", 63, "15:30", "加分 赵磊 A04 2 国庆前夜加班完成烘丝机蒸汽阀组更换"),
    # -- last month ----------------------------------------------------------------------------------
    say(
        "zhoujie",
        58,
        "08:25",
        form("尽责", "指标：A04", "说明：国庆节假日保产顶岗，负责叶片加料岗"),
        label="周杰-国庆保产",
    ),
    say(
        "wangfang",
        57,
        "19:40",
        form("尽责", "指标：A01", "说明：新牌号试制突击队，跟班调整叶丝干燥出口含水率"),
        label="王芳-试制",
    ),
    say("zhangwei", 56, "08:41", "通过 {周杰-国庆保产} {王芳-试制}"),
    say(
        "xuming",
        55,
        "10:30",
        form("尽责", "指标：A02", "说明：喂丝机振槽频繁堵料，重新设计导料板角度并加装清扫口，一周未再堵料"),
        label="徐明-振槽",
    ),
    click("wuhao", 54, "09:02", "通过", item="徐明-振槽"),
    say(
        "chenjing",
        52,
        "21:15",
        form("尽责", "指标：B02", "档次：撰写", "说明：学习党的二十届四中全会精神心得体会"),
        label="陈静-心得",
    ),
    say(
        "zhaolei",
        51,
        "16:45",
        form(
            "创新",
            "类型：QC成果",
            "名称：降低切叶丝机刀门压力波动",
            "级别：厂级",
            "等次：二等",
            "成员：王芳、陈静",
            "说明：2026年厂QC成果发布会二等奖",
        ),
        label="赵磊-QC刀门",
    ),
    click("zhangwei", 50, "08:30", "通过", item="陈静-心得"),
    click("liqiang", 49, "10:15", "通过", item="赵磊-QC刀门"),
    say(
        "maqiang",
        48,
        "13:20",
        form("尽责", "指标：A05", "说明：10月梗丝线党员责任区整丝率达标"),
        label="马强-责任区",
    ),
    say("wuhao", 47, "09:05", "驳回 {马强-责任区} 10月考核表还没出来，月底凭考核表再申报"),
    say(
        "sunli",
        45,
        "15:10",
        form("尽责", "指标：C05", "说明：给新进厂员工讲授《制丝工艺流程与质量标准》2学时"),
        label="孙丽-内训",
    ),
    say("sunli", 45, "15:14", form("尽责", "指标：A02", "说明：解决烘丝机出口温度波动"), label="孙丽-重复"),
    say("zhangwei", 44, "08:33", "通过 {孙丽-内训}"),
    say("zhangwei", 44, "08:35", "驳回 {孙丽-重复} 缺少问题与措施说明和班组长确认，请补充后重新申报"),
    say(
        "guolin",
        42,
        "10:40",
        form("尽责", "指标：B05", "档次：厂级", "说明：厂制丝设备维修技能竞赛三等奖"),
        label="郭琳-竞赛",
    ),
    say("wuhao", 41, "08:55", "通过 {郭琳-竞赛}"),
    say(
        "xuming",
        40,
        "17:30",
        form(
            "创新",
            "类型：小改小革",
            "名称：喂丝机振槽防堵料导料板改造",
            "级别：车间",
            "等次：采纳",
            "成员：黄鑫",
            "说明：年节约停机清料约40小时，效益约1.2万元",
        ),
        label="徐明-小改",
    ),
    click("wuhao", 39, "09:10", "通过", item="徐明-小改"),
    say(
        "zhoujie",
        37,
        "14:05",
        form("尽责", "指标：C01", "说明：师带徒刘洋第一阶段考核（松散回潮岗）合格"),
        label="周杰-师带徒",
    ),
    say("zhangwei", 36, "08:44", "通过 {周杰-师带徒}"),
    say(
        "wuhao",
        35,
        "16:00",
        form("尽责", "指标：B06", "档次：主讲", "说明：主讲微党课《把支部建在生产线上》"),
        label="吴昊-微党课",
    ),
    click("liqiang", 34, "09:20", "通过", item="吴昊-微党课"),
    say("liqiang", 33, "10:10", "加分 徐明 D04 2 设备维修事迹被厂公众号宣传"),
    say(
        "zhangwei",
        30,
        "15:40",
        form(
            "尽责", "指标：B06", "档次：主讲", "说明：为第一党支部主讲党课《学习贯彻党的二十届四中全会精神》"
        ),
        label="张伟-党课",
    ),
    click("liqiang", 29, "09:10", "通过", item="张伟-党课"),
    say(
        "maqiang",
        32,
        "18:20",
        form("尽责", "指标：A05", "说明：10月梗丝线党员责任区整丝率、梗丝填充值均达标，附考核表"),
        label="马强-责任区2",
    ),
    say("wuhao", 31, "08:48", "通过 {马强-责任区2}"),
    # -- this month ----------------------------------------------------------------------------------
    say(
        "wangfang",
        28,
        "09:30",
        form(
            "创新",
            "类型：合理化建议",
            "名称：叶丝干燥出口增设在线水分仪校准点",
            "级别：车间",
            "等次：二等",
            "说明：车间10月合理化建议评审二等",
        ),
        label="王芳-建议",
    ),
    click("zhangwei", 27, "08:40", "通过", item="王芳-建议"),
    say("zhaolei", 26, "15:50", "尽责 C04 编写切叶丝机（EVO505-L）换刀JI分解表", label="赵磊-JI"),
    say("zhangwei", 25, "08:36", "通过 {赵磊-JI}"),
    say(
        "xuming",
        23,
        "22:40",
        form("尽责", "指标：A01", "说明：HXD气流烘丝机燃烧器故障夜间抢修突击，4小时恢复生产"),
        label="徐明-抢修",
    ),
    say("maqiang", 23, "22:55", form("尽责", "指标：A01", "说明：HXD燃烧器夜间抢修"), label="马强-抢修"),
    say("wuhao", 22, "08:50", "通过 {徐明-抢修}"),
    say(
        "wuhao",
        22,
        "08:52",
        "驳回 {马强-抢修} 同一次抢修已由徐明牵头申报，参加人员请在党小组会上登记，不重复计分",
    ),
    say(
        "wangfang",
        20,
        "11:25",
        form(
            "尽责",
            "指标：A02",
            "说明：叶丝干燥出口含水率标准偏差偏大，优化热风温度与筒壁蒸汽压力参数，标偏由0.32降到0.18",
        ),
        label="王芳-含水率",
    ),
    click("zhangwei", 19, "08:31", "通过", item="王芳-含水率"),
    say(
        "chenjing",
        18,
        "16:35",
        form("尽责", "指标：D03", "说明：参加厂团委“无偿献血”志愿服务"),
        label="陈静-献血",
    ),
    say("zhangwei", 17, "09:15", "通过 {陈静-献血}"),
    say(
        "guolin",
        16,
        "10:05",
        form("尽责", "指标：C05", "说明：掺配加香岗内训《料液配制与加香精度控制》3学时"),
        label="郭琳-内训",
    ),
    say("wuhao", 15, "08:47", "通过 {郭琳-内训}"),
    say(
        "zhoujie",
        13,
        "14:30",
        form(
            "尽责", "指标：A02", "说明：松散回潮机出口温度偏低，排查蒸汽疏水阀堵塞并更换，出口温度恢复到60±2℃"
        ),
        label="周杰-回潮",
    ),
    say(
        "zhoujie",
        12,
        "19:10",
        form("尽责", "指标：A04", "说明：周末顶岗叶片加料岗，保障新牌号投料"),
        label="周杰-顶岗",
    ),
    say("zhangwei", 11, "08:38", "通过 {周杰-回潮} {周杰-顶岗}"),
    say(
        "liuyang",
        11,
        "15:20",
        form(
            "创新",
            "类型：小改小革",
            "名称：开箱喂料段烟箱定位导轨加装限位块",
            "级别：班组",
            "等次：提交",
            "说明：减少烟箱偏位卡箱",
        ),
        label="刘洋-小改",
    ),
    click("zhangwei", 10, "08:45", "通过", item="刘洋-小改"),
    say(
        "guolin",
        9,
        "16:10",
        form("尽责", "指标：D06", "说明：帮扶困难职工家属就医，联系医院并陪同复诊"),
        label="郭琳-帮扶",
    ),
    say("wuhao", 8, "08:53", "通过 {郭琳-帮扶}"),
    say(
        "xuming",
        12,
        "23:10",
        form("尽责", "指标：A01", "说明：薄板烘丝机蒸汽管路泄漏夜间抢修突击，次日早班按时开机"),
        label="徐明-管路",
    ),
    say("wangfang", 9, "17:30", "尽责 B01 参加11月主题党日（参观廉政教育基地）", label="王芳-主题党日"),
    say("zhaolei", 9, "17:45", "尽责 B01 参加11月主题党日（参观廉政教育基地）", label="赵磊-主题党日"),
    say("wuhao", 11, "08:58", "通过 {徐明-管路}"),
    say("zhangwei", 8, "08:40", "通过 {王芳-主题党日} {赵磊-主题党日}"),
    say("zhangwei", 8, "10:20", "扣分 陈静 K01 2 无故缺席11月支部党员大会"),
    # -- last week --------------------------------------------------------------------------------------
    say(
        "xuming",
        7,
        "10:15",
        form("尽责", "指标：C04", "说明：修订《电气维修岗点检作业指导书》，补充变频器故障代码处置"),
        label="徐明-SOP",
    ),
    say(
        "zhaolei",
        6,
        "14:50",
        form("尽责", "指标：C01", "说明：师带徒陈静第二阶段考核（切叶丝岗）合格"),
        label="赵磊-师带徒",
    ),
    say(
        "wangfang",
        6,
        "16:40",
        form("尽责", "指标：B06", "档次：主讲", "说明：在班前会主讲微宣讲《质量是制丝人的饭碗》"),
        label="王芳-微宣讲",
    ),
    say("zhangwei", 5, "08:34", "通过 {赵磊-师带徒} {王芳-微宣讲}"),
    say("wuhao", 5, "08:50", "通过 {徐明-SOP}"),
    say(
        "sunli",
        5,
        "11:30",
        form(
            "尽责",
            "指标：A02",
            "说明：中控室掺配比例报警频繁，核对电子秤零点并修正掺配参数，报警次数由每班6次降到0次",
        ),
        label="孙丽-掺配",
    ),
    click("zhangwei", 4, "08:32", "通过", item="孙丽-掺配"),
    say("maqiang", 4, "15:15", form("尽责", "指标：A04", "说明：顶岗压梗切梗岗两个班次"), label="马强-顶岗"),
    say("wuhao", 3, "08:46", "通过 {马强-顶岗}"),
    say("liqiang", 3, "10:30", "加分 王芳 D04 2 先进事迹在厂报《身边的党员》栏目刊登"),
    say(
        "guolin",
        2,
        "17:25",
        form(
            "创新",
            "类型：QC成果",
            "名称：提高叶片加料精度",
            "级别：车间",
            "等次：一等",
            "成员：马强、徐明",
            "说明：车间QC成果发布会一等奖",
        ),
        label="郭琳-QC加料",
    ),
    say(
        "chenjing",
        2,
        "20:10",
        form("尽责", "指标：B02", "档次：撰写", "说明：学习《中国共产党支部工作条例》心得"),
        label="陈静-条例",
    ),
    say(
        "zhaolei",
        1,
        "16:05",
        form("尽责", "指标：C05", "说明：切叶丝岗内训《EVO505-L换刀与刀门调整》2学时"),
        label="赵磊-内训",
    ),
    # -- today: still waiting for the secretaries ---------------------------------------------------------
    say(
        "sunli",
        0,
        "08:20",
        form("尽责", "指标：C04", "说明：修订《中控室交接班检查表》"),
        label="孙丽-交接班",
    ),
    say("sunli", 0, "08:26", "撤销 {孙丽-交接班}"),
    say(
        "zhoujie",
        0,
        "07:50",
        form("尽责", "指标：A04", "说明：夜班顶岗叶丝干燥岗，处理KLD-2Z烘丝机来料堵料"),
        label="周杰-夜班",
    ),
    click("zhangwei", 0, "08:30", "通过", item="周杰-夜班"),
    say("wuhao", 0, "08:55", "加分 马强 A04 2 周日加班完成梗丝膨胀塔清灰保养"),
    say(
        "wangfang",
        0,
        "09:05",
        form("尽责", "指标：C04", "说明：修订《叶丝干燥岗作业指导书》，补充KLD-2Z烘丝机断料与堵料处置步骤"),
        label="王芳-作业指导书",
    ),
    say(
        "xuming",
        0,
        "09:40",
        form("尽责", "指标：D03", "说明：参加车间“安全生产月”义务宣讲"),
        label="徐明-宣讲",
    ),
)
