"""The migrations build exactly the tables the models describe, on the database under test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import storage.tables  # noqa: F401 - every table on the metadata
from storage.database import normalise_url
from storage.migrate import HEAD, alembic_config, stored_revisions, upgrade
from tests.kit import BotKit

T = TypeVar("T")


async def test_models_and_migrations_agree(bot: BotKit):
    def diff(session):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(session.connection(), opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    assert await bot.query(diff) == []


def on(url: str, work: Callable[[Connection], T], *, autocommit: bool = False) -> T:
    """Run blocking `work` on a connection to `url` (SQLite directly, PostgreSQL through asyncpg)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        try:
            with engine.begin() as conn:
                return work(conn)
        finally:
            engine.dispose()

    async def run() -> T:
        engine = create_async_engine(parsed, isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED")
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A database with no tables: a SQLite file, or a fresh database beside the PostgreSQL under test."""
    pg = os.environ.get("PIONEER_TEST_DATABASE_URL")
    if not pg:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = normalise_url(pg)
    name = f"{server.database}_migration"
    admin = str(server.set(database="postgres").render_as_string(hide_password=False))
    on(admin, lambda c: c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"'), autocommit=True)
    on(admin, lambda c: c.exec_driver_sql(f'CREATE DATABASE "{name}"'), autocommit=True)
    yield server.set(database=name).render_as_string(hide_password=False)
    on(admin, lambda c: c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), autocommit=True)


def test_items_take_over_owner_state_and_decision_from_submissions(empty_database: str) -> None:
    """0004 moves owner, title, state and decision to `items`; rows written before it keep their meaning,
    and going back restores them."""
    url = empty_database
    upgrade(url, "0003")
    old = {
        "id": 7,
        "kind": "尽责",
        "member_id": 1,
        "submitted_by": 1,
        "branch_id": 1,
        "indicator": "A01",
        "variant": "",
        "category": "A",
        "title": "A01 突击队",
        "description": "抢修",
        "day": date(2026, 11, 20),
        "points_x100": 300,
        "status": "rejected",
        "created_at": datetime(2026, 11, 20, 1, tzinfo=UTC),
        "decided_by": 2,
        "decided_at": datetime(2026, 11, 21, 2, tzinfo=UTC),
        "reason": "缺照片",
        "void_reason": "",
    }

    def write(c: Connection) -> None:
        c.execute(text("INSERT INTO branches (id, name) VALUES (1, '第一党支部')"))
        c.execute(
            text(
                "INSERT INTO members (id, userid, name, branch_id, political_status, active) "
                "VALUES (1, 'wangfang', '王芳', 1, '党员', :yes), (2, 'zhangwei', '张伟', 1, '党员', :yes)"
            ),
            {"yes": True},
        )
        c.execute(text("INSERT INTO items (id, kind, created_at) VALUES (:id, :kind, :created_at)"), old)
        columns = ", ".join(old)
        c.execute(
            text(f"INSERT INTO submissions ({columns}) VALUES ({', '.join(':' + k for k in old)})"), old
        )

    on(url, write)
    upgrade(url, "0004")

    def read(c: Connection) -> tuple[Any, Any, set[str]]:
        item = c.execute(text("SELECT member_id, title, status, decided_by, reason FROM items")).one()
        sub = c.execute(text("SELECT id, indicator, points_x100, description FROM submissions")).one()
        return tuple(item), tuple(sub), {col["name"] for col in inspect(c).get_columns("submissions")}

    item, sub, columns_after = on(url, read)
    assert item == (1, "A01 突击队", "rejected", 2, "缺照片")
    assert sub == (7, "A01", 300, "抢修")
    assert "status" not in columns_after

    command.downgrade(alembic_config(url), "0003")
    back = on(
        url,
        lambda c: tuple(
            c.execute(text("SELECT kind, member_id, title, status, reason FROM submissions")).one()
        ),
    )
    assert back == ("尽责", 1, "A01 突击队", "rejected", "缺照片")


def test_head_names_the_newest_migration() -> None:
    """`upgrade` skips Alembic where the database stores `HEAD`: a migration added without moving
    `HEAD` would never run at start."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads() == [HEAD]


def test_a_database_at_head_is_checked_without_importing_alembic(empty_database: str) -> None:
    """The bot's start pays one query for a database at the newest revision, not Alembic's import; a
    database behind it is still brought up (and one ahead of this code is left to Alembic's error)."""
    assert stored_revisions(empty_database) is None  # no version table yet
    upgrade(empty_database, "0011")
    assert stored_revisions(empty_database) == ["0011"]
    probe = (
        "import sys\n"
        "from storage.migrate import stored_revisions, upgrade\n"
        f"upgrade({empty_database!r})\n"
        "print(stored_revisions(" + repr(empty_database) + "), 'alembic' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run() == f"['{HEAD}'] True"  # behind: Alembic ran the last migration
    assert run() == f"['{HEAD}'] False"  # at head: one query

    on(empty_database, lambda c: c.execute(text("UPDATE alembic_version SET version_num = '9999'")))
    with pytest.raises(Exception, match="9999"):  # written by a newer Pioneer: Alembic refuses
        upgrade(empty_database)
