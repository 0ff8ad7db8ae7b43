"""Backups of the database: `python -m bot db backup FILE`, `python -m bot db restore FILE` and the
daily `database_backup` job (handlers/maintenance.py). docs/operations.md says how to use them.

SQLite is copied with its own online backup API (`sqlite3.Connection.backup`): the copy is one
consistent snapshot taken through a read transaction, so the bot keeps running (WAL mode lets it
write meanwhile). The copy is checked (`PRAGMA integrity_check`) and renamed into place only when it
is good, and it is a single file (journal mode DELETE), ready to be restored or opened anywhere.

PostgreSQL is dumped with `pg_dump --format=custom` when `pg_dump` is on PATH; otherwise the command
to run is printed. Restoring PostgreSQL is left to `pg_restore`, whose command line we print.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL

from storage.database import normalise_url


class BackupError(Exception):
    """A backup or restore that did not happen; the message says why, for a person."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    detail: str


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(url.database)


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    """Copy the live database at `source` to `target` through the backup API, checked."""
    if not source.exists():
        raise BackupError(f"{source}: no such database")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)  # only reads; WAL lets the bot write meanwhile
    try:
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            problems = _integrity(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    if problems:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its integrity check: {problems}")
    os.replace(partial, target)
    size = target.stat().st_size
    return BackupResult(target, size, f"{target} ({size} bytes, integrity ok)")


def _integrity(conn: sqlite3.Connection) -> str:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return "" if rows == ["ok"] else "; ".join(rows[:5])


def check_backup(path: Path) -> str:
    """Why `path` is not a Pioneer SQLite backup we can restore ('' when it is one)."""
    if not path.is_file():
        return f"{path}: no such file"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"{path}: cannot open ({exc})"
    try:
        problems = _integrity(conn)
        if problems:
            return f"{path}: integrity check failed: {problems}"
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if version is None:
            return f"{path}: not a Pioneer database (no schema revision)"
        return ""
    except sqlite3.Error as exc:
        return f"{path}: not a Pioneer database ({exc})"
    finally:
        conn.close()


def bot_is_running(path: Path) -> bool:
    """Whether any process has the SQLite database open: in WAL mode, an exclusive lock is refused
    while another connection (the running bot's writer) exists, even an idle one."""
    if not path.exists():
        return False
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def restore_sqlite(backup: Path, target: Path) -> str:
    """Replace the database at `target` with `backup`; refused while a bot has it open."""
    problem = check_backup(backup)
    if problem:
        raise BackupError(problem)
    if bot_is_running(target):
        raise BackupError(f"{target} is in use (is the bot running?): stop it, restore, then start it")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, isolation_level=None, timeout=0)
        try:
            # Through the backup API rather than a file copy, so a stale -wal beside the old file
            # can never be replayed over the restored one.
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed: {exc}") from exc
    finally:
        src.close()
    return f"{target} restored from {backup}"


def pg_dump_command(url: URL, target: Path) -> list[str]:
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={plain}"]


def pg_restore_command(url: URL, backup: Path) -> list[str]:
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={plain}", str(backup)]


def shown(command: list[str], url: URL) -> str:
    """A command line to print: the password, if any, masked."""
    if url.password:
        return " ".join(c.replace(str(url.password), "***") for c in command)
    return " ".join(command)


def backup(database_url: str, target: Path, *, timeout: float = 3600) -> BackupResult:
    """Back up the configured database to `target` (SQLite: the backup API; PostgreSQL: pg_dump)."""
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        return backup_sqlite(sqlite_path(url), target)
    command = pg_dump_command(url, target)
    if shutil.which("pg_dump") is None:
        raise BackupError(f"pg_dump is not on PATH; run: {shown(command, url)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    command = pg_dump_command(url, partial)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    os.replace(partial, target)
    size = target.stat().st_size
    return BackupResult(target, size, f"{target} ({size} bytes, pg_dump custom format)")


def dated_name(now: datetime, *, sqlite: bool) -> str:
    return f"pioneer-{now:%Y%m%d-%H%M%S}." + ("db" if sqlite else "dump")


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` dated backups in `directory`; return what was deleted."""
    copies = sorted(p for p in directory.glob("pioneer-*") if p.suffix in (".db", ".dump"))
    doomed = copies[:-keep] if keep > 0 else copies
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed
