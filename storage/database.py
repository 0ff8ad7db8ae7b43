"""How the event loop reaches the database: `await db.run(fn)` runs `fn(session)` in one transaction.

Handlers are plain synchronous transaction scripts over a SQLAlchemy `Session`, so the same code runs
on both back ends:

* SQLite: one writer thread owns the connection. Units of work queued while it is busy are run
  together in one transaction and committed at once (group commit). This avoids a thread hop per
  statement (aiosqlite) and a commit per message, the two costs that dominate the hot path (see
  docs/architecture.md). A unit that raises is rolled back alone: the batch is retried unit by unit.
  Reads need not wait for it: `await db.read(fn)` runs `fn(session)` on one of a few reader threads,
  each with its own connection that may not write (WAL lets readers and the writer go on at once).
* PostgreSQL: the async engine on asyncpg, with a fixed pool whose connections are checked only
  after lying idle (`ping_when_idle`); each unit runs whole in one greenlet (`Database._pg_unit`),
  in its own transaction, optionally behind a transaction-scoped advisory lock so that one person's messages
  are handled one at a time across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, delete, event, insert, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only, greenlet_spawn

from storage.models import InboxEntry

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[Session], T]


def normalise_url(url: str) -> URL:
    """Accept `sqlite:///…`, `sqlite+aiosqlite:///…`, `postgresql://…` and pick our drivers."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+asyncpg://")


# Errors that say the database cannot take writes now, not that the work was wrong: SQLite's primary
# result codes, and PostgreSQL's SQLSTATE classes (08 connection, 53 resources such as a full disk,
# 57 operator intervention such as a restart, 58 system error) and 25006 (read-only transaction).
_SQLITE_UNAVAILABLE = (
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_PERM",
)
_PG_UNAVAILABLE = ("08", "53", "57", "58", "25006")


class DatabaseUnavailable(Exception):
    """No connection to the database could be had (PostgreSQL refusing or not accepting connections)."""


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be written (full, read-only, gone), so that the
    sender is told nothing was saved rather than that something went wrong with what they typed."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        name = getattr(orig, "sqlite_errorname", None)
        if isinstance(name, str):
            return name.startswith(_SQLITE_UNAVAILABLE)
        state = getattr(orig, "sqlstate", None)
        if isinstance(state, str):
            return state.startswith(_PG_UNAVAILABLE)
        return "connection" in str(orig).lower()
    return isinstance(exc, OSError)  # ConnectionRefusedError and the like, raised by the driver


RETRIES = 3  # attempts of a PostgreSQL transaction that lost a deadlock or a serialization check


def retryable(exc: BaseException) -> bool:
    """A deadlock (40P01) or a serialization failure (40001): the transaction may simply run again."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and state in ("40P01", "40001")


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass
class _Unit:
    fn: Callable[[Session], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None


class WriterTurn:
    """Whose turn it is to write a SQLite file, among the bot processes that share it: an exclusive
    `flock` on `<database>-writer.lock`, taken around each group commit.

    SQLite's own lock makes a second writer poll: its busy handler sleeps 1, 2, 5, 10… ms between
    tries, so two processes on one file served fewer messages than one (docs/PERFORMANCE.md). A
    blocking `flock` waits in the kernel and wakes as soon as the other process lets go; `BEGIN
    IMMEDIATE` then finds the file free. (The `filelock` and `fasteners` packages poll too, with
    sleeps, which is why this is written here.) Processes that do not take the turn (the sqlite3
    shell, an old bot) still meet SQLite's lock and its `busy_timeout`, as before."""

    def __init__(self, database: str | None):
        self._fd = (
            os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            if database and database != ":memory:"
            else None
        )

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks in the kernel; the interpreter lock is released
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


PING_AFTER_IDLE_S = 1.0


def ping_when_idle(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before use if it has lain idle for over a second, and
    replace it if it is dead (the server restarted, a firewall dropped it…).

    `pool_pre_ping` would check it at every checkout: two more round trips (asyncpg pings with BEGIN
    and ROLLBACK) for every message, a third of the CPU a 帮助 costs on PostgreSQL. A connection handed
    back a moment ago is as good as checked; and when one still turns out dead, BEGIN finds it so and
    the unit begins on the next one (`Database._pg_begun`), so an outage costs the transactions
    under way, whose senders are told nothing was saved."""

    @event.listens_for(engine.pool, "connect")
    @event.listens_for(engine.pool, "checkin")
    def _idle_from_now(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_AFTER_IDLE_S:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the connection is no good
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc


class ReadOnly(Exception):
    """`Database.read` was refused: no reader connections here (PostgreSQL, an in-memory SQLite)."""


def sqlite_engine(url: URL, busy_timeout_ms: int, *, read_only: bool = False) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
        # SAVEPOINTs work and writers take the lock up front (BEGIN IMMEDIATE) instead of failing
        # to upgrade a read lock under contention from another process.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cur.execute("PRAGMA query_only=ON")  # an attempt to write raises instead of waiting
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class Database:
    """The single entry to storage for the running bot and the command line."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 5000,
        pool_size: int = 10,
        batch_max: int = 64,
        readers: int = 0,
    ):
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        self._busy_timeout_ms = busy_timeout_ms
        self._pool_size = pool_size
        self._batch_max = batch_max
        self.sync_engine: Engine | None = None
        self.async_engine: AsyncEngine | None = None
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._turn = WriterTurn(None)
        self._readers = readers if self.is_sqlite and self.url.database not in (None, "", ":memory:") else 0
        self._read_queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._reader_threads: list[threading.Thread] = []
        self.read_engine: Engine | None = None
        self.batches = 0  # group commits so far, for metrics and the benchmark
        # Why the last write failed when the database could not take it; cleared by the write probe
        # of `usable()` (/healthz), which answers 503 until then.
        self.write_failure = ""

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def start(self) -> None:
        if self.is_sqlite:
            self.sync_engine = sqlite_engine(self.url, self._busy_timeout_ms)
            self._turn = WriterTurn(self.url.database)
            self._thread = threading.Thread(target=self._writer, name="sqlite-writer", daemon=True)
            self._thread.start()
            if self._readers:
                self.read_engine = sqlite_engine(self.url, self._busy_timeout_ms, read_only=True)
                for n in range(self._readers):
                    t = threading.Thread(target=self._reader, name=f"sqlite-reader-{n}", daemon=True)
                    t.start()
                    self._reader_threads.append(t)
        else:
            # A fixed pool: a unit waits for a connection when all are in use. Connections opened
            # past the pool for a burst are closed as soon as they are handed back, so under steady
            # load above the pool's size every other unit paid for a new one (asyncpg's connect and
            # PostgreSQL's new backend: about 1 ms of the bot's CPU a transaction, measured).
            # Last in, first out: under load the same few connections serve, handed back a moment
            # before, and are not checked (see `ping_when_idle`); the rest lie idle.
            # Autocommit: `_pg_unit` begins and commits each unit itself.
            self.async_engine = create_async_engine(
                self.url,
                pool_size=self._pool_size,
                max_overflow=0,
                pool_use_lifo=True,
                isolation_level="AUTOCOMMIT",
            )
            ping_when_idle(self.async_engine.sync_engine)

    async def close(self) -> None:
        for _ in self._reader_threads:
            self._read_queue.put(None)
        for t in self._reader_threads:
            await asyncio.to_thread(t.join)
        self._reader_threads = []
        if self.read_engine is not None:
            self.read_engine.dispose()
            self.read_engine = None
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._turn.close()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
            self.sync_engine = None
        if self.async_engine is not None:
            await self.async_engine.dispose()
            self.async_engine = None

    async def run(self, fn: Work[T], *, lock_key: str | None = None) -> T:
        """Run `fn(session)` in one transaction; its return value is returned once committed."""
        if self.is_sqlite:
            if self._thread is None:
                raise RuntimeError("database not started")
            loop = asyncio.get_running_loop()
            unit = _Unit(fn, loop.create_future(), loop)
            self._queue.put(unit)
            return await unit.future  # type: ignore[no-any-return]
        if self.async_engine is None:
            raise RuntimeError("database not started")
        key = lock_id(lock_key) if lock_key is not None else None
        for attempt in range(1, RETRIES + 1):
            try:
                return await greenlet_spawn(self._pg_unit, fn, key)  # type: ignore[no-any-return]
            except Exception as exc:
                # PostgreSQL chose this transaction as a deadlock's victim (or a serialization
                # failure): it was rolled back whole, and a unit is a transaction script whose only
                # effects are in the database, so running it again is safe.
                if attempt < RETRIES and retryable(exc):
                    log.info("transaction retried (%d of %d): %s", attempt, RETRIES, exc.__class__.__name__)
                    continue
                self._failed(exc)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def reads_apart(self) -> bool:
        """Whether `read` runs beside the writer (SQLite on a file with reader threads)."""
        return bool(self._reader_threads)

    async def read(self, fn: Work[T]) -> T:
        """Run `fn(session)` in a read-only transaction on a reader connection, beside the writer; it
        sees everything committed before it began. Raises `ReadOnly` where there are no readers, and
        whatever `fn` raises (an attempt to write included: the connection refuses it)."""
        if not self._reader_threads:
            raise ReadOnly
        loop = asyncio.get_running_loop()
        unit = _Unit(fn, loop.create_future(), loop)
        self._read_queue.put(unit)
        return await unit.future  # type: ignore[no-any-return]

    async def ping(self) -> bool:
        try:
            if self.async_engine is not None:  # a read proves nothing about writes: not through run()
                await asyncio.wait_for(self._pg_ping(), 2.0)
            else:
                await asyncio.wait_for(self.run(lambda s: s.execute(text("SELECT 1")).scalar()), 2.0)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for health
            return False

    async def _pg_ping(self) -> None:
        """SELECT 1 on a pooled connection. One the server closed while it lay in the pool for less
        than `PING_AFTER_IDLE_S` fails it, and SQLAlchemy then renews the whole pool: the ping asks
        once more, on a new connection, so that a server that is back says so at once."""
        assert self.async_engine is not None
        for again in (True, False):
            try:
                async with self.async_engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return
            except DBAPIError as exc:
                if not (again and exc.connection_invalidated):
                    raise

    async def usable(self) -> bool:
        """Whether the database answers and, after a write failed, takes a write again. Only this probe
        clears a failure: reads, and small writes into pages with room, still succeed on a full disk.
        It writes and deletes one inbox row of sixteen pages or more (so that a database that cannot
        grow refuses it) in one committed transaction."""
        if not await self.ping():
            return False
        if not self.write_failure:
            return True
        try:
            await asyncio.wait_for(self.run(_probe_write), 5.0)
        except Exception:  # noqa: BLE001 - still failing: write_failure says why
            return False
        log.warning("the database takes writes again (it failed with %s)", self.write_failure)
        self.write_failure = ""
        return True

    def _failed(self, exc: BaseException) -> None:
        if not unavailable(exc):
            return
        if not self.write_failure:
            log.error("the database cannot take writes: %s", exc)
        self.write_failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"

    def _pg_unit(self, fn: Work[T], key: int | None) -> T:
        """One unit on PostgreSQL, run whole in one greenlet: a pooled connection, its transaction
        (with the advisory lock on `key` when given), `fn`, the commit.

        The engine's connections are in autocommit, and the unit says BEGIN and COMMIT itself, in
        PostgreSQL's simple protocol (`_script`): the lock goes in BEGIN's round trip. SQLAlchemy's
        `AsyncSession` spawned a greenlet for each step (the connection, `run_sync`, the commit, the
        close), and asyncpg's transaction object paid a round trip for BEGIN alone; together ~0.3
        ms of the bot's CPU a message (docs/PERFORMANCE.md, the twelfth round).

        Every way out of the block ends the transaction: COMMIT, ROLLBACK, or the connection
        dropped from the pool (`invalidate`; the server rolls back what it had) when it cannot
        say ROLLBACK or the unit was interrupted (cancelled) in the middle."""
        begin = "BEGIN" if key is None else f"BEGIN; SELECT pg_advisory_xact_lock({int(key)})"
        with self._pg_begun(begin) as conn:
            session = Session(bind=conn, expire_on_commit=False)
            try:
                result = fn(session)
                session.flush()
                _script(conn, "COMMIT")
                return result
            except Exception:
                if not conn.invalidated:  # else dropped already (`_script`, or SQLAlchemy on a lost one)
                    try:
                        _script(conn, "ROLLBACK")
                    except DatabaseUnavailable:
                        pass  # dropped: the unit's own error says more
                raise
            except BaseException:  # cancelled in a round trip: what the server does next is unknown
                conn.invalidate()
                raise
            finally:
                session.close()

    def _pg_begun(self, begin: str) -> Connection:
        """A pooled connection on which `begin` (BEGIN, with the person's lock) has been said.

        A pooled connection the server closed (it restarted, an administrator ended its backend) is
        found dead only by BEGIN when it was handed back less than `PING_AFTER_IDLE_S` ago: it is
        dropped and the next one tried (nothing was done on it), as many times as the pool holds
        connections, since a restart closes them all. Run through SQLAlchemy, such a failure
        invalidated the whole pool; said by `_script`, only the connection. DatabaseUnavailable when
        no connection can be opened, or BEGIN fails on a live one."""
        assert self.async_engine is not None
        for _ in range(self._pool_size + 1):
            try:
                conn = self.async_engine.sync_engine.connect()
            except Exception as exc:  # refused, not yet accepting, starting up…
                raise DatabaseUnavailable(f"cannot connect: {exc}") from exc
            try:
                _script(conn, begin)
                return conn
            except _ConnectionLost:
                conn.close()
            except BaseException:  # refused on a live one (dropped by `_script`), or cancelled in it
                if not conn.invalidated:  # waiting for the person's lock, say: the server may yet take it
                    conn.invalidate()
                conn.close()
                raise
        raise DatabaseUnavailable("BEGIN failed on every pooled connection: the connections were lost")

    # -- SQLite writer thread ------------------------------------------------------------------

    def _writer(self) -> None:
        assert self.sync_engine is not None
        # Opened for the first batch, and again after a failure closed it. Opening may fail too (the
        # file locked or unreadable for a moment): that batch's units learn why, and the next batch
        # tries again; a writer thread that died here would leave every later message waiting.
        conn: Any = None
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._batch_max:
                    try:
                        unit = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if unit is None:
                        stop = True
                        break
                    batch.append(unit)
                try:
                    if conn is None or conn.closed:  # e.g. the file went away: open it again
                        conn = self.sync_engine.connect()
                    with self._turn.held():
                        self._run_batch(conn, batch)
                except Exception as exc:  # noqa: BLE001 - the writer outlives any failure of a batch
                    log.exception("the SQLite writer failed a batch")
                    self._failed(exc)
                    for unit in batch:
                        if unit.error is None:
                            unit.error, unit.result = exc, None
                    _hand_back(batch)
        finally:
            if conn is not None:
                conn.close()

    def _reader(self) -> None:
        assert self.read_engine is not None
        conn: Any = None  # opened as the writer's is: a failure is the unit's, not the thread's
        try:
            while (unit := self._read_queue.get()) is not None:
                try:
                    if conn is None or conn.closed:
                        conn = self.read_engine.connect()
                    unit.result = _read_only(conn, unit.fn)
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                    unit.error = exc
                try:
                    unit.loop.call_soon_threadsafe(_settle, [unit])
                except RuntimeError:  # that loop has closed; nobody is waiting any more
                    pass
        finally:
            if conn is not None:
                conn.close()

    def _run_batch(self, conn: Any, batch: list[_Unit]) -> None:
        # Optimistic group commit: the whole batch in one transaction with no SAVEPOINTs (two
        # statements a message saved). Should any unit fail, or the commit, the batch is rolled back
        # and every unit runs again alone, so a failure undoes only its own unit's work. Units are
        # transaction scripts whose only effects are in the database, so running one again is safe.
        if len(batch) > 1 and self._together(conn, batch):
            self.batches += 1
        else:
            for unit in batch:
                self._alone(conn, unit)
                self.batches += 1
                if unit.error is not None:
                    self._failed(unit.error)
        _hand_back(batch)

    @staticmethod
    def _together(conn: Any, batch: list[_Unit]) -> bool:
        try:
            trans = conn.begin()
        except Exception:  # noqa: BLE001 - BEGIN itself failed (read-only file…): each unit learns why
            return False
        # One Session for the batch (building, committing and closing one costs ~55 µs a unit). Its
        # identity map is emptied between units, so each starts from the database as it would alone.
        session = _session(conn)
        try:
            for unit in batch:
                unit.result = unit.fn(session)
                session.flush()
                session.expunge_all()
            session.commit()  # the transaction itself belongs to the batch
            trans.commit()
            return True
        except Exception:  # noqa: BLE001 - retried unit by unit, where the error finds its owner
            session.rollback()
            if trans.is_active:
                trans.rollback()
            for unit in batch:
                unit.result = None
            return False
        finally:
            session.close()

    @staticmethod
    def _alone(conn: Any, unit: _Unit) -> None:
        trans = None
        try:
            trans = conn.begin()
            unit.result = _call(conn, unit.fn)
            trans.commit()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            unit.error, unit.result = exc, None
            if trans is not None and trans.is_active:
                trans.rollback()


def _hand_back(batch: list[_Unit]) -> None:
    """Settle each unit's future on its own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
    for unit in batch:
        by_loop.setdefault(unit.loop, []).append(unit)
    for loop, units in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, units)
        except RuntimeError:  # that loop has closed; nobody is waiting any more
            pass


_PROBE_KEY = "healthz:write-probe"


def _probe_write(session: Session) -> None:
    inbox = InboxEntry.__table__
    conn = session.connection()
    conn.execute(
        insert(inbox).values(
            key=_PROBE_KEY,
            userid="",
            kind="probe",
            command="",
            reply="x" * 65536,  # sixteen pages or more: a database that cannot grow refuses it
            reply_via_outbox=False,
        )
    )
    conn.execute(delete(inbox).where(inbox.c.key == _PROBE_KEY))


def _script(conn: Connection, sql: str) -> None:
    """Run `sql` (statements without parameters) on the connection's asyncpg connection in
    PostgreSQL's simple protocol: one round trip for all of them. Said only by `_pg_unit` (BEGIN,
    COMMIT, ROLLBACK): when one fails, the transaction is in an unknown state, so the connection is
    dropped from the pool (the server rolls back what it had) and the database counts as
    unavailable."""
    driver = conn.connection.driver_connection
    try:
        await_only(driver.execute(sql))  # type: ignore[union-attr]
    except Exception as exc:
        lost = driver.is_closed()  # type: ignore[union-attr]
        conn.invalidate(exc)
        raise (_ConnectionLost if lost else DatabaseUnavailable)(
            f"{sql.split(';')[0]} failed: {exc}"
        ) from exc


class _ConnectionLost(DatabaseUnavailable):
    """`_script` failed because the connection had been closed (by the server, or the network)."""


def _read_only(conn: Any, fn: Callable[[Session], Any]) -> Any:
    """Run `fn` in a transaction of a reader connection, rolled back after: it only read."""
    trans = conn.begin()
    session = _session(conn)
    try:
        return fn(session)
    finally:
        session.close()
        if trans.is_active:
            trans.rollback()


def _session(conn: Any) -> Session:
    """A Session on a transaction its caller owns (the writer's batch, a reader's read): committing
    it flushes, and only the caller ends the transaction."""
    return Session(bind=conn, join_transaction_mode="rollback_only", expire_on_commit=False)


def _call(conn: Any, fn: Callable[[Session], Any]) -> Any:
    """Run a unit on the batch's transaction; a failure rolls the whole transaction back."""
    session = _session(conn)
    try:
        result = fn(session)
        session.commit()  # flushes; the transaction itself belongs to the batch
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _settle(units: list[_Unit]) -> None:
    for unit in units:
        if unit.future.done():
            continue
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            unit.future.set_result(unit.result)
