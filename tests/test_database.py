"""The database layer's own promises: a transaction PostgreSQL picks as a deadlock's victim runs again;
bot processes sharing a SQLite file take turns at writing it without SQLite's polling."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from storage.database import Database
from storage.models import AuditLog
from tests.conftest import PG_URL
from tests.kit import BotKit


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL chooses deadlock victims; SQLite has one writer")
async def test_a_deadlock_victim_runs_again_and_records_once(bot: BotKit):
    attempts = []

    def unit(s):  # type: ignore[no-untyped-def]
        attempts.append(1)
        s.execute(insert(AuditLog).values(actor="t", action="deadlock-test"))
        if len(attempts) == 1:  # what PostgreSQL raises in the transaction it rolls back
            s.execute(text("DO $$ BEGIN RAISE EXCEPTION 'victim' USING ERRCODE = '40P01'; END $$"))
        return len(attempts)

    assert await bot.app.db.run(unit) == 2
    count = await bot.query(
        lambda s: s.execute(select(func.count()).where(AuditLog.action == "deadlock-test")).scalar_one()
    )
    assert count == 1  # the first attempt's row went with its rollback


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
async def test_other_errors_are_not_run_again(bot: BotKit):
    attempts = []

    def unit(s):  # type: ignore[no-untyped-def]
        attempts.append(1)
        s.execute(text("DO $$ BEGIN RAISE EXCEPTION 'a bug' USING ERRCODE = 'P0001'; END $$"))

    with pytest.raises(Exception, match="a bug"):
        await bot.app.db.run(unit)
    assert len(attempts) == 1


async def test_processes_sharing_a_sqlite_file_wait_their_turn_beyond_the_busy_timeout(tmp_path: Path):
    # Two Databases on one file, as two bot processes have: each its own lock file descriptor.
    path = tmp_path / "shared.db"
    first, second = (Database(f"sqlite:///{path}", busy_timeout_ms=100) for _ in range(2))
    first.start()
    second.start()
    try:
        await first.run(lambda s: s.execute(text("CREATE TABLE t (x INTEGER)")))
        holding, release = threading.Event(), threading.Event()

        def hold(s):  # type: ignore[no-untyped-def]
            s.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(5)

        held = asyncio.ensure_future(first.run(hold))
        assert await asyncio.to_thread(holding.wait, 5)
        # What a third process sees: the writer's turn is taken.
        fd = os.open(f"{path}-writer.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        waiting = asyncio.ensure_future(second.run(lambda s: s.execute(text("INSERT INTO t VALUES (2)"))))
        await asyncio.sleep(0.4)  # four busy timeouts: SQLite's own lock would have said "locked"
        assert not waiting.done()
        release.set()
        await held
        await waiting
        rows = await second.run(lambda s: list(s.execute(text("SELECT x FROM t ORDER BY rowid")).scalars()))
        assert rows == [1, 2]
    finally:
        release.set()
        await first.close()
        await second.close()
