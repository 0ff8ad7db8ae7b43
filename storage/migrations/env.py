"""Alembic environment: runs migrations on SQLite (sync) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  - registers every table on SQLModel.metadata
from storage.database import normalise_url, sqlite_engine

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=str(normalise_url(config.get_main_option("sqlalchemy.url") or "")),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: object) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)  # type: ignore[arg-type]
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by tests or by a caller that owns the connection
        _run(connection)
        return
    url = normalise_url(config.get_main_option("sqlalchemy.url") or "")
    if url.get_backend_name() == "sqlite":
        engine = sqlite_engine(url, busy_timeout_ms=30000)
        with engine.connect() as conn:
            # Batch migrations rebuild a table (copy, drop, rename); with foreign keys enforced, dropping
            # a table that other rows reference fails. SQLite's own recipe: off during the change (the
            # pragma only takes effect outside a transaction), check every reference after it, then on.
            raw = conn.connection.driver_connection  # below SQLAlchemy's BEGIN IMMEDIATE
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")
            _run(conn)
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows pointing nowhere: {broken[:5]}")
            conn.commit()
            raw.execute("PRAGMA foreign_keys=ON")
        engine.dispose()
    else:
        asyncio.run(_run_async(url))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
