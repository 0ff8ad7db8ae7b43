"""From an accepted callback to a reply, exactly once, one message per person at a time.

Each message is written to the inbox under its unique key in the same transaction as everything its
handler records, so a WeCom retry finds the key and gets the stored reply without re-running
anything. A person's messages run one at a time and in order (an asyncio lock here, an advisory lock
in PostgreSQL across processes). A handler runs within the reply budget; if it cannot finish in
time the callback is acknowledged empty and the reply follows through the outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import members, outbox
from bot.context import Context
from bot.replies import ReplaceButton, Reply, Text
from bot.wecom.messages import MEDIA_TYPES, UNSUPPORTED_TYPES, Incoming, PassiveReply
from storage.database import unavailable
from storage.models import InboxEntry
from storage.prebuilt import Prebuilt

if TYPE_CHECKING:
    from bot.config import Config
    from bot.outbox import OutboxWorker
    from bot.router import Router
    from storage.database import Database

log = logging.getLogger(__name__)

# Built once: these run for every message (docs/architecture.md, "The hot path"), on SQLite's own
# cursor (storage/prebuilt.py).
_INBOX = InboxEntry.__table__
_STORED = Prebuilt(
    select(_INBOX.c.reply, _INBOX.c.reply_via_outbox, _INBOX.c.command).where(
        _INBOX.c.key == bindparam("key")
    )
)
_INSERT = Prebuilt(insert(_INBOX))

SORRY = "抱歉，刚才没有处理成功，请稍后再发一次。"
NOT_SAVED = "没保存上：系统暂时无法保存，请稍后再发一次。"  # the database refused the write
UNSUPPORTED = "暂时只能处理文字、图片和文件消息。发送「帮助」查看可以用的命令。"
AIBOT_REPLY_LIMIT = 20480  # bytes of an AI-bot stream reply (bot/aibot/protocol.py STREAM_LIMIT)
SILENT_EVENTS = frozenset({"enter_agent", "subscribe", "unsubscribe"})


class DispatchObserver(Protocol):
    def handled(self, command: str, seconds: float, outcome: str) -> None: ...


class _NullObserver:
    def handled(self, command: str, seconds: float, outcome: str) -> None:
        pass


class Deadline:
    """Decides, race-free across the writer thread and the event loop, how the reply leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._late = False
        self._passive = False

    def claim_passive(self) -> bool:
        """Called by the handler's transaction before it commits: may the reply go back passively?"""
        with self._lock:
            if not self._late:
                self._passive = True
            return self._passive

    def expire(self) -> bool:
        """Called when the budget runs out: True if the reply must now go through the outbox."""
        with self._lock:
            if not self._passive:
                self._late = True
            return self._late


@dataclass(frozen=True)
class Handled:
    """How one message was handled: the passive reply (if any), whether it was a retry of one handled
    before, how many outbox rows it queued, and the command it ran (for logs and metrics)."""

    passive: PassiveReply | None
    duplicate: bool = False
    enqueued: int = 0
    command: str = ""


@dataclass(frozen=True)
class Read:
    """A command that only read, run on a reader connection: what it answered and wants pushed, to be
    written with its inbox row by the writer."""

    passive: PassiveReply | None
    rows: tuple[outbox.Row, ...]
    command: str
    now: datetime


class UserLocks:
    """One asyncio lock per person, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, userid: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(userid) or (asyncio.Lock(), 0)
        self._locks[userid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[userid]
            if users <= 1:
                del self._locks[userid]
            else:
                self._locks[userid] = (lock, users - 1)


def _passive_to_json(reply: PassiveReply | None) -> str | None:
    if reply is None:
        return None
    return json.dumps({"text": reply.text, "button": reply.replace_button}, ensure_ascii=False)


def _passive_from_json(stored: str | None) -> PassiveReply | None:
    if not stored:
        return None
    data = json.loads(stored)
    return PassiveReply(text=data.get("text", ""), replace_button=data.get("button", ""))


class _Answering:
    """One message on its way to its answer (`Dispatcher.submit`)."""

    __slots__ = ("incoming", "answer", "started", "deadline", "timer", "late")

    def __init__(
        self,
        incoming: Incoming,
        answer: Callable[[PassiveReply | None], None],
        started: float,
        deadline: Deadline,
    ):
        self.incoming = incoming
        self.answer = answer
        self.started = started
        self.deadline = deadline
        self.timer: asyncio.TimerHandle | None = None
        self.late = False  # answered empty when the budget ran out; the reply goes through the outbox


class Dispatcher:
    """Called by the callback with each accepted message; returns the passive reply, if any."""

    def __init__(
        self,
        db: Database,
        config: Config,
        router: Router,
        outbox: OutboxWorker | None = None,
        observer: DispatchObserver | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.db = db
        self.config = config
        self.router = router
        self.outbox = outbox
        self.observer = observer or _NullObserver()
        self.locks = UserLocks()
        self.tz = config.tz
        # What handlers see as `ctx.now`; local mode's demo history replays past days through it.
        self.clock = clock or (lambda: datetime.now(self.tz))
        self._in_flight: set[asyncio.Task[Handled]] = set()
        self.read_cost: dict[str, float] = {}  # command → recent handler time (s), see _reads_apart
        # Called after each message's transaction committed (the 党建看板 looks for changes then).
        self.committed: list[Callable[[], None]] = []

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for messages still being handled (late ones included): they were acknowledged to
        WeCom, so stopping before they commit would lose them."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    async def __call__(self, incoming: Incoming) -> PassiveReply | None:
        answered: asyncio.Future[PassiveReply | None] = asyncio.get_running_loop().create_future()

        def answer(reply: PassiveReply | None) -> None:
            if not answered.done():  # (not when whoever waited has gone: the work goes on regardless)
                answered.set_result(reply)

        self.submit(incoming, answer)
        return await answered

    def submit(self, incoming: Incoming, answer: Callable[[PassiveReply | None], None]) -> None:
        """Handle `incoming` and call `answer` with its passive reply (None: none, or the budget ran
        out and the reply follows through the outbox), once, on the event loop. One task and one timer a
        message (asyncio.wait's own future, timer and task cost ~30 µs more); the callback's front
        process (bot/front.py) answers through it without a coroutine of its own."""
        if incoming.kind == "event" and incoming.event in SILENT_EVENTS:
            answer(None)
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = Deadline()
        task = loop.create_task(self._work(incoming, deadline))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        state = _Answering(incoming, answer, started, deadline)
        state.timer = loop.call_later(self.config.handlers.budget_seconds, self._budget_spent, task, state)
        task.add_done_callback(lambda t: self._settle(t, state))

    def _budget_spent(self, task: asyncio.Task[Handled], state: _Answering) -> None:
        # The task may have finished in this same turn of the loop: its own callback answers then.
        if task.done() or not state.deadline.expire():
            return  # (not expired: the handler had already chosen a passive reply and is committing)
        state.late = True
        log.warning("reply for %s missed the budget; it will follow through the outbox", state.incoming.key)
        state.answer(None)

    def _settle(self, task: asyncio.Task[Handled], state: _Answering) -> None:
        incoming, started = state.incoming, state.started
        if state.late:
            self._finished_late(task, incoming, started)
            return
        assert state.timer is not None
        state.timer.cancel()
        if task.cancelled() or task.exception() is not None:
            failed = None if task.cancelled() else task.exception()
            log.error(
                "handling %s from %s failed",
                incoming.key,
                incoming.sender,
                exc_info=failed,
                extra={"msgid": incoming.msg_id, "userid": incoming.sender},
            )
            self.observer.handled("", time.perf_counter() - started, "error")
            # Nothing of it was committed (one transaction), so the answer never says it was taken.
            state.answer(
                PassiveReply(text=NOT_SAVED if failed is not None and unavailable(failed) else SORRY)
            )
            return
        outcome = task.result()
        self._done(outcome, incoming, started)
        state.answer(outcome.passive)

    def _done(self, outcome: Handled, incoming: Incoming, started: float) -> None:
        if outcome.enqueued and self.outbox is not None:
            self.outbox.wake()
        for hook in self.committed:
            hook()
        elapsed = time.perf_counter() - started
        self.observer.handled(outcome.command, elapsed, "duplicate" if outcome.duplicate else "handled")
        log.info(
            "handled %s",
            incoming.kind,
            extra={
                "msgid": incoming.msg_id or incoming.key,
                "userid": incoming.sender,
                "command": outcome.command,
                "ms": round(elapsed * 1000, 1),
                "duplicate": outcome.duplicate,
            },
        )

    def _finished_late(self, task: asyncio.Task[Handled], incoming: Incoming, started: float) -> None:
        if task.cancelled() or task.exception() is not None:
            failed = None if task.cancelled() else task.exception()
            log.error("late handling of %s failed: %r", incoming.key, failed)
            if failed is not None and unavailable(failed) and self.outbox is not None:
                # The callback was answered empty and the outbox is in the database that just failed:
                # say it straight through the API, once, so that nobody waits for an answer in vain.
                sending = asyncio.ensure_future(self._tell_not_saved(incoming.sender))
                self._in_flight.add(sending)  # type: ignore[arg-type]
                sending.add_done_callback(self._in_flight.discard)  # type: ignore[arg-type]
            return
        self._done(task.result(), incoming, started)

    async def _tell_not_saved(self, userid: str) -> None:
        assert self.outbox is not None
        try:
            await self.outbox.client.send_message(userid, "text", {"content": NOT_SAVED})
        except Exception as exc:  # noqa: BLE001 - best effort: the log keeps what the person missed
            log.warning("could not tell %s that their message was not saved: %s", userid, exc)

    async def _work(self, incoming: Incoming, deadline: Deadline) -> Handled:
        async with self.locks.hold(incoming.sender):
            if self._reads_apart(incoming):
                done = await self._read_first(incoming, deadline)
                if done is not None:
                    return done
            try:
                return await self.db.run(
                    lambda s: self._process(s, incoming, deadline), lock_key=incoming.sender
                )
            except IntegrityError:
                # The same message committed in another process between our look-up and insert.
                stored = await self.db.run(lambda s: self._stored(s, incoming.key))
                if stored is None:
                    raise
                return stored

    def _reads_apart(self, incoming: Incoming) -> bool:
        """Whether this message runs on a reader connection first: a command that only reads and has
        lately taken longer than `database.read_apart_ms` (a long read would hold everyone's writes). A
        quick one stays on the writer: handing it to a reader thread and back costs more than it saves
        (measured: 1.8 against 1.2 ms of CPU a message under make bench's load)."""
        if not self.db.reads_apart or incoming.kind != "text":
            return False
        name = self.router.reading_command(incoming.content)
        threshold = self.config.database.read_apart_ms / 1000
        return name is not None and (threshold == 0 or self.read_cost.get(name, 0.0) > threshold)

    def _note_cost(self, command: str, seconds: float) -> None:
        """A moving average of how long each command's handler takes (what `_reads_apart` goes by)."""
        before = self.read_cost.get(command)
        self.read_cost[command] = seconds if before is None else before + (seconds - before) / 8

    async def _read_first(self, incoming: Incoming, deadline: Deadline) -> Handled | None:
        """A command that only reads runs on a reader connection, beside the writer; then only its
        inbox row and pushes are written. None: it has to run on the writer after all (a dialogue is
        open, the sender is unknown, or the handler tried to write)."""
        try:
            read = await self.db.read(lambda s: self._handle(s, incoming, deadline, reading=True))
        except Exception as exc:  # noqa: BLE001 - the writer runs it again and owns any real error
            log.debug("%s runs on the writer: %r", incoming.key, exc)
            return None
        if not isinstance(read, Read):
            return read
        try:
            return await self.db.run(lambda s: self._record_read(s, incoming, read, deadline))
        except IntegrityError:
            # The same message committed in another process meanwhile: its answer stands.
            stored = await self.db.run(lambda s: self._stored(s, incoming.key))
            if stored is None:
                raise
            return stored

    def _record_read(self, session: Session, incoming: Incoming, read: Read, deadline: Deadline) -> Handled:
        # The same way out as a handler's pushes (`Context.out`): quiet hours decided in `flush`.
        out = outbox.Outgoing(
            session,
            quiet=outbox.QuietRule(self.config, read.now, answering=incoming.sender),
            channel=self.config.personal_channel,
        )
        passive, via_outbox = read.passive, False
        if passive is not None and not deadline.claim_passive():
            via_outbox = True
            if passive.text:
                out.send(incoming.sender, Text(passive.text))
            passive = None
        out.pending += read.rows
        enqueued = out.flush()
        self._insert_inbox(session, incoming, read.now, read.command, passive, via_outbox)
        return Handled(passive, enqueued=enqueued, command=read.command)

    @staticmethod
    def _insert_inbox(
        session: Session,
        incoming: Incoming,
        now: datetime,
        command: str,
        passive: PassiveReply | None,
        via_outbox: bool,
    ) -> None:
        _INSERT.execute(
            session,
            {
                "key": incoming.key,
                "userid": incoming.sender,
                "kind": incoming.event or incoming.kind,
                "command": command,
                "received_at": now,
                "reply": _passive_to_json(passive),
                "reply_via_outbox": via_outbox,
            },
        )

    @staticmethod
    def _stored(session: Session, key: str) -> Handled | None:
        found = _STORED.rows(session, {"key": key})
        if not found:
            return None
        row = found[0]
        return Handled(
            None if row.reply_via_outbox else _passive_from_json(row.reply),
            duplicate=True,
            command=row.command,
        )

    def _process(self, session: Session, incoming: Incoming, deadline: Deadline) -> Handled:
        done = self._handle(session, incoming, deadline, reading=False)
        assert isinstance(done, Handled)
        return done

    def _handle(
        self, session: Session, incoming: Incoming, deadline: Deadline, *, reading: bool
    ) -> Handled | Read | None:
        known = members.arrival(session, incoming.key, incoming.sender)
        if known.seen and (stored := self._stored(session, incoming.key)) is not None:
            return stored
        if reading and (known.sender is None or known.has_dialogue):
            return None  # a stranger is recorded, a dialogue may be ended: both write
        now = self.clock()
        ctx = Context(
            session=session,
            config=self.config,
            router=self.router,
            message=incoming,
            now=now,
            member=known.sender,
            has_dialogue=known.has_dialogue,
        )
        # CPU time of this thread, not wall time: under load, waiting for the interpreter lock would
        # make every read look slow and send it to a reader thread, which only adds to the waiting.
        started = time.thread_time()
        replies = self._route(ctx)
        if command := ctx.extra.get("command", ""):
            self._note_cost(command, time.thread_time() - started)
        if ctx.in_group:
            replies = self._in_group(ctx, replies)
        passive, later = self._split(
            replies,
            card_click=incoming.event == "template_card_event",
            limit=AIBOT_REPLY_LIMIT if incoming.channel == "aibot" else 2048,
        )
        command = ctx.extra.get("command", "")
        if reading:
            for reply in later:
                ctx.send(incoming.sender, reply)
            return Read(passive, tuple(ctx.out.pending), command, now)
        via_outbox = False
        if passive is not None and not deadline.claim_passive():
            via_outbox = True
            if passive.text:
                later.insert(0, Text(passive.text))
            passive = None
        for reply in later:
            ctx.send(incoming.sender, reply)
        enqueued = ctx.out.flush()
        self._insert_inbox(session, incoming, now, command, passive, via_outbox)
        return Handled(passive, enqueued=enqueued, command=command)

    def _route(self, ctx: Context) -> list[Reply]:
        m = ctx.message
        if ctx.member is None:
            return [Text(members.refuse_unknown(ctx))]
        if m.kind == "text":
            return self.router.handle_text(ctx)
        if m.kind in MEDIA_TYPES:
            return self.router.handle_media(ctx)
        if ctx.by_click:
            return self.router.handle_card(ctx)
        if m.kind in UNSUPPORTED_TYPES:
            return [Text(UNSUPPORTED)]
        return []

    def _in_group(self, ctx: Context, replies: list[Reply]) -> list[Reply]:
        """In a group chat the group sees the answers of `aibot.group_commands` (排行, 帮助); any other
        command's answer (a dialogue, personal data) goes to the sender privately, and the group gets
        one line saying so. Text that is no command is answered in the group."""
        command = ctx.extra.get("command", "")
        if not replies or not command or ctx.member is None or command in self.config.aibot.group_commands:
            return replies
        for reply in replies:
            ctx.send(ctx.userid, reply)
        return [Text(f"{ctx.member.name}：「{command}」的回复已私信发给你，请在和先锋的单聊里继续。")]

    @staticmethod
    def _split(
        replies: list[Reply], *, card_click: bool, limit: int = 2048
    ) -> tuple[PassiveReply | None, list[Reply]]:
        """The first text (or, after a card click, a button replacement) goes back passively; the rest
        through the outbox. A button replacement means nothing in answer to typed text."""
        passive: PassiveReply | None = None
        later: list[Reply] = []
        for reply in replies:
            if isinstance(reply, ReplaceButton):
                if passive is None and card_click:
                    passive = PassiveReply(replace_button=reply.label)
            elif passive is None and isinstance(reply, Text):
                passive = PassiveReply(text=reply.content)
            else:
                later.append(reply)
        if passive is not None and passive.text and len(passive.text.encode()) > limit:
            later.insert(0, Text(passive.text))  # too long for a passive reply: the outbox splits it
            passive = None
        return passive, later
