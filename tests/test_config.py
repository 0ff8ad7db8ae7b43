"""The configuration: the shipped `config.yaml`, env substitution, and how problems are reported."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger

from bot.config import Config, ConfigError, load_config, parse_config
from tests.kit import shipped_config

SHIPPED = Path(__file__).resolve().parent.parent / "config.yaml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The shipped file as parsed YAML, to mutate one key per test."""
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(SHIPPED, env={})


def problems_of(data: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={} if env is None else env)
    return caught.value.problems


# --- the shipped file -----------------------------------------------------------------------------


def test_shipped_config_has_four_categories_of_six_indicators(config: Config) -> None:
    assert [c.name for c in config.points.categories] == [
        "攻坚克难",
        "能力素质提升",
        "岗位教练指导",
        "企业文化",
    ]
    assert [len(c.indicators) for c in config.points.categories] == [6, 6, 6, 6]
    assert config.points.deductions is not None
    assert all(i.points <= 0 for i in config.points.deductions.indicators)
    assert len(config.points.indicators) == 24 + len(config.points.deductions.indicators)


def test_shipped_config_starts_in_local_mode_without_credentials(config: Config) -> None:
    assert not config.wecom.configured
    assert config.wecom.agent_id is None
    assert config.database.url == "sqlite:///data/pioneer.db"
    assert (config.server.port, config.server.callback_path, config.server.max_clock_skew) == (
        8080,
        "/wecom/callback",
        300,
    )
    assert all(g.webhook.startswith("http://127.0.0.1:8080/sim/") for g in config.groups.values())


def test_shipped_config_uses_credentials_from_the_environment() -> None:
    env = {
        "WECOM_CORP_ID": "ww0123456789abcdef",
        "WECOM_AGENT_ID": "1000002",
        "WECOM_SECRET": "s3cret",
        "WECOM_ENCODING_AES_KEY": "a" * 43,
        "DATABASE_URL": "postgresql+asyncpg://bot@db/pioneer",
    }
    config = load_config(SHIPPED, env=env)
    assert config.wecom.configured
    assert config.wecom.agent_id == 1000002
    assert config.database.url == "postgresql+asyncpg://bot@db/pioneer"


def test_shipped_schedules_parse_avoid_busy_minutes_and_name_known_groups(config: Config) -> None:
    names = {s.name for s in config.schedules}
    assert {"pending_digest", "ranking_weekly", "ranking_monthly", "ranking_quarterly"} <= names
    # Every schedule names a job some practice registered (more practices add theirs).
    from bot.scheduler import JOBS

    assert {"pending_digest", "ranking_broadcast"} <= {s.job for s in config.schedules} <= set(JOBS)
    for s in config.schedules:
        CronTrigger.from_crontab(s.cron, timezone=config.tz)
        assert s.cron.split()[0] not in {"0", "00", "30"}, s.name
        assert set(s.arguments.get("groups", [])) <= set(config.groups)


@pytest.mark.parametrize(
    ("kind", "level", "grade", "points"),
    [
        ("QC成果", "厂级", "一等", 8),
        ("QC", "广西中烟", "示范级", 12),  # aliases of type, level and grade
        ("QC成果", "全国", "发布未获奖", 8),
        ("QC成果", "厂级", None, 2),  # 等次 left out → default grade 发布未获奖
        ("六西格玛", "车间", "绿带", 5),  # the type's own award wins over the table
        ("六西格玛", "公司级", "二等", 9),  # contest awards still use the shared table
        ("小改小革", "班组", "效益10万", 7),
        ("合理化建议", "厂级", "一等", 3),  # own awards only: not the table's 8
        ("专利", None, "发明", 8),
        ("专利", "全国", "一等", None),  # patents do not use the table
        ("QC成果", "火星", "一等", None),
        ("无此类型", "厂级", "一等", None),
    ],
)
def test_innovation_points_come_from_the_table_and_type_awards(
    config: Config, kind: str, level: str | None, grade: str | None, points: float | None
) -> None:
    assert config.innovation.points(kind, level, grade) == points


def test_innovation_shares_follow_the_split_rule(config: Config) -> None:
    assert config.innovation.shares(8, members=2) == (8, 4)  # leader ×1.0, members ×0.5
    leader, member = config.innovation.shares(8, members=9)
    assert leader + 9 * member == pytest.approx(8 * 2.5, abs=0.05)  # team total capped at 2.5×
    assert leader == 2 * member


def test_skills_have_sections_and_cycle_days_from_complexity(config: Config) -> None:
    posts = {p.name: p for p in config.skills.posts}
    assert len(posts) == 13
    assert {"开箱喂料岗", "切叶丝岗", "中控室岗", "电气维修岗"} <= set(posts)
    assert all(p.cycle_days == config.skills.complexity_cycle_days[p.complexity] for p in posts.values())
    assert config.skills.cycle_days("切丝") == 90  # alias, complexity 4
    assert config.skills.target("切叶丝岗", "切叶丝岗") == "U"
    assert config.skills.target("切叶丝岗", "叶丝干燥岗") == "L"  # same 工段
    assert config.skills.target("切叶丝岗", "电气维修岗") == "I"
    assert config.skills.label("0") == "未培训"


def test_activity_and_publicity_lookups(config: Config) -> None:
    assert config.activities.signin_window_minutes == 20
    meeting = config.activities.type("党课")
    assert meeting is not None and config.activities.indicator_for(meeting) == "B01"
    reading = config.activities.type("读书会")
    assert reading is not None and config.activities.indicator_for(reading) == "D02"
    assert [c.points for c in config.publicity.channels] == [1, 2, 4, 8, 15, 30]
    channel = config.publicity.channel("东方烟草报")
    assert channel is not None and channel.code == "industry"
    assert config.publicity.module_quota("精益创新") == 1
    assert config.publicity.module_quota("生产组织") == 2


def test_find_indicators_by_code_name_and_part_of_a_name(config: Config) -> None:
    assert [i.code for i in config.points.find_indicators("ａ０１")] == ["A01"]  # full-width code
    assert [i.code for i in config.points.find_indicators("三会一课")] == ["B01"]  # alias, exact
    assert [i.code for i in config.points.find_indicators("技能")] == ["B04", "B05"]  # part of names
    assert [i.code for i in config.points.find_indicators("三违", include_deductions=False)] == []
    assert config.points.find_indicators("") == []
    suggestion = config.points.indicator("a06")
    assert suggestion is not None
    assert (suggestion.points_for(None), suggestion.points_for("采纳"), suggestion.points_for("胡说")) == (
        1,
        3,
        None,
    )


# --- env substitution -----------------------------------------------------------------------------


def test_env_substitution_reaches_nested_lists_and_uses_defaults() -> None:
    config = parse_config(
        {
            "admins": ["${ADMIN}", "user-${SUFFIX:-b}"],
            "groups": {"g": {"webhook": "${HOOK:-http://127.0.0.1:8080/sim/cgi-bin/webhook/send?key=g}"}},
            "schedules": [
                {
                    "name": "d",
                    "cron": "${CRON:-17 8 * * 1-5}",
                    "job": "pending_digest",
                    "arguments": {"groups": ["${GROUP}"]},
                }
            ],
            "server": {"port": "${PORT:-8080}"},
        },
        env={"ADMIN": "zhangsan", "GROUP": "g", "PORT": "9090"},
    )
    assert config.admins == ["zhangsan", "user-b"]
    assert config.groups["g"].webhook.endswith("key=g")
    assert config.schedules[0].cron == "17 8 * * 1-5"
    assert config.schedules[0].arguments == {"groups": ["g"]}
    assert config.server.port == 9090


def test_missing_env_var_without_default_is_reported_with_its_path() -> None:
    problems = problems_of({"admins": ["ok", "${NOT_SET_ANYWHERE}"], "database": {"url": "${DB:-sqlite://}"}})
    assert problems == ["admins[1]: environment variable NOT_SET_ANYWHERE is not set"]


# --- problems, with their paths -------------------------------------------------------------------


def test_type_error_names_the_exact_path(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["points"]["categories"][2]["indicators"][0]["points"] = "lots"
    assert problems_of(data) == ["points.categories[2].indicators[0].points: must be a number"]


def test_duplicate_indicator_code_is_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["points"]["categories"][1]["indicators"][2]["code"] = "A01"
    assert problems_of(data) == [
        "points.categories[1].indicators[2].code: duplicate indicator code 'A01' (also in category A)"
    ]


def test_unknown_level_in_innovation_table_is_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["innovation"]["table"]["市级"] = data["innovation"]["table"].pop("厂级")
    problems = problems_of(data)
    assert any(
        p.startswith("innovation.table.市级: unknown level (levels are 班组, 车间, 厂级") for p in problems
    )
    assert "innovation.table: missing level 厂级" in problems


def test_negative_innovation_points_are_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["innovation"]["table"]["厂级"]["一等"] = -8
    assert problems_of(data) == ["innovation.table.厂级.一等: must be at least 0"]


def test_bad_cron_is_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["schedules"][1]["cron"] = "47 8 L * *"
    problems = problems_of(data)
    assert len(problems) == 1
    assert problems[0].startswith("schedules[1].cron: not a cron expression")


def test_unknown_time_zone_is_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["timezone"] = "Mars/Olympus"
    assert problems_of(data) == ["timezone: unknown time zone 'Mars/Olympus' (e.g. Asia/Shanghai)"]


def test_bad_encoding_aes_key_is_refused(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["wecom"]["encoding_aes_key"] = "too-short"
    problems = problems_of(data)
    assert problems == [
        "wecom.encoding_aes_key: must be 43 letters or digits (the EncodingAESKey from the WeCom admin"
        " console)"
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["publicity"].__setitem__("indicator", "Z99"),
            "publicity.indicator: unknown indicator 'Z99'",
        ),
        (
            lambda d: d["schedules"][1]["arguments"].__setitem__("groups", ["制丝车间群", "不存在的群"]),
            "schedules[1].arguments.groups[1]: unknown group '不存在的群'",
        ),
        (
            lambda d: d["groups"]["党总支群"].__setitem__("webhook", "not a url"),
            "groups.党总支群.webhook: must be an http(s) URL",
        ),
        (
            lambda d: d["points"]["categories"][0]["indicators"][4]["cap"].__setitem__("period", "fortnight"),
            "points.categories[0].indicators[4].cap.period: must be one of 'week', 'month', 'quarter' "
            "or 'year'",
        ),
        (
            lambda d: d["points"]["deductions"]["indicators"][0].__setitem__("points", 2),
            "points.deductions.indicators[0].points: must be zero or negative (this is a deduction)",
        ),
        (
            lambda d: d["skills"]["iluo"]["targets"].__setitem__("本岗位", "X"),
            "skills.iluo.targets.本岗位: must be one of '0', 'I', 'L', 'U' or 'O'",
        ),
        (
            lambda d: d["skills"]["posts"][0].__setitem__("section", "卷包段"),
            "skills.posts[0].section: unknown section",
        ),
        (
            lambda d: d["innovation"]["types"][1]["awards"][0].__setitem__("name", "示范级"),
            "innovation.types[1].awards[0]: '示范级' clashes with grade 一等",
        ),
        (lambda d: d["points"].__setitem__("colour", "red"), "points.colour: is not a known key"),
    ],
)
def test_domain_mistakes_are_refused_with_their_path(raw: dict[str, Any], mutate: Any, expected: str) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    problems = problems_of(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_several_problems_are_reported_at_once(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["timezone"] = "Nowhere/Land"
    data["wecom"]["encoding_aes_key"] = "short"
    data["schedules"][0]["cron"] = "every morning"
    data["points"]["categories"][2]["indicators"][0]["points"] = "lots"
    data["innovation"]["table"]["厂级"]["一等"] = -1
    data["admins"] = ["${UNSET_ADMIN}"]
    problems = problems_of(data)
    paths = [p.split(": ", 1)[0] for p in problems]
    assert sorted(paths) == sorted(
        [
            "admins[0]",
            "timezone",
            "wecom.encoding_aes_key",
            "schedules[0].cron",
            "points.categories[2].indicators[0].points",
            "innovation.table.厂级.一等",
        ]
    )


def test_an_empty_file_still_gives_the_spine_defaults() -> None:
    config = parse_config(None, env={})
    assert config.timezone == "Asia/Shanghai"
    assert config.points.indicators == []
    assert config.innovation.points("QC成果", "厂级", "一等") is None


# -- sections belong to their practices --------------------------------------------------------------


def test_a_practice_section_is_validated_with_its_key_path_and_its_references() -> None:
    """A practice declares its own section next to its handlers; `check` reports it like the spine's."""
    from pydantic import Field

    from bot.config import SECTIONS, PracticeSection, config_section
    from handlers.points_config import indicator_refs

    @config_section("canteen")
    class CanteenConfig(PracticeSection):
        meals_per_week: int = Field(default=5, ge=0)
        indicator: str | None = None

        def references(self, config: Config) -> list[tuple[str, str]]:
            return indicator_refs(config, [("canteen.indicator", self.indicator)])

    try:
        raw = shipped_config()
        assert CanteenConfig.of(parse_config(raw, env={})).meals_per_week == 5  # defaults when left out
        bad = {**raw, "canteen": {"meals_per_week": -1, "indicator": "Z99"}}
        with pytest.raises(ConfigError) as exc:
            parse_config(bad, env={})
        assert exc.value.problems == ["canteen.meals_per_week: must be at least 0"]
        with pytest.raises(ConfigError) as exc:
            parse_config({**raw, "canteen": {"indicator": "Z99"}}, env={})
        assert exc.value.problems == ["canteen.indicator: unknown indicator 'Z99'"]
        with pytest.raises(ValueError, match="registered twice"):
            config_section("canteen")(type("Other", (PracticeSection,), {}))
    finally:
        SECTIONS.pop("canteen")
    with pytest.raises(ConfigError) as exc:  # once unregistered, the key is unknown again
        parse_config({**shipped_config(), "canteen": {}}, env={})
    assert exc.value.problems == ["canteen: is not a known key"]


def test_the_spine_knows_no_practice() -> None:
    """bot/config.py declares only the runtime's settings; every practice section is registered."""
    from bot.config import SECTIONS, Config

    assert {"points", "innovation", "publicity", "skills", "activities", "projects"} <= set(SECTIONS)
    assert not set(SECTIONS) & set(Config.model_fields)
    assert all(SECTIONS[k].__module__.startswith("handlers.") for k in SECTIONS)


def test_a_file_that_is_not_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text('timezone: "Asia/Shanghai"\nadmins: [wangfang\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(broken, env={})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{broken}: not valid YAML")
    assert "line 3" in problem  # where the parser gave up: the list is never closed


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nowhere.yaml", env={})
    assert caught.value.problems == [f"{tmp_path / 'nowhere.yaml'}: cannot read (No such file or directory)"]
