"""Fixtures: a migrated database per test (SQLite file, or PostgreSQL when PIONEER_TEST_DATABASE_URL is
set), a fake WeCom API on loopback, and running bots.

On SQLite each test copies a database migrated once per session. On PostgreSQL the database is
migrated once per session and every table is truncated before each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import storage.tables  # noqa: F401
from bot.pictures import Drawer
from bot.simulator.fake_api import FakeWeCom
from storage.database import normalise_url
from storage.migrate import upgrade
from tests.kit import AGENT_ID, CORP_ID, SECRET, BotKit, start_bot, stop_bot

PG_URL = os.environ.get("PIONEER_TEST_DATABASE_URL", "")


def _upgrade(url: str) -> None:
    # Alembic's PostgreSQL path runs its own event loop, so keep it off the test's loop thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, url).result()


@pytest.fixture(scope="session", autouse=True)
def drawing_process() -> None:
    """The picture process is shared by every bot of this Python process (bot/pictures.py): start it
    once, before the first test, so that no test's first picture waits ~2 s for it while the kit's
    2-second outbox lease runs out (the row would then be claimed again and sent twice)."""
    ready = Drawer(1).warm()
    assert ready is not None
    ready.result(timeout=120)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_pg() -> str:
    _upgrade(PG_URL)
    return PG_URL


async def _truncate_pg(url: str) -> None:
    engine = create_async_engine(normalise_url(url))
    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND table"
                        "name <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        names = ", ".join(f'"{t}"' for t in tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if PG_URL:
        url = request.getfixturevalue("migrated_pg")
        await _truncate_pg(url)
        return url
    template = request.getfixturevalue("migrated_sqlite")
    target = tmp_path / "pioneer.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID)
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


MakeBot = Callable[..., Awaitable[BotKit]]


@pytest.fixture
async def make_bot(fake: FakeWeCom, http: aiohttp.ClientSession, database_url: str) -> AsyncIterator[MakeBot]:
    """Start bots with config overrides (`await make_bot(handlers={"budget_seconds": 0.2})`)."""
    started: list[BotKit] = []

    async def make(**overrides: Any) -> BotKit:
        kit = await start_bot(fake, http, database_url, **overrides)
        started.append(kit)
        return kit

    yield make
    for kit in reversed(started):
        await stop_bot(kit)


@pytest.fixture
async def bot(make_bot: MakeBot) -> BotKit:
    """A running bot with the demo cast imported."""
    return await make_bot()
