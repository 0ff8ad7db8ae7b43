"""Statements run on the driver's own cursor (storage/prebuilt.py: sqlite3's, or SQLAlchemy's adapter
over asyncpg) answer exactly what SQLAlchemy's `Connection.execute` answers, raise SQLAlchemy's
errors, and step aside wherever they cannot see everything (a list fixed in the statement, statement
listeners)."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, select, union
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot.members import _sender_query
from storage.models import InboxEntry, Member
from storage.prebuilt import Prebuilt
from tests.kit import BotKit

_I = InboxEntry.__table__.c  # type: ignore[attr-defined]
RECEIVED = datetime(2026, 11, 30, 8, 5, 6, 123456, tzinfo=UTC)


def inbox_row(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "userid": "wangfang",
        "kind": "text",
        "command": "我的",
        "received_at": RECEIVED,
        "reply": '{"text": "好"}',
        "reply_via_outbox": True,
    }


async def test_a_prebuilt_select_and_insert_answer_what_sqlalchemy_answers(bot: BotKit):
    sender, inserted = Prebuilt(_sender_query()), Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    stored = Prebuilt(select(_I.received_at, _I.reply_via_outbox, _I.reply).where(_I.key == bindparam("key")))

    def run(s: Session) -> tuple[Any, ...]:
        inserted.execute(s, inbox_row("k1"))
        looked_up = sender.rows(s, {"key": "k1", "userid": "wangfang"})
        plain = s.connection().execute(sender.stmt, {"key": "k1", "userid": "wangfang"}).all()
        row = stored.rows(s, {"key": "k1"})
        return looked_up, plain, row, s.connection().execute(stored.stmt, {"key": "k1"}).all()

    looked_up, plain, row, expected = await bot.query(run)
    assert [tuple(r) for r in looked_up] == [tuple(r) for r in plain]
    assert looked_up[0][0] is True and looked_up[0][1] is False  # seen, no dialogue: booleans, not 0/1
    assert [tuple(r) for r in row] == [tuple(r) for r in expected] == [(RECEIVED, True, '{"text": "好"}')]
    assert row[0].received_at.tzinfo is not None and row[0].reply_via_outbox is True  # by name too
    # Run on the driver's own cursor on both back ends (sqlite3; SQLAlchemy's adapter over asyncpg).
    assert [p is not None for p in sender._plans.values()] == [True]


async def test_a_duplicate_key_is_sqlalchemys_integrity_error(bot: BotKit):
    inserted = Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    await bot.query(lambda s: inserted.execute(s, inbox_row("twice")))
    with pytest.raises(IntegrityError):
        await bot.query(lambda s: inserted.execute(s, inbox_row("twice")))


async def test_a_list_for_in_gets_a_plan_for_each_length(bot: BotKit):
    names = Prebuilt(
        select(Member.name).where(  # type: ignore[call-overload]
            Member.userid.in_(bindparam("ids", expanding=True)),  # type: ignore[attr-defined]
            Member.name != bindparam("not_named"),
            Member.active.is_(True),  # type: ignore[attr-defined]
        )
    )

    def run(s: Session) -> list[list[str]]:
        asked = (["wangfang", "zhangwei"], ["zhangwei"], [], ["wangfang", "zhangwei", "nobody"])
        return [sorted(r.name for r in names.rows(s, {"ids": ids, "not_named": "张伟"})) for ids in asked]

    assert await bot.query(run) == [["王芳"], [], [], ["王芳"]]
    # On the cursor: one plan for each length asked.
    assert sorted(k[2] for k, plan in names._plans.items() if plan is not None) == [(0,), (1,), (2,), (3,)]
    fixed = Prebuilt(select(Member.name).where(Member.userid.in_(["wangfang"])))  # type: ignore[attr-defined]
    assert [r.name for r in await bot.query(lambda s: fixed.rows(s, {}))] == ["王芳"]
    assert list(fixed._plans.values()) in ([None], [])  # a list fixed in the statement: SQLAlchemy's


async def test_statement_listeners_see_every_statement(bot: BotKit):
    seen: list[str] = []
    engine = bot.app.db.sync_engine or bot.app.db.async_engine.sync_engine  # type: ignore[union-attr]
    sender = Prebuilt(_sender_query())
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    await bot.query(lambda s: sender.rows(s, {"key": "x", "userid": "wangfang"}))
    assert any("FROM" in sql and "members" in sql for sql in seen)  # a watcher sees the statement


async def test_many_rows_in_one_executemany_and_an_insert_returning_its_key(bot: BotKit):
    inserted = Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    keyed = Prebuilt(insert(InboxEntry.__table__).returning(_I.id, _I.key))  # type: ignore[attr-defined]
    stored = select(_I.key, _I.received_at).where(_I.key.like("many-%")).order_by(_I.key)

    def run(s: Session) -> tuple[Any, ...]:
        inserted.execute(s, [inbox_row("many-1"), inbox_row("many-2"), inbox_row("many-3")])
        inserted.execute(s, [])  # nothing to insert: no statement
        inserted.execute(s, [inbox_row(f"many-{n}") for n in range(4, 8)])
        returned = keyed.rows(s, inbox_row("many-8"))
        return s.connection().execute(stored).all(), returned, s.get(InboxEntry, returned[0].id)

    rows, returned, entry = await bot.query(run)
    assert [r.key for r in rows] == [f"many-{n}" for n in range(1, 9)]
    assert all(r.received_at == RECEIVED for r in rows)  # bind processing applied to every row
    assert returned[0].key == "many-8" and entry is not None and entry.key == "many-8"
    # The cursor ran them: one plan for the inbox's columns, one for the RETURNING insert.
    assert [p is not None for p in inserted._plans.values()] == [True]
    assert [p is not None for p in keyed._plans.values()] == [True]


async def test_rows_naming_different_columns_go_through_sqlalchemy(bot: BotKit):
    inserted = Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    partial = {k: v for k, v in inbox_row("odd-2").items() if k != "reply"}
    with pytest.raises(StatementError, match="reply"):  # SQLAlchemy's own word on it
        await bot.query(lambda s: inserted.execute(s, [inbox_row("odd-1"), partial]))


async def test_a_failing_row_of_many_raises_sqlalchemys_error_and_leaves_nothing(bot: BotKit):
    inserted = Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError):
        await bot.query(lambda s: inserted.execute(s, [inbox_row("dup"), inbox_row("dup")]))
    left = await bot.query(lambda s: s.execute(select(_I.key).where(_I.key == "dup")).all())
    assert left == []


async def test_a_union_naming_one_parameter_twice_answers_what_sqlalchemy_answers(bot: BotKit):
    m = Member.__table__.c  # type: ignore[attr-defined]
    either = Prebuilt(
        union(
            select(m.name).where(m.userid == bindparam("who")),
            select(m.name).where(m.name == bindparam("who")),
            select(m.name).where(m.userid == bindparam("other")),
        )
    )

    def run(s: Session) -> tuple[Any, ...]:
        params = {"who": "wangfang", "other": "zhangwei"}
        return either.rows(s, params), s.connection().execute(either.stmt, params).all()

    found, expected = await bot.query(run)
    assert sorted(r.name for r in found) == sorted(r.name for r in expected) == ["张伟", "王芳"]
    assert [p is not None for p in either._plans.values()] == [True]


def test_a_session_keeps_its_connection_only_for_the_transaction_it_was_asked_in(tmp_path):  # type: ignore[no-untyped-def]
    """`Prebuilt` remembers the session's connection; a new transaction (after a commit or a rollback)
    asks again, so a statement never runs on a connection the session has handed back."""
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import storage.tables  # noqa: F401 - every table on the metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    SQLModel.metadata.create_all(engine)
    inserted = Prebuilt(insert(InboxEntry.__table__))  # type: ignore[attr-defined]
    keys = Prebuilt(select(_I.key).order_by(_I.key))
    with Session(engine) as s:
        inserted.execute(s, inbox_row("a"))
        first = s.connection()
        s.commit()  # the connection goes back to the pool
        inserted.execute(s, inbox_row("b"))
        assert s.connection() is not first  # a new transaction, a new connection: the kept one is not used
        assert [r.key for r in keys.rows(s, {})] == ["a", "b"]
        s.rollback()
        assert [r.key for r in keys.rows(s, {})] == ["a"]
    engine.dispose()


def test_a_session_that_ran_prebuilt_statements_is_freed_without_the_garbage_collector(tmp_path):  # type: ignore[no-untyped-def]
    """What `Prebuilt` keeps in `session.info` makes no reference cycle: a session (and all it holds)
    is freed as soon as it is dropped, not left for the cyclic collector (docs/PERFORMANCE.md)."""
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import storage.tables  # noqa: F401 - every table on the metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'freed.db'}")
    SQLModel.metadata.create_all(engine)
    keys = Prebuilt(select(_I.key))
    gc.collect()
    gc.disable()
    try:
        s = Session(engine)
        assert keys.rows(s, {}) == []
        s.commit()
        dropped = weakref.ref(s)
        s.close()
        del s
        assert dropped() is None
    finally:
        gc.enable()
        engine.dispose()


async def test_handling_messages_leaves_no_session_to_the_garbage_collector(bot: BotKit):
    await bot.say("wangfang", "我的")  # the first of each command builds what is then kept
    await bot.say("wangfang", "排行")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            assert await bot.say("wangfang", "我的")
            assert await bot.say("wangfang", "排行")
        gc.collect()
        sessions = [o for o in gc.garbage if isinstance(o, Session)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert sessions == []


def test_a_statement_used_on_sqlite_and_postgresql_in_one_process_gets_a_plan_for_each():
    """Each dialect writes its own SQL (`?` for sqlite3, `$1` for asyncpg): a plan made for one is
    never handed to the other, should one process use the statement on both."""
    from types import SimpleNamespace

    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

    stored = Prebuilt(select(_I.reply).where(_I.key == bindparam("key")))
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        on_sqlite = stored._plan(conn, {"key": "k"})
    # Planning reads only the connection's dialect and listeners; no server is needed to compile.
    pg = SimpleNamespace(dialect=asyncpg_dialect(), dispatch=SimpleNamespace(before_cursor_execute=[]))
    on_postgresql = stored._plan(pg, {"key": "k"})  # type: ignore[arg-type]
    engine.dispose()
    assert on_sqlite is not None and on_postgresql is not None
    assert on_sqlite.sql.endswith('inbox."key" = ?')
    assert on_postgresql.sql.endswith("inbox.key = $1::VARCHAR")
