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
from sqlalchemy.engine import make_url

from bot import backup
from bot.simulator.fake_api import FakeWeCom
from tests.conftest import PG_URL
from tests.kit import BotKit
from tests.test_cli import bot_cli, write_config

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="the SQLite backup API and file")
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


def test_pg_commands_never_print_the_password():
    url = make_url("postgresql+asyncpg://pioneer:s3cret@127.0.0.1:5432/pioneer")
    line = backup.shown(backup.pg_dump_command(url, Path("x.dump")), url)
    assert "s3cret" not in line and "pg_dump --format=custom" in line and "***" in line
