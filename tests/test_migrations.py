"""The migrations build exactly the tables the models describe, on the database under test."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import storage.tables  # noqa: F401 - every table on the metadata
from tests.kit import BotKit


async def test_models_and_migrations_agree(bot: BotKit):
    def diff(session):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(session.connection(), opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    assert await bot.query(diff) == []
