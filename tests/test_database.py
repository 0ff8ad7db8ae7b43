"""The database layer's own promises: a transaction PostgreSQL picks as a deadlock's victim runs again."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text

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
