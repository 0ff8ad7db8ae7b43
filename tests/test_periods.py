"""The pure rules of the points practice: periods, ranks with ties, rank arrows, innovation shares."""

from __future__ import annotations

from datetime import date

import pytest

from bot.config import parse_config
from handlers.ledger import fmt, signed, x100
from handlers.periods import parse_period, period_keys, period_of, previous, relative
from handlers.points import result_key, top_up
from handlers.rankings import competition_ranks, rank_change
from tests.kit import merge, shipped_config

DAY = date(2026, 11, 24)  # a Tuesday in the fourth quarter


@pytest.mark.parametrize(
    ("kind", "key", "start", "end"),
    [
        ("week", "2026W48", date(2026, 11, 23), date(2026, 11, 30)),
        ("month", "2026-11", date(2026, 11, 1), date(2026, 12, 1)),
        ("quarter", "2026Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("year", "2026", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_period_of_a_day(kind, key, start, end):  # type: ignore[no-untyped-def]
    p = period_of(kind, DAY)
    assert (p.key, p.start, p.end) == (key, start, end)
    assert p.contains(DAY) and not p.contains(end)


def test_keys_of_a_day_and_iso_weeks_across_new_year():
    assert period_keys(DAY) == ("2026W48", "2026-11", "2026Q4", "2026")
    # 2027-01-01 is a Friday: it belongs to the last ISO week of 2026, but to January and Q1 of 2027.
    assert period_keys(date(2027, 1, 1)) == ("2026W53", "2027-01", "2027Q1", "2027")
    assert period_of("week", date(2026, 1, 1)).key == "2026W01"


def test_previous_periods():
    assert previous(period_of("quarter", date(2026, 1, 15))).key == "2025Q4"
    assert previous(period_of("month", date(2026, 3, 31))).key == "2026-02"
    assert previous(period_of("week", date(2026, 1, 1))).key == "2025W52"
    assert previous(period_of("year", DAY)).key == "2025"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("本周", "2026W48"),
        ("上周", "2026W47"),
        ("本月", "2026-11"),
        ("上月", "2026-10"),
        ("本季度", "2026Q4"),
        ("上季度", "2026Q3"),
        ("本年", "2026"),
        ("去年", "2025"),
        ("2026Q3", "2026Q3"),
        ("2026q1", "2026Q1"),
        ("2026年第二季度", "2026Q2"),
        ("2026-11", "2026-11"),
        ("2026年3月", "2026-03"),
        ("2026/7", "2026-07"),
        ("2026W05", "2026W05"),
        ("2026年第5周", "2026W05"),
        ("2025", "2025"),
        ("2025年", "2025"),
        ("previous_quarter", "2026Q3"),
        ("previous_month", "2026-10"),
    ],
)
def test_parse_period(text, key):  # type: ignore[no-untyped-def]
    found = parse_period(text, DAY)
    assert found is not None and found.key == key


@pytest.mark.parametrize("text", ["2026Q5", "2026-13", "2026W60", "下季度", "季度", "1999"])
def test_parse_period_refuses_what_is_not_a_period(text):  # type: ignore[no-untyped-def]
    assert parse_period(text, DAY) is None


def test_relative_periods_at_a_quarter_boundary():
    first = date(2027, 1, 1)
    assert relative("previous_quarter", first).key == "2026Q4"  # type: ignore[union-attr]
    assert relative("previous_month", first).key == "2026-12"  # type: ignore[union-attr]
    assert relative("previous_week", date(2026, 11, 30)).key == "2026W48"  # type: ignore[union-attr]


def test_period_labels_and_bounds():
    q = period_of("quarter", DAY)
    assert (q.label, q.span) == ("2026年第四季度", "2026-10-01 至 2026-12-31")
    assert period_of("week", DAY).label == "2026年第48周"
    start, end = q.bounds(parse_config({}, env={}).tz)
    assert start.isoformat() == "2026-10-01T00:00:00+08:00" and end.isoformat() == "2027-01-01T00:00:00+08:00"


def test_competition_ranks_share_a_rank_and_skip_after_ties():
    assert competition_ranks([900, 700, 700, 500, 500, 500, 100]) == [1, 2, 2, 4, 4, 4, 7]
    assert competition_ranks([300, 300]) == [1, 1]
    assert competition_ranks([]) == []


def test_rank_change_arrows():
    assert rank_change(1, 3) == "↑2"
    assert rank_change(4, 3) == "↓1"
    assert rank_change(2, 2) == "–"
    assert rank_change(5, None) == "新"


def test_points_are_exact_hundredths():
    assert x100(0.5) == 50 and x100(2.67) == 267 and x100(-2) == -200
    assert [fmt(v) for v in (300, 250, 267, -200, 0, 5)] == ["3", "2.5", "2.67", "-2", "0", "0.05"]
    assert (signed(300), signed(-150), signed(0)) == ("+3", "-1.5", "0")


def test_innovation_points_and_shares_from_the_shipped_table():
    config = parse_config(shipped_config(), env={})
    assert config.innovation.points("QC", "厂级", "一等奖") == 8
    assert config.innovation.points("专利", "厂级", "发明") == 8  # awards do not depend on the level
    assert config.innovation.points("专利", "厂级", None) is None  # patents need an award
    assert config.innovation.shares(8, 2) == (8.0, 4.0)
    # Six people at 0.5 would exceed the team cap of 2.5 × 8: every share is scaled down.
    leader, member = config.innovation.shares(8, 5)
    assert leader + 5 * member == pytest.approx(20, abs=0.05)
    equal = parse_config(merge(shipped_config(), {"innovation": {"split": {"rule": "equal"}}}), env={})
    assert equal.innovation.shares(9, 2) == (3.0, 3.0)


def test_a_higher_level_pays_only_the_difference():
    # 厂级 一等 (8: leader 8, member 4) paid before; now 公司级 一等 (12: leader 12, member 6).
    assert top_up({1: 1200, 2: 600, 3: 600}, {1: 800, 2: 400}) == {1: 400, 2: 200, 3: 600}
    assert top_up({1: 800}, {1: 800}) == {1: 0}


def test_the_same_result_is_recognised_however_it_is_written():
    assert result_key("QC成果", "《降低叶丝干燥水分偏差》") == result_key("QC成果", "降低叶丝干燥水分偏差")
    assert result_key("QC成果", "ＡＢＣ 课题") == result_key("QC成果", "abc课题")
    assert result_key("QC成果", "课题") != result_key("专利", "课题")
