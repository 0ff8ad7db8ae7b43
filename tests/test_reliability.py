"""No data lost: backups taken while the bot writes, restore on a copy, and the database failing under
the bot (read-only, full, PostgreSQL connections killed) with honest answers, /healthz 503, nothing
half-written and recovery without a restart."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

import storage.database
from bot import backup
from bot.members import _sender_query
from bot.simulator.fake_api import FakeWeCom
from storage.prebuilt import Prebuilt
from tests.conftest import PG_URL
from tests.kit import BotKit, wait_until
from tests.test_cli import bot_cli, write_config

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="SQLite: its backup API, its file, its pragmas")
pg_only = pytest.mark.skipif(not PG_URL, reason="PostgreSQL connections")

CLAIM = "尽责\n指标：A01\n说明：参加切丝机停产技改突击队"
MEMBERS = ["wangfang", "zhangwei", "sunli", "liqiang"]


def db_file(bot: BotKit) -> Path:
    return Path(make_url(bot.app.config.database.url).database or "")


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
        for t in ("inbox", "items", "submissions", "outbox")
    }


async def claims_while(bot: BotKit, n: int, during: asyncio.Future[object]) -> int:
    """Members file claims, one after another, until `during` is done and at least `n` were sent."""
    sent = 0
    while sent < n or not during.done():
        reply = await bot.say(MEMBERS[sent % len(MEMBERS)], CLAIM)
        assert reply.startswith("已提交尽责申报"), reply
        sent += 1
    return sent


# -- backups -----------------------------------------------------------------------------------------


@sqlite_only
async def test_backup_while_claims_are_written_is_a_consistent_snapshot(bot: BotKit, tmp_path: Path):
    source = db_file(bot)
    copy = tmp_path / "copy.db"
    task = asyncio.ensure_future(asyncio.to_thread(backup.backup, bot.app.config.database.url, copy))
    sent = await claims_while(bot, 40, task)
    result = task.result()
    assert isinstance(result, backup.BackupResult) and result.path == copy and result.bytes > 0
    assert not copy.with_name("copy.db.partial").exists()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
        snap = counts(conn)
    # A snapshot: every message in it has all of its rows (one claim = one inbox row, one item, one
    # submission), and nothing committed after the copy.
    assert snap["items"] == snap["submissions"]
    assert snap["inbox"] == snap["items"]
    assert 0 <= snap["inbox"] <= sent
    with sqlite3.connect(source) as live:
        assert counts(live)["inbox"] == sent


@sqlite_only
async def test_cli_backup_then_restore_on_a_copy_refused_while_the_bot_runs(
    bot: BotKit, tmp_path: Path, fake: FakeWeCom
):
    for who in MEMBERS:
        await bot.say(who, CLAIM)
    assert fake.base_url
    cfg = write_config(tmp_path / "config.yaml", bot.app.config.database.url, fake.base_url)
    saved = tmp_path / "backups" / "saved.db"
    out = bot_cli("db", "backup", str(saved), config=cfg)
    assert out.returncode == 0, out.stderr
    assert "integrity ok" in out.stdout

    # The bot keeps writing; a restore is refused while it has the database open.
    await bot.say("wangfang", CLAIM)
    refused = bot_cli("db", "restore", str(saved), config=cfg)
    assert refused.returncode == 1
    assert "is in use (is the bot running?)" in refused.stderr
    with sqlite3.connect(db_file(bot)) as live:
        assert counts(live)["submissions"] == 5  # untouched by the refused restore

    # Restore on a copy of the live database, with no bot on it: the copy goes back to 4 claims.
    other = tmp_path / "other.db"
    shutil.copyfile(db_file(bot), other)
    cfg2 = write_config(tmp_path / "config2.yaml", f"sqlite:///{other}", fake.base_url)
    done = bot_cli("db", "restore", str(saved), config=cfg2)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(other) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert counts(conn)["submissions"] == 4
    assert bot_cli("db", "upgrade", config=cfg2).returncode == 0  # a restored copy starts as usual

    # Not a backup: refused with the reason, the target untouched.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    bad = bot_cli("db", "restore", str(junk), config=cfg2)
    assert bad.returncode == 1 and "restore refused" in bad.stderr
    assert bot_cli("db", "restore", str(tmp_path / "missing.db"), config=cfg2).returncode == 1
    with sqlite3.connect(other) as conn:
        assert counts(conn)["submissions"] == 4


@sqlite_only
async def test_backup_job_keeps_the_newest_copies(make_bot, tmp_path: Path):  # type: ignore[no-untyped-def]
    directory = tmp_path / "backups"
    bot = await make_bot(backup={"dir": str(directory), "keep": 2})
    await bot.say("wangfang", CLAIM)
    stranger = directory / "notes.txt"
    directory.mkdir()
    stranger.write_text("kept: not a backup")
    for day in (1, 2, 3):
        result = await bot.app.scheduler.run(
            "database_backup", datetime(2026, 11, day, 3, 11, tzinfo=bot.app.config.tz)
        )
        assert result.status == "done", result.detail
        assert "integrity ok" in result.detail
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["notes.txt", "pioneer-20261102-031100.db", "pioneer-20261103-031100.db"]
    with sqlite3.connect(directory / "pioneer-20261103-031100.db") as conn:
        assert counts(conn)["submissions"] == 1


@pg_only
async def test_pg_backup_with_pg_dump(bot: BotKit, tmp_path: Path):
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    await bot.say("wangfang", CLAIM)
    target = tmp_path / "pioneer.dump"
    result = await asyncio.to_thread(backup.backup, bot.app.config.database.url, target)
    assert result.bytes > 0 and target.read_bytes()[:5] == b"PGDMP"


@pg_only
async def test_pg_backup_job_dumps_in_its_own_thread(make_bot, tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    directory = tmp_path / "backups"
    bot = await make_bot(backup={"dir": str(directory), "keep": 1})
    for day in (1, 2):
        when = datetime(2026, 11, day, 3, 11, tzinfo=bot.app.config.tz)
        result = await bot.app.scheduler.run("database_backup", when)
        assert result.status == "done" and "pg_dump started" in result.detail
        done = directory / f"pioneer-202611{day:02d}-031100.dump"
        await wait_until(lambda done=done: done.exists(), timeout=60, what="the dump")  # type: ignore[misc]
        assert done.read_bytes()[:5] == b"PGDMP"
    await wait_until(
        lambda: [p.name for p in directory.iterdir()] == ["pioneer-20261102-031100.dump"], timeout=10
    )


def test_pg_commands_never_print_the_password():
    url = make_url("postgresql+asyncpg://pioneer:s3cret@127.0.0.1:5432/pioneer")
    line = backup.shown(backup.pg_dump_command(url, Path("x.dump")), url)
    assert "s3cret" not in line and "pg_dump --format=custom" in line and "***" in line


# -- the database failing under the bot --------------------------------------------------------------

NOT_SAVED = "没保存上：系统暂时无法保存，请稍后再发一次。"
LONG_CLAIM = CLAIM + "，" + "连续两个夜班抢修切丝机" * 40  # near the 500 characters a 说明 may have


class SqliteFault:
    """Breaks the bot's SQLite writer connection the way a sick disk would, and heals it, by setting
    pragmas on that one connection: `query_only` (BEGIN IMMEDIATE then fails with SQLITE_READONLY, as
    on a read-only file, which root would still be allowed to write) or `max_page_count` at the
    current size (any write needing a new page fails with SQLITE_FULL, as on a full disk)."""

    def __init__(self, bot: BotKit):
        self.bot = bot
        self.raw: sqlite3.Connection | None = None

    async def set(self, mode: str) -> None:
        def writer_connection(s):  # type: ignore[no-untyped-def]
            return s.connection().connection.dbapi_connection, s.execute(text("PRAGMA page_count")).scalar()

        pages = 0
        if self.raw is None or mode == "full":  # while the database works; healing needs no transaction
            self.raw, pages = await self.bot.query(writer_connection)
        assert self.raw is not None
        # The writer thread is idle between messages; SQLite serialises calls on one connection.
        self.raw.execute(f"PRAGMA query_only={1 if mode == 'read-only' else 0}")
        self.raw.execute(f"PRAGMA max_page_count={pages if mode == 'full' else 1073741823}")


async def healthz(bot: BotKit) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with bot.http.get(bot.app.url + "/healthz") as r:
        return r.status, await r.json()


async def table_counts(bot: BotKit) -> dict[str, int]:
    def work(s):  # type: ignore[no-untyped-def]
        return {
            t: s.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608 - fixed names
            for t in ("inbox", "items", "submissions", "outbox", "point_entries", "dialogues")
        }

    return await bot.query(work)


@sqlite_only
async def test_read_only_database_says_not_saved_then_recovers(bot: BotKit):
    fault = SqliteFault(bot)
    assert (await bot.say("wangfang", CLAIM)).startswith("已提交尽责申报")
    await bot.drain()
    before = await table_counts(bot)
    sent_before = len(bot.fake.sent())
    await fault.set("read-only")

    # Several people at once (one group commit, then each alone): every one hears it was not saved.
    replies = await asyncio.gather(*(bot.say(who, CLAIM, msg_id=f"77{i}") for i, who in enumerate(MEMBERS)))
    assert replies == [NOT_SAVED] * len(MEMBERS)
    status, body = await healthz(bot)
    assert status == 503
    assert body["database"]["reachable"] is False
    assert "readonly database" in body["database"]["write_failure"]

    # The file is writable again: the bot recovers without a restart, and nothing was kept.
    await fault.set("")
    assert await table_counts(bot) == before
    assert (await healthz(bot))[0] == 200
    assert not bot.app.db.write_failure
    assert len(bot.fake.sent()) == sent_before  # no approver heard of the lost claims
    # WeCom's retries of the same messages (same MsgId) now go through, once each.
    replies = await asyncio.gather(*(bot.say(who, CLAIM, msg_id=f"77{i}") for i, who in enumerate(MEMBERS)))
    assert all(r.startswith("已提交尽责申报") for r in replies), replies
    assert (await bot.say("wangfang", CLAIM, msg_id="770")).startswith("已提交尽责申报")  # a retry
    after = await table_counts(bot)
    assert after["submissions"] == before["submissions"] + len(MEMBERS)
    assert after["inbox"] == before["inbox"] + len(MEMBERS)
    await bot.drain()
    assert len(bot.fake.sent()) > sent_before  # the approvers' cards, only now


@sqlite_only
async def test_full_disk_never_answers_a_false_submitted(bot: BotKit):
    fault = SqliteFault(bot)
    before = await table_counts(bot)
    await fault.set("full")
    # The database may not grow: claims are taken while pages have room, then refused. Whatever
    # each person was told matches what was kept.
    accepted: list[str] = []
    refused = ""
    for i in range(200):
        msg_id = f"88{i}"
        reply = await bot.say(MEMBERS[i % len(MEMBERS)], LONG_CLAIM, msg_id=msg_id)
        if reply == NOT_SAVED:
            refused = msg_id
            break
        assert reply.startswith("已提交尽责申报"), reply
        accepted.append(msg_id)
    assert refused, "the database never filled up"
    status, body = await healthz(bot)
    assert status == 503 and "full" in body["database"]["write_failure"]

    await fault.set("")
    after = await table_counts(bot)
    assert after["submissions"] - before["submissions"] == len(accepted)
    assert after["inbox"] - before["inbox"] == len(accepted)
    assert (await healthz(bot))[0] == 200
    who = MEMBERS[len(accepted) % len(MEMBERS)]
    assert (await bot.say(who, LONG_CLAIM, msg_id=refused)).startswith("已提交尽责申报")
    assert (await table_counts(bot))["submissions"] - before["submissions"] == len(accepted) + 1


@sqlite_only
async def test_a_late_message_that_cannot_be_saved_is_told_so_directly(make_bot):  # type: ignore[no-untyped-def]
    """Past the reply budget the callback was answered empty; the outbox is in the failed database,
    so the sender hears 没保存上 straight from the API, and nothing of the message remains."""
    from tests.spine_router import router as spine_router

    bot = await make_bot(router=spine_router, handlers={"budget_seconds": 0.2})
    fault = SqliteFault(bot)
    await fault.set("")  # holds the writer's connection
    delivery = asyncio.ensure_future(bot.deliver(bot.wecom.text("zhangwei", "慢 0.8")))
    await wait_until(lambda: delivery.done(), timeout=5, what="the empty acknowledgement")
    assert delivery.result().reply is None
    await fault.set("read-only")  # while the handler still sleeps inside its transaction
    try:
        await bot.fake.wait_for(lambda: bool(bot.texts_to("zhangwei")), timeout=5)
    finally:
        await fault.set("")
    assert bot.texts_to("zhangwei") == [NOT_SAVED]
    counts = await bot.query(
        lambda s: (
            s.execute(text("SELECT count(*) FROM inbox")).scalar(),
            s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'slow'")).scalar(),
        )
    )
    assert counts == (0, 0)


class PgKiller:
    """Kills the bot's PostgreSQL connection in the middle of a message's transaction (just before
    the inbox row is written, after the handler's own rows), as a server restart does."""

    def __init__(self, bot: BotKit):
        self.armed = False
        engine = bot.app.db.async_engine
        assert engine is not None
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if self.armed and statement.startswith("INSERT INTO inbox"):
            self.armed = False
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


async def admin(sql: str) -> None:
    """Run `sql` on the test server's maintenance database, outside the bot."""
    url = make_url(PG_URL).set(database="postgres")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@pg_only
async def test_pg_connection_killed_mid_message_says_not_saved_and_keeps_nothing(bot: BotKit):
    killer = PgKiller(bot)
    await bot.say("wangfang", CLAIM)
    before = await table_counts(bot)
    killer.armed = True
    assert await bot.say("zhangwei", CLAIM, msg_id="991") == NOT_SAVED
    assert await table_counts(bot) == before  # the claim, its item and its card: all rolled back
    # The pool replaces the dead connection: the retry of the same message is taken, once.
    assert (await bot.say("zhangwei", CLAIM, msg_id="991")).startswith("已提交尽责申报")
    assert (await healthz(bot))[0] == 200
    assert (await table_counts(bot))["submissions"] == before["submissions"] + 1


@pg_only
async def test_pg_unreachable_then_back_recovers_by_itself(bot: BotKit):
    database = make_url(PG_URL).database
    await bot.say("wangfang", CLAIM)
    before = await table_counts(bot)
    # As good as a server that is down: no new connections, and every open one is cut.
    await admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        await admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        assert await bot.say("zhangwei", CLAIM, msg_id="992") == NOT_SAVED
        status, body = await healthz(bot)
        assert status == 503 and body["database"]["reachable"] is False
    finally:
        await admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert (await bot.say("zhangwei", CLAIM, msg_id="992")).startswith("已提交尽责申报")
    assert (await healthz(bot))[0] == 200
    assert (await table_counts(bot))["submissions"] == before["submissions"] + 1


@pg_only
async def test_pg_pooled_connections_the_server_closed_while_idle_are_replaced_before_use(
    bot: BotKit, monkeypatch: pytest.MonkeyPatch
):
    database = make_url(PG_URL).database
    await bot.say("wangfang", CLAIM)
    before = await table_counts(bot)
    # Every connection in the pool has lain idle past the threshold: each is checked at checkout.
    monkeypatch.setattr(storage.database, "PING_AFTER_IDLE_S", 0.0)
    await admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
    assert (await bot.say("zhangwei", CLAIM, msg_id="994")).startswith("已提交尽责申报")
    assert (await healthz(bot))[0] == 200
    assert (await table_counts(bot))["submissions"] == before["submissions"] + 1


@pg_only
async def test_pg_connection_lost_under_a_prebuilt_statement_raises_sqlalchemys_error_and_is_replaced(
    bot: BotKit,
):
    sender = Prebuilt(_sender_query())

    def killed_then_asked(s: Session) -> None:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
        await_only(admin(f"SELECT pg_terminate_backend({pid})"))
        sender.rows(s, {"key": "k-lost", "userid": "wangfang"})

    with pytest.raises(DBAPIError) as lost:
        await bot.query(killed_then_asked)
    assert lost.value.connection_invalidated  # the pool throws the connection away…
    assert storage.database.unavailable(lost.value)  # …and the sender is told nothing was saved
    # The next unit gets a live connection.
    found = await bot.query(lambda s: sender.rows(s, {"key": "k-lost", "userid": "wangfang"}))
    assert [tuple(r)[:2] for r in found] == [(False, False)]
