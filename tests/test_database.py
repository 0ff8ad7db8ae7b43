"""The database layer's own promises: a transaction PostgreSQL picks as a deadlock's victim runs again;
bot processes sharing a SQLite file take turns at writing it without SQLite's polling."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from storage.database import Database, DatabaseUnavailable, unavailable
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


@contextlib.asynccontextmanager
async def opened(url: str, pool_size: int = 1) -> AsyncIterator[Database]:
    """A started Database whose pool holds `pool_size` connections (one: each unit reuses the last
    one's); closed after."""
    db = Database(url, pool_size=pool_size)
    db.start()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    async with opened(database_url) as db:
        yield db


def _note(action: str) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.execute(insert(AuditLog).values(actor="t", action=action))

    return unit


def _count(action: str) -> Callable[[Session], int]:
    return lambda s: s.execute(select(func.count()).where(AuditLog.action == action)).scalar_one()


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: each unit says BEGIN and COMMIT itself")
async def test_a_failed_unit_is_rolled_back_before_its_connection_serves_again(one_connection: Database):
    db = one_connection

    def fails(s: Session) -> None:
        _note("rolled-back")(s)
        raise ValueError("the handler's own error")

    with pytest.raises(ValueError, match="own error"):
        await db.run(fails, lock_key="wangfang")
    # The same connection: not still inside the failed unit's transaction (its row gone, and the
    # person's lock released, or this would wait on it)…
    assert await asyncio.wait_for(db.run(_count("rolled-back"), lock_key="wangfang"), 5) == 0
    # …and what it commits is committed: another connection sees it.
    await db.run(_note("kept"))
    async with opened(db.url.render_as_string(hide_password=False)) as other:
        assert await other.run(_count("kept")) == 1


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: each unit says BEGIN and COMMIT itself")
async def test_a_unit_cancelled_midway_leaves_no_transaction_behind(one_connection: Database):
    db = one_connection
    inside, never = asyncio.Event(), asyncio.Event()

    def interrupted(s: Session) -> None:
        _note("cancelled")(s)
        inside.set()
        await_only(never.wait())  # as if cancelled in the middle of a round trip

    waiting = asyncio.create_task(db.run(interrupted, lock_key="wangfang"))
    await inside.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The pool's one connection, or its replacement, starts a transaction of its own: the cancelled
    # unit's row is not in it, and the person's lock is free for another connection.
    assert await asyncio.wait_for(db.run(_count("cancelled"), lock_key="wangfang"), 5) == 0
    async with opened(db.url.render_as_string(hide_password=False)) as other:
        assert await asyncio.wait_for(other.run(_count("cancelled"), lock_key="wangfang"), 5) == 0


async def _end_backends(db: Database, pids: set[int]) -> None:
    async with opened(db.url.render_as_string(hide_password=False)) as killer:
        for pid in pids:
            await killer.run(lambda s, pid=pid: s.execute(text(f"SELECT pg_terminate_backend({int(pid)})")))
    await asyncio.sleep(0.1)


def _backend(s: Session) -> int:
    return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: a connection the server closed")
async def test_a_connection_lost_before_begin_is_replaced_and_the_unit_runs(one_connection: Database):
    db = one_connection
    pid = await db.run(_backend)
    await _end_backends(db, {pid})
    # Handed back a moment ago, the connection is not pinged: BEGIN finds it dead, and the unit begins
    # again on a new one (nothing was done on the dead one).
    await db.run(_note("after"))
    assert await db.run(_count("after")) == 1
    assert await db.run(_backend) != pid
    assert db.write_failure == ""


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: a connection the server closed")
async def test_the_health_ping_on_a_lost_connection_asks_again_on_a_new_one(one_connection: Database):
    db = one_connection
    await _end_backends(db, {await db.run(_backend)})
    assert await db.ping()  # the server is up: /healthz says so at once


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: a server restart closes every connection")
async def test_every_pooled_connection_lost_at_once_is_replaced(database_url: str):
    async with opened(database_url, pool_size=3) as db:
        gate = asyncio.Event()

        def held(s: Session) -> int:
            pid = _backend(s)
            await_only(gate.wait())
            return pid

        # Three units at once: the pool's three connections, all handed back a moment before the end.
        units = [asyncio.create_task(db.run(held)) for _ in range(3)]
        await asyncio.sleep(0.2)
        gate.set()
        pids = set(await asyncio.gather(*units))
        assert len(pids) == 3
        await _end_backends(db, pids)
        await db.run(_note("after restart"))
        assert await db.run(_count("after restart")) == 1


@contextlib.asynccontextmanager
async def _lock_held_by(other: Database, key: str) -> AsyncIterator[None]:
    """The person's lock `key` held by a unit on `other` until the block ends."""
    inside, release = asyncio.Event(), asyncio.Event()

    def holds_the_lock(s: Session) -> None:
        inside.set()
        await_only(release.wait())

    holder = asyncio.create_task(other.run(holds_the_lock, lock_key=key))
    await inside.wait()
    try:
        yield
    finally:
        release.set()
        await holder


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: BEGIN refused on a live connection")
async def test_a_begin_that_fails_on_a_live_connection_is_not_tried_again(one_connection: Database):
    db = one_connection
    await db.run(lambda s: s.execute(text("SET lock_timeout = '100ms'")))  # the session's, kept
    async with (
        opened(db.url.render_as_string(hide_password=False)) as other,
        _lock_held_by(other, "wangfang"),
    ):
        with pytest.raises(DatabaseUnavailable, match="lock timeout") as refused:
            await db.run(_note("waited"), lock_key="wangfang")
        assert unavailable(refused.value)
    assert await db.run(_count("waited")) == 0


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: BEGIN waits for the person's lock")
async def test_a_unit_cancelled_while_begin_waits_for_the_lock_leaves_no_transaction(
    one_connection: Database, recwarn: pytest.WarningsRecorder
):
    db = one_connection
    async with opened(db.url.render_as_string(hide_password=False)) as other:
        async with _lock_held_by(other, "wangfang"):
            waiting = asyncio.create_task(db.run(_note("never"), lock_key="wangfang"))
            await asyncio.sleep(0.3)  # in BEGIN, waiting for the lock
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        # The pool's one connection is back, not inside a transaction holding the person's lock: the
        # lock is free for another connection, and the unit that never ran left nothing.
        assert await asyncio.wait_for(other.run(_count("never"), lock_key="wangfang"), 5) == 0
    assert await asyncio.wait_for(db.run(_count("never"), lock_key="wangfang"), 5) == 0
    # Handed back by the unit itself, not found by the garbage collector (which terminates it, warning).
    assert not [w for w in recwarn if "non-checked-in connection" in str(w.message)]


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


def _fails_once(engine: Engine) -> list[int]:
    """Make `engine.connect` raise what SQLAlchemy raises for a locked file, once."""
    calls: list[int] = []
    real = engine.connect

    def connect() -> Connection:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("connect", {}, sqlite3.OperationalError("database is locked"))
        return real()

    engine.connect = connect  # type: ignore[method-assign]
    return calls


async def test_the_sqlite_writer_outlives_a_connection_it_could_not_open(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    db.start()
    try:
        assert db.sync_engine is not None
        calls = _fails_once(db.sync_engine)
        with pytest.raises(OperationalError, match="locked"):
            await asyncio.wait_for(db.run(lambda s: s.execute(text("SELECT 1")).scalar_one()), 5)
        # The next unit opens the connection again, instead of waiting for a thread that died.
        assert await asyncio.wait_for(db.run(lambda s: s.execute(text("SELECT 2")).scalar_one()), 5) == 2
        assert len(calls) == 2
    finally:
        await db.close()


async def test_a_sqlite_reader_outlives_a_connection_it_could_not_open(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'r.db'}", readers=1)
    db.start()
    try:
        assert db.read_engine is not None
        _fails_once(db.read_engine)
        with pytest.raises(OperationalError, match="locked"):
            await asyncio.wait_for(db.read(lambda s: s.execute(text("SELECT 1")).scalar_one()), 5)
        assert await asyncio.wait_for(db.read(lambda s: s.execute(text("SELECT 2")).scalar_one()), 5) == 2
    finally:
        await db.close()
