"""Keeping the instance's data safe: the `backup` section of config.yaml and the daily
`database_backup` job, which copies the database into `backup.dir` and keeps the newest
`backup.keep` copies (bot/backup.py does the copying; docs/operations.md says how to restore)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pydantic import Field

from bot import backup
from bot.config import PracticeSection, config_section
from bot.scheduler import JobContext, job
from storage.database import normalise_url

log = logging.getLogger(__name__)


@config_section("backup")
class BackupConfig(PracticeSection):
    dir: str = "data/backups"  # relative to the working directory, like the SQLite path
    keep: int = Field(default=14, ge=1)  # dated copies kept; older ones are deleted after a good copy


@job("database_backup")
def database_backup(ctx: JobContext) -> str:
    """Copy the database to `backup.dir/pioneer-YYYYMMDD-HHMMSS.db` (or `.dump` for PostgreSQL) and
    delete all but the newest `backup.keep` copies.

    On SQLite this runs on the writer thread, inside the job's transaction: the copy is a snapshot of
    what was committed and messages wait for the few milliseconds a workshop's database takes to copy.
    On PostgreSQL `pg_dump` runs in a thread of its own, so the event loop never waits for it; its
    outcome is logged."""
    cfg = BackupConfig.of(ctx.config)
    directory = Path(cfg.dir)
    url = ctx.config.database.url
    sqlite = normalise_url(url).get_backend_name() == "sqlite"
    target = directory / backup.dated_name(ctx.now, sqlite=sqlite)
    if sqlite:
        result = backup.backup(url, target)  # raises BackupError: the job is recorded as failed
        pruned = backup.prune(directory, cfg.keep)
        return f"{result.detail}; {len(pruned)} old copies deleted"
    threading.Thread(
        target=_dump, args=(url, target, directory, cfg.keep), name="pg-dump", daemon=True
    ).start()
    return f"pg_dump started into {target}"


def _dump(url: str, target: Path, directory: Path, keep: int) -> None:
    try:
        result = backup.backup(url, target)
    except backup.BackupError as exc:
        log.error("database backup failed: %s", exc)
        return
    pruned = backup.prune(directory, keep)
    log.info("database backup: %s; %d old copies deleted", result.detail, len(pruned))
