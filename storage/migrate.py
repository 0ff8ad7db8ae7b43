"""Apply the Alembic migrations: at start, and by `python -m bot db upgrade`.

At start the database is nearly always at the newest revision already. Alembic (with Mako and
Pygments behind it) takes about 0.2 s to import, a tenth of the bot's start, so `upgrade` first reads
the stored revision with one query and imports Alembic only when it is not `HEAD`. `HEAD` is the
newest migration's id: a new migration changes it (tests/test_migrations.py checks it against
Alembic's own answer).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.database import normalise_url

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0014"  # the newest file in migrations/versions
_STORED = text("SELECT version_num FROM alembic_version")


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Blocking: call it in a thread from async code."""
    if revision == "head" and stored_revisions(url) == [HEAD]:
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def stored_revisions(url: str) -> list[str] | None:
    """The revisions Alembic recorded in the database at `url`; None where that cannot be read (a new
    database has no table for them yet). Blocking, like `upgrade`."""
    parsed = normalise_url(url)
    try:
        if parsed.get_backend_name() != "sqlite":
            return asyncio.run(_stored_async(parsed))
        if parsed.database in (None, "", ":memory:") or not Path(parsed.database).exists():
            return None  # nothing stored; and connecting would create the file
        engine = create_engine(parsed, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                return sorted(conn.execute(_STORED).scalars())
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - then Alembic runs, and says what is wrong if anything is
        return None


async def _stored_async(url: object) -> list[str]:
    engine = create_async_engine(url, poolclass=pool.NullPool)  # type: ignore[arg-type]
    try:
        async with engine.connect() as conn:
            return sorted((await conn.execute(_STORED)).scalars())
    finally:
        await engine.dispose()
