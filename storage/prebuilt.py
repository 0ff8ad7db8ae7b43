"""Statements every message runs, executed on the driver's own cursor.

Executing a prebuilt Core statement through SQLAlchemy's `Connection.execute` costs about 55 µs of
Python on top of the ~10 µs SQLite takes (looking up the compiled form, building an execution
context, processing parameters and rows, firing events), and ~60 µs on top of SQLAlchemy's adapter
over asyncpg. The look-up of a message's sender, the inbox row that records it, and the fixed
queries of 我的, 排行 and a claim run for most messages, so a `Prebuilt` statement is compiled once and
then handed to a DBAPI cursor of the transaction's own connection (sqlite3's, or the asyncpg
adapter's, which prepares each statement once),
with the same bind and result processing SQLAlchemy would apply (each column type's
`bind_processor` and `result_processor` for the dialect). Its errors go through SQLAlchemy's own
handling: raised as SQLAlchemy's (`IntegrityError` for a duplicate key, and what
`storage.database.unavailable` classifies), and a lost connection invalidates the pool.

Each dialect gets its own plan: sqlite3 and asyncpg write parameters differently, and nothing keeps
one process (a tool, a test) from using a statement on both. A list given for an `IN` (an expanding
parameter) gets one plan per length, rendered by SQLAlchemy as it would render it at each execution.
It falls back to `Connection.execute` wherever that would do more than this can see: another driver
than sqlite3 or asyncpg, a list fixed in the statement, an INSERT whose columns have defaults
computed in Python, and any connection with `before_cursor_execute` listeners (tools and tests that
watch the SQL see every statement).
docs/PERFORMANCE.md has the measurements.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, CompoundSelect, Connection, Insert, Select
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import iterate

Processor = Callable[[Any], Any] | None
Statement = Select[Any] | CompoundSelect | Insert


@dataclass(frozen=True)
class _Plan:
    sql: str
    # (name, index in the caller's list or None, given by the caller, fixed value, processor)
    binds: tuple[tuple[str, int | None, bool, Any, Processor], ...]
    results: tuple[Processor, ...]
    row: Callable[..., Any] | None  # builds a row with the columns' names as attributes


class Prebuilt:
    """A statement built once and run often: `rows(session, params)` for a SELECT (a UNION too) or an INSERT …
    RETURNING (a list of rows with attribute and index access), `execute(session, params)` for an
    INSERT, UPDATE or DELETE, with one set of parameters or a list of them (one `executemany`)."""

    def __init__(self, stmt: Statement):
        self.stmt = stmt
        # A plan for each dialect, INSERT's columns and lengths of the lists for `IN`.
        self._plans: dict[tuple[str, tuple[str, ...], tuple[int, ...]], _Plan | None] = {}
        self._insert = isinstance(stmt, Insert)
        # The lists the caller gives for an `IN` (expanding parameters without a value of their own).
        self._lists = tuple(
            dict.fromkeys(
                b.key for b in iterate(stmt) if isinstance(b, BindParameter) and b.expanding and b.required
            )
        )

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        conn = _connection(session)
        plan = self._plan(conn, params)
        if plan is None:
            return list(conn.execute(self.stmt, params).all())
        cursor = self._run(conn, plan, params)
        processors = plan.results
        make = plan.row
        assert make is not None
        if any(processors):
            return [
                make(*(p(v) if p is not None else v for p, v in zip(processors, raw, strict=True)))
                for raw in cursor.fetchall()
            ]
        return [make(*raw) for raw in cursor.fetchall()]

    def execute(self, session: Session, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        conn = _connection(session)
        if isinstance(params, Mapping):
            plan = self._plan(conn, params)
            if plan is None:
                conn.execute(self.stmt, params)
            else:
                self._run(conn, plan, params)
            return
        if not params:
            return
        plan = self._plan(conn, params[0])
        if plan is None or any(p.keys() != params[0].keys() for p in params):
            conn.execute(self.stmt, list(params))
            return
        _on_cursor(conn, plan.sql, [_args(plan, p) for p in params], many=True)

    @staticmethod
    def _run(conn: Connection, plan: _Plan, params: Mapping[str, Any]) -> Any:
        return _on_cursor(conn, plan.sql, _args(plan, params))

    def _plan(self, conn: Connection, params: Mapping[str, Any]) -> _Plan | None:
        dialect = conn.dialect
        if dialect.name != "sqlite" and dialect.driver != "asyncpg":
            return None
        if conn.dispatch.before_cursor_execute:
            return None
        key = tuple(params) if self._insert else ()
        # One plan per length of each list: `IN (?, ?, ?)` is another statement than `IN (?, ?)`.
        lengths = tuple(len(params[name]) for name in self._lists) if self._lists else ()
        try:
            return self._plans[dialect.name, key, lengths]
        except KeyError:
            plan = _compile(self.stmt, conn, key, dict(zip(self._lists, lengths, strict=True)))
            self._plans[dialect.name, key, lengths] = plan
            return plan


_CONNECTION = "prebuilt.connection"


def _connection(session: Session) -> Connection:
    """`session.connection()`, kept in `session.info` for as long as the session's transaction lasts:
    asking the session costs ~2.2 µs, and a message runs 5–15 prebuilt statements. The transaction is
    kept by a weak reference: it refers to the session, so a strong one would make a reference cycle
    of every session, left for the garbage collector (with all the session holds) instead of being
    freed when the batch is done."""
    transaction = session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and transaction is not None and kept[0]() is transaction:
        return kept[1]  # type: ignore[no-any-return]
    conn = session.connection()
    session.info[_CONNECTION] = (weakref.ref(session.get_transaction()), conn)  # type: ignore[arg-type]
    return conn


def _args(plan: _Plan, params: Mapping[str, Any]) -> list[Any]:
    """The statement's positional parameters: the caller's value, or an item of the caller's list, or
    the value fixed in the statement, through the column type's bind processor."""
    args = []
    for name, index, given, value, process in plan.binds:
        v = (params[name] if index is None else params[name][index]) if given else value
        args.append(v if process is None else process(v))
    return args


def _on_cursor(conn: Connection, sql: str, args: list[Any], *, many: bool = False) -> Any:
    """Run `sql` on a DBAPI cursor of the transaction's own connection (`executemany` when `many`);
    a driver error is handled as `Connection.execute` handles it (wrapped, the pool invalidated on a
    lost connection)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)
    return cursor


def _compile(stmt: Statement, conn: Connection, keys: Sequence[str], lengths: dict[str, int]) -> _Plan | None:
    """The plan for `stmt` on this dialect, or None where only `Connection.execute` knows what to do.
    `lengths`: how many items each list given for an `IN` holds."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    if compiled.positiontup is None:
        return None
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "postfetch", None):
        return None  # defaults computed in Python, or values fetched after the INSERT
    by_key = {b.key: b for b in compiled.binds.values()}
    if any(b.expanding and b.key not in lengths for b in by_key.values()):
        return None  # a list fixed in the statement
    sql, positions = str(compiled), list(compiled.positiontup)
    if lengths:
        # SQLAlchemy's own rendering of the lists, as it does at each execution: `ids_1, ids_2…` in
        # order; the other parameters' values do not matter to the SQL text.
        required = {b.key: None for b in by_key.values() if b.required and not b.expanding}
        placeholders = {**required, **{k: [None] * n for k, n in lengths.items()}}
        expanded = stmt.params(placeholders).compile(
            dialect=dialect,
            column_keys=list(keys) if keys else None,
            compile_kwargs={"render_postcompile": True},
        )
        assert expanded.positiontup is not None
        sql, positions = str(expanded), list(expanded.positiontup)
    binds = []
    for name in positions:
        index = None
        if name in compiled.binds:
            bind = compiled.binds[name]
        else:  # the n-th item of a list: `<key>_<n>`
            list_key, _, n = name.rpartition("_")
            bind, index = by_key[list_key], int(n) - 1
        given = bind.key in keys if keys else bind.required  # else a value fixed in the statement
        value = None if given else bind.effective_value
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((bind.key, index, given, value, process))
    columns = list(stmt.selected_columns if isinstance(stmt, Select) else stmt.exported_columns)
    if not columns:
        return _Plan(sql, tuple(binds), (), None)
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    names = [c.key or f"c{i}" for i, c in enumerate(columns)]
    return _Plan(sql, tuple(binds), results, namedtuple("Row", names, rename=True))  # type: ignore[misc]
