"""The hot path's reads stay as quick at year five as on day one: no statement that 我的, 排行, 帮助,
签到 or a 创新 form runs (nor the five-minute activity tick) reads a table that grows with use from end
to end, or sorts all of a member's rows to show the first few. SQLite's own plans (`EXPLAIN QUERY
PLAN`) are checked, since SQLite chooses without statistics; PostgreSQL plans from its statistics, as
`python -m bench.points_scale` measures.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import pytest

from tests.kit import BotKit, watch_statements
from tests.test_activities import announce

# Tables that grow with every message, claim, sign-in or year of use. (Members, teams, roles and the
# configuration's tables stay the size of the workshop.)
GROWING = (
    "items",
    "point_entries",
    "inbox",
    "outbox",
    "approval_requests",
    "submissions",
    "innovations",
    "innovation_members",
    "activities",
    "attendances",
    "activity_leaves",
    "projects",
    "project_members",
    "training_steps",
    "training_plans",
    "skill_changes",
    "audit_log",
    "media_files",
    "member_totals",
)


def recorded(bot: BotKit) -> list[tuple[str, Any]]:
    """Every statement the bot runs from now on, with its parameters."""
    seen: list[tuple[str, Any]] = []
    watch_statements(bot, lambda sql, params: seen.append((sql, params)))
    return seen


def plan(path: str, sql: str, params: Any) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        conn.close()


def full_reads(steps: list[str]) -> list[str]:
    """The steps of a plan that read a growing table whole, or all of its rows in one state."""
    bad = []
    for step in steps:
        words = step.split()
        if words[:1] == ["SCAN"] and words[1] in GROWING:
            bad.append(step)
        elif "ix_items_status_created" in step:  # every item of the workshop in that state
            bad.append(step)
    return bad


async def test_the_hot_paths_reads_never_read_a_growing_table_whole(bot: BotKit):
    if not bot.app.db.is_sqlite:
        pytest.skip("PostgreSQL chooses its plans from statistics (bench.points_scale measures them)")
    path = bot.app.db.sync_engine.url.database
    assert path
    # History to find: the sender's pending claim, an approved one, an activity this quarter.
    await bot.say("wangfang", "创新\n类型：小改小革\n名称：扭矩校准\n级别：班组\n等次：一等")
    await bot.say("zhangwei", "加分 王芳 A04 5 国庆保产")
    await announce(bot)
    seen = recorded(bot)
    for userid, text in (
        ("wangfang", "我的"),
        ("wangfang", "排行"),
        ("wangfang", "排行 支部"),  # computes the 党建考评 assessment, kept until its tables change
        ("wangfang", "帮助"),
        ("wangfang", "签到"),  # which activities are open for sign-in now
        ("chenjing", "创新\n类型：合理化建议\n名称：喂料口挡板\n级别：班组\n等次：二等"),
    ):
        assert await bot.say(userid, text)
    reads = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert any("FROM activities" in sql for sql, _ in reads)  # 我的's activities were read
    assert any("JOIN project_closings" in sql for sql, _ in reads)  # and the assessment computed
    found = {sql: full_reads(plan(path, sql, params)) for sql, params in reads}
    assert {sql: bad for sql, bad in found.items() if bad} == {}


async def test_a_members_pending_claims_are_read_from_the_index_in_order(bot: BotKit):
    """我的 shows the oldest five pending claims: read in the index's order, not all of them sorted."""
    if not bot.app.db.is_sqlite:
        pytest.skip("SQLite's plan")
    path = bot.app.db.sync_engine.url.database
    for n in range(7):
        await bot.say("wangfang", f"创新\n类型：小改小革\n名称：改进{n}\n级别：班组\n等次：一等")
    seen = recorded(bot)
    reply = await bot.say("wangfang", "我的")
    assert "待审：" in reply and "改进0" in reply and "改进4" in reply and "改进5" not in reply
    pending = [(sql, p) for sql, p in seen if "FROM items" in sql and "status = " in sql and "LIMIT" in sql]
    assert pending
    for sql, params in pending:
        assert not [s for s in plan(path, sql, params) if "TEMP B-TREE" in s], sql


async def test_the_five_minute_activity_tick_never_reads_a_growing_table_whole(bot: BotKit):
    """The tick runs in the writer's transaction every five minutes: at a million items its three
    look-ups took ~200 ms each when they started from every approved item."""
    if not bot.app.db.is_sqlite:
        pytest.skip("SQLite's plan")
    path = bot.app.db.sync_engine.url.database
    await bot.say("zhangwei", "加分 王芳 A04 5 国庆保产")
    await announce(bot)
    seen = recorded(bot)
    await bot.app.scheduler.run("activity_tick", datetime.now(bot.app.config.tz))
    reads = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
    tick = [sql for sql, _ in reads if "FROM activities" in sql]
    assert any("activities.reported IS 0" in sql for sql in tick), tick  # the reports due were read
    found = {sql: full_reads(plan(path, sql, params)) for sql, params in reads}
    assert {sql: bad for sql, bad in found.items() if bad} == {}
