"""The durable outbox: every push is a row first, written in the transaction that decided to send it.

`enqueue_*` functions run inside a handler's transaction. `OutboxWorker` drains due rows: it claims a
row with a lease, sends it, and records the result. Failures that may pass (-1, 45009, 45033, HTTP 5xx,
timeouts) are retried with exponential backoff and jitter; a message that keeps failing, or fails for
a reason that will not pass, ends `dead`; when that reason is the deployment's configuration (a wrong
secret, agent id, API base or untrusted IP, a removed group robot), the problem is reported once to
the admins and shown in /healthz until a send succeeds again. One target's messages leave in order,
and rate limits per member (app messages, per minute and per hour) and per group robot are counted
from the table, so they hold across processes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from bot import pictures
from bot.replies import Card, File, Image, Markdown, ReplaceButton, Reply, Text
from bot.wecom import render
from bot.wecom.errors import Misconfiguration, misconfiguration
from storage.models import MediaFile, Member, OutboxMessage
from storage.prebuilt import Prebuilt

if TYPE_CHECKING:
    from bot.config import Config
    from bot.wecom.client import WeComClient
    from storage.database import Database

log = logging.getLogger(__name__)

TEXT_LIMIT = 2048  # bytes, for app text and markdown (WeCom truncates or refuses beyond)
WEBHOOK_MARKDOWN_LIMIT = 4096
PENDING = ("queued", "sending")
CLAIM_LOCK = "outbox:claim"  # the advisory lock's key


def utcnow() -> datetime:
    return datetime.now(UTC)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split into pieces of at most `limit` UTF-8 bytes, on character boundaries, preferring newlines."""
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest.encode()) > limit:
        cut = len(rest.encode()[:limit].decode("utf-8", errors="ignore"))
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline + 1
        parts.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


Row = dict[str, Any]
_INSERT = Prebuilt(insert(OutboxMessage.__table__))


def _row(channel: str, target: str, msgtype: str, payload: dict[str, Any], ref: str = "") -> Row:
    now = utcnow()
    return {
        "channel": channel,
        "target": target,
        "msgtype": msgtype,
        "ref": ref,
        "created_at": now,
        "next_attempt_at": now,
        "payload": json.dumps(payload, ensure_ascii=False),
        "status": "queued",
        "attempts": 0,
        "last_error": "",
        "result": "",
        "lease_until": None,
        "sent_at": None,
    }


def enqueue(session: Session, rows: Iterable[Row]) -> int:
    """Insert outbox rows in the caller's transaction (Core, not ORM objects: replies are on the hot path)."""
    rows = list(rows)
    _INSERT.execute(session, rows)
    return len(rows)


def reply_rows(userid: str, reply: Reply, *, ref: str = "", channel: str = "app") -> list[Row]:
    """Outbox rows for a reply to a member as app messages (or, with channel "aibot", as the AI bot's
    pushes to a chat); long text becomes several, in order."""
    if isinstance(reply, Text):
        text = render.plain(reply.content)
        return [_row(channel, userid, "text", {"content": p}, ref) for p in split_text(text)]
    if isinstance(reply, Markdown):
        text = render.markdown(reply.content)
        return [_row(channel, userid, "markdown", {"content": p}, ref) for p in split_text(text)]
    if isinstance(reply, Card):
        return [
            _row(
                channel,
                userid,
                "template_card",
                render.template_card(reply, userid, utcnow()),
                ref or reply.ref,
            )
        ]
    if isinstance(reply, Image):
        return [_row(channel, userid, "image", image_payload(reply), ref)]
    if isinstance(reply, File):
        data = base64.b64encode(reply.data).decode()
        return [_row(channel, userid, "file", {"filename": reply.filename, "data": data}, ref)]
    if isinstance(reply, ReplaceButton):
        return []  # only meaningful as a passive reply to the click itself
    raise TypeError(f"cannot send {reply!r}")  # pragma: no cover - the Reply union is closed


def image_payload(image: Image) -> dict[str, Any]:
    """A picture's bytes (base64), or what to draw when it is sent (`Image.drawn`)."""
    if image.drawing is not None:
        name, data = image.drawing
        return {"filename": image.filename, "drawing": name, "input": data}
    return {"filename": image.filename, "data": base64.b64encode(image.data).decode()}


async def image_bytes(
    payload: dict[str, Any], drawer: pictures.Drawer, keep_lease: Callable[[], Awaitable[None]]
) -> bytes:
    """The picture of an image row: drawn now (by `drawer`) if the row says what to draw. A picture can
    take longer than the row's lease (the drawing process yields to the bot on a busy machine), so
    `keep_lease` runs beside the drawing, renewing it: the row is not claimed and sent a second time."""
    if "drawing" not in payload:
        return base64.b64decode(payload["data"])
    keeper = asyncio.create_task(keep_lease())
    try:
        return await drawer.draw(payload["drawing"], payload["input"])
    finally:
        keeper.cancel()


def webhook_rows(group: str, msgtype: str, body: dict[str, Any]) -> list[Row]:
    """Outbox rows for a configured group robot (markdown is split at 4096 bytes)."""
    if msgtype == "markdown":
        body = {"content": render.markdown(body["content"])}
        return [
            _row("webhook", group, "markdown", {"content": p})
            for p in split_text(body["content"], WEBHOOK_MARKDOWN_LIMIT)
        ]
    return [_row("webhook", group, msgtype, body)]


# What decides when a push to other people may leave, read in one statement for all the people a
# message notifies, on the driver's own cursor (storage/prebuilt.py): each member's quiet hours of
# their own (免打扰: NULL keeps the workshop's window, "" has none), and when the newest message
# already queued for them on the channel may leave. A new one cannot leave before it (one member's
# messages leave in order), so when that queue waits (a secretary past 30 cards a minute) the new
# row joins the end of the line as it is written (`pace` behind), instead of waking the worker to
# find that out.
_M = Member.__table__.c  # type: ignore[attr-defined]
_QUEUED = OutboxMessage.__table__.alias("queued")
_QUEUE_MOVES_AT = (
    select(_QUEUED.c.next_attempt_at)
    .where(
        _QUEUED.c.target == _M.userid,
        _QUEUED.c.status == "queued",
        _QUEUED.c.channel == bindparam("channel"),
    )
    .order_by(_QUEUED.c.id.desc())  # the index on (target, status, id), from its end: one step
    .limit(1)
    .scalar_subquery()
)
_RECIPIENTS = Prebuilt(
    select(_M.userid, _M.quiet_hours, _QUEUE_MOVES_AT).where(
        _M.userid.in_(bindparam("userids", expanding=True))
    )
)


@dataclass(frozen=True, slots=True)
class Recipient:
    quiet_hours: str | None  # their own window; None keeps the workshop's
    queue_moves_at: datetime | None  # when the newest message queued for them may leave; None: none


def recipients(session: Session, userids: set[str], channel: str) -> dict[str, Recipient]:
    """Each member among `userids`: their own quiet hours, and when their queue on `channel` moves."""
    if not userids:
        return {}
    rows = _RECIPIENTS.rows(session, {"userids": sorted(userids), "channel": channel})
    return {r[0]: Recipient(r[1], r[2]) for r in rows}


def pace(config: Config, channel: str) -> timedelta:
    """How far apart the messages of a queue that waits (at a rate limit, behind a retry) are lined
    up on `channel`: its limit a minute, evenly; a member's (app messages') on a channel with no limit
    of its own (card updates, file fetches, which wait only behind a retry)."""
    per_minute = {
        "webhook": config.outbox.per_webhook_per_minute,
        "aibot": config.aibot.per_chat_per_minute,
    }.get(channel, config.outbox.per_member_per_minute)
    return timedelta(minutes=1) / per_minute


PERSONAL = ("app", "aibot")  # channels whose rows go to a member (the AI bot's may go to a group chat)


class QuietRule:
    """Which pushes of one handler run or job wait through quiet hours, and until when.

    Urgent, never held: what answers `answering` (the member whose message is being handled), card
    updates and file downloads. Held, when the recipient's window holds `now`: everything else: a job's
    pushes, and a message's notices to other people (approval cards, decisions, alerts). App messages
    follow the recipient's own window (免打扰) or the workshop's (`quiet_hours`); group robots the
    workshop's. A held row has status `held` and leaves when its window ends, in order. A notice to a
    member whose queue waits (at a rate limit, behind a retry) is written to wait at the end of it, one
    `pace` behind its newest: it could not leave before the messages ahead of it.
    """

    def __init__(self, config: Config, now: datetime, answering: str | None = None):
        self.config = config
        self.now = now  # aware, in the configured zone
        self.answering = answering

    def hold(self, session: Session, rows: list[Row]) -> None:
        """Mark the rows that wait for the end of a quiet window `held`; the others to other people that
        would only queue behind a waiting message of theirs wait as long as it does."""
        from bot.quiet import parse_window

        notices = [r for r in rows if r["channel"] in PERSONAL and r["target"] != self.answering]
        if not notices and not any(r["channel"] == "webhook" for r in rows):
            return  # only answers: the hot path reads nothing more
        workshop = parse_window(self.config.quiet_hours)
        # The notices' channel (an Outgoing's own); a row on another one only keeps its quiet hours.
        channel = notices[0]["channel"] if notices else "app"
        found = recipients(session, {r["target"] for r in notices}, channel)
        local = self.now.timetz().replace(tzinfo=None)
        lined: dict[str, datetime] = {}  # where the last row written for a waiting queue stands
        for r in rows:
            if r["channel"] == "webhook":
                window = workshop
            elif r["channel"] in PERSONAL and r["target"] != self.answering:
                person = found.get(r["target"])
                own = person.quiet_hours if person is not None else None
                window = parse_window(own) if own is not None else workshop
                if person is not None and r["channel"] == channel and person.queue_moves_at is not None:
                    behind = lined.get(r["target"], person.queue_moves_at)
                    if behind > r["created_at"]:  # the queue waits: this one lines up at its end
                        behind += pace(self.config, channel)
                        lined[r["target"]] = behind
                    r["next_attempt_at"] = max(r["next_attempt_at"], behind)
            else:
                continue
            if window is not None and window.contains(local):
                r["status"] = "held"
                r["next_attempt_at"] = r["created_at"] + (window.end_after(self.now) - self.now)


class Outgoing:
    """What a handler or a job decides to send, written to the outbox in one statement when its
    work is done (`flush`), inside the same transaction; `quiet` decides what waits for the morning."""

    def __init__(self, session: Session, *, quiet: QuietRule | None = None, channel: str = "app"):
        self.session = session
        self.quiet = quiet
        self.channel = channel  # how members are reached: "app", or "aibot" when only the AI bot runs
        self.pending: list[Row] = []
        self.due = 0  # rows written so far that may leave now (media fetches and card updates too)

    def send(self, userid: str, reply: Reply | str, *, ref: str = "") -> None:
        self.pending += reply_rows(
            userid, Text(reply) if isinstance(reply, str) else reply, ref=ref, channel=self.channel
        )

    def broadcast(self, group: str, content: Markdown | Image | str) -> None:
        """Post markdown (with `tone` spans) or an image to a configured group robot."""
        if isinstance(content, Image):
            self.pending += webhook_rows(group, "image", image_payload(content))
        else:
            text = content.content if isinstance(content, Markdown) else content
            self.pending += webhook_rows(group, "markdown", {"content": text})

    def fetch_media(self, media_id: str, *, ref: str, userid: str, url: str = "", aes_key: str = "") -> int:
        """Keep a file a member sent; returns the MediaFile id (written now: the caller needs the id).
        The AI bot's files come as an encrypted `url` with its `aes_key` instead of a media id."""
        self.due += 1
        return enqueue_media_fetch(self.session, media_id, ref=ref, userid=userid, url=url, aes_key=aes_key)

    def update_cards(self, ref: str, label: str) -> None:
        self.due += enqueue_card_updates(self.session, ref, label)

    def flush(self) -> int:
        """Write what is pending; returns how many of the rows this Outgoing has written in all may
        leave now: the worker is woken for those. A row held for quiet hours or waiting behind the
        target's queue is found by the worker's next look when its time comes."""
        if self.quiet is not None and self.pending:
            self.quiet.hold(self.session, self.pending)
        enqueue(self.session, self.pending)
        self.due += sum(
            1 for r in self.pending if r["status"] == "queued" and r["next_attempt_at"] <= r["created_at"]
        )
        self.pending = []
        return self.due


def enqueue_card_updates(session: Session, ref: str, label: str) -> int:
    """Grey out the buttons of every card sent about `ref`; cards not yet sent are not sent at all."""
    conn = session.connection()
    # A conditional update, not a read then a write: on PostgreSQL a worker may claim the card between
    # the two, and overwriting its `sending` (or `sent`) with `superseded` would hide a card that was
    # delivered (the soak on PostgreSQL caught one).
    conn.execute(_SUPERSEDE, {"card_ref": ref})
    rows = []
    for channel, target, result in conn.execute(_SENT_CARDS, {"card_ref": ref}).all():
        if channel == "aibot":  # only the clicked one can be updated, in answer to its click
            continue
        code = json.loads(result or "{}").get("response_code")
        if code:
            rows.append(_row("card_update", target, "button", {"response_code": code, "label": label}, ref))
    return enqueue(session, rows)


def enqueue_media_fetch(
    session: Session, media_id: str, *, ref: str, userid: str = "", url: str = "", aes_key: str = ""
) -> int:
    """Record a file a member sent and queue its download (WeCom keeps media for 3 days only).

    Returns the `MediaFile` id; its bytes arrive once the worker has fetched them.
    """
    media = MediaFile(media_id=media_id, ref=ref, userid=userid, created_at=utcnow())
    session.add(media)
    session.flush()
    assert media.id is not None
    enqueue(
        session,
        [
            _row(
                "media_fetch",
                f"media:{media.id}",
                "media",
                {"media_file": media.id, "media_id": media_id}
                | ({"url": url, "aeskey": aes_key} if url else {}),
                ref,
            )
        ],
    )
    return media.id


# What the worker may send now, found through indexes so that a long queue costs little to look at:
# the oldest due row of each target, and rows whose sender's lease ran out.
_O = OutboxMessage.__table__.c
_CARDS_OF = (
    _O.channel.in_(("app", "aibot")),
    _O.msgtype == "template_card",
    _O.ref == bindparam("card_ref"),
)
_SUPERSEDE = (
    update(OutboxMessage.__table__)
    .where(*_CARDS_OF, _O.status.in_(("queued", "held")))
    .values(status="superseded")
)
_SENT_CARDS = select(_O.channel, _O.target, _O.result).where(*_CARDS_OF, _O.status == "sent")
_DUE = (
    select(_O.channel, _O.target, func.min(_O.id).label("id"))
    .where(
        _O.status == "queued",
        _O.next_attempt_at <= bindparam("now"),
        _O.channel.not_in(bindparam("skip", expanding=True)),
    )
    .group_by(_O.channel, _O.target)
    .order_by(func.min(_O.id))
    .limit(bindparam("limit"))
    .subquery("due")
)
# The oldest message of the same target in a given state that is older than its due head: one index
# seek on (target, status, id), however long the queue, done inside the one statement for all heads.
_AHEAD = OutboxMessage.__table__.alias("ahead")


def _ahead(status: str, column: Any) -> Any:
    return (
        select(column)
        .where(
            _AHEAD.c.target == _DUE.c.target,
            _AHEAD.c.status == status,
            _AHEAD.c.channel == _DUE.c.channel,
            _AHEAD.c.id < _DUE.c.id,
        )
        .order_by(_AHEAD.c.id)
        .limit(1)
        .scalar_subquery()
    )


# The claim's reads are prebuilt (storage/prebuilt.py): a worker claims after nearly every message
# that queues something.
_DUE_HEADS = Prebuilt(
    select(
        _DUE.c.channel,
        _DUE.c.target,
        _DUE.c.id,
        _ahead("sending", _AHEAD.c.id).label("sending_ahead"),
        _ahead("queued", _AHEAD.c.next_attempt_at).label("backing_off_until"),
    ).order_by(_DUE.c.id)
)
# When the soonest queued message is due: one step along the due index. Many claims follow a message
# that queued a card for a secretary already at her limit, and find nothing due; PostgreSQL's planner,
# whose statistics cannot follow a queue whose times keep moving forward, read the whole table for
# `_DUE_HEADS` even then (1–2 ms a claim behind 4,000 waiting cards; docs/PERFORMANCE.md).
_SOONEST = Prebuilt(select(func.min(_O.next_attempt_at)).where(_O.status == "queued"))
_STALE = Prebuilt(
    select(_O.id)
    .where(
        _O.status == "sending",
        _O.lease_until < bindparam("now"),
        _O.channel.not_in(bindparam("skip", expanding=True)),
    )
    .limit(bindparam("limit"))
)
_ROWS = Prebuilt(
    select(_O.id, _O.channel, _O.target, _O.msgtype, _O.payload, _O.attempts)
    .where(_O.id.in_(bindparam("ids", expanding=True)))
    .order_by(_O.id)
)
# The claim: a conditional update, so that of two workers only one gets each row back.
_TAKE = (
    update(OutboxMessage.__table__)
    .where(
        _O.id.in_(bindparam("ids", expanding=True)),
        or_(_O.status == "queued", _O.lease_until < bindparam("now")),
    )
    .values(status="sending", lease_until=bindparam("lease"), attempts=_O.attempts + 1)
    .returning(_O.id)
)
_SENT_RECENTLY = Prebuilt(
    select(_O.target, func.count(), func.min(_O.sent_at))
    .where(
        _O.channel == bindparam("channel"),
        _O.target.in_(bindparam("targets", expanding=True)),
        _O.sent_at > bindparam("since"),
    )
    .group_by(_O.target)
)
# Outcomes are written with one executemany per kind of outcome.
_RENEW = (
    update(OutboxMessage.__table__)
    .where(_O.id == bindparam("oid"), _O.status == "sending")
    .values(lease_until=bindparam("lease"))
)


def _renew(session: Session, renewal: dict[str, Any]) -> None:
    session.connection().execute(_RENEW, renewal)


_MARK_SENT = (
    update(OutboxMessage.__table__)
    .where(_O.id == bindparam("oid"))
    .values(status="sent", sent_at=bindparam("at"), lease_until=None, result=bindparam("res"))
)
_MARK_RETRY = (
    update(OutboxMessage.__table__)
    .where(_O.id == bindparam("oid"))
    .values(status="queued", lease_until=None, last_error=bindparam("err"), next_attempt_at=bindparam("due"))
)
_MARK_DEAD = (
    update(OutboxMessage.__table__)
    .where(_O.id == bindparam("oid"))
    .values(status="dead", lease_until=None, last_error=bindparam("err"))
)
# Pushes held through quiet hours become ordinary queued rows when their window has ended.
_RELEASE = (
    update(OutboxMessage.__table__)
    .where(_O.status == "held", _O.next_attempt_at <= bindparam("now"))
    .values(status="queued")
)
# A target whose queue waits (at a rate limit, behind a retry) has its due messages lined up behind
# the wait one `pace` apart, in order (`OutboxWorker._line_up`): the ones found by the index on
# (target, status, id) from the head (at most `LINE_UP_AT_ONCE` a round), and where the queue's newest
# waiting message stands. Waiting means moved behind a wait (lined up, backing off, written to join
# the line): a message written due is not waiting even when its time is a moment after the round's
# clock (on PostgreSQL a claim can commit while the round runs).
LINE_UP_AT_ONCE = 1000
_DUE_OF = Prebuilt(
    select(_O.id)
    .where(
        _O.target == bindparam("t"),
        _O.status == "queued",
        _O.id >= bindparam("head"),
        _O.next_attempt_at <= bindparam("now"),
        _O.channel == bindparam("c"),
    )
    .order_by(_O.id)
    .limit(LINE_UP_AT_ONCE)
)
_LAST_WAITING = Prebuilt(
    select(_O.id, _O.next_attempt_at)
    .where(
        _O.target == bindparam("t"),
        _O.status == "queued",
        _O.next_attempt_at > bindparam("now"),
        _O.next_attempt_at > _O.created_at,
        _O.channel == bindparam("c"),
    )
    .order_by(_O.id.desc())
    .limit(1)
)
_LINE_UP = (
    update(OutboxMessage.__table__)
    .where(_O.id == bindparam("oid"), _O.status == "queued")
    .values(next_attempt_at=bindparam("at"))
)


class AibotChannel(Protocol):
    """What the outbox needs of the AI bot's connection (bot/aibot/service.py)."""

    @property
    def ready(self) -> bool: ...  # this process holds the connection and it is subscribed

    async def push(self, chat: str, msgtype: str, payload: dict[str, Any]) -> dict[str, Any] | None: ...

    async def download(self, url: str, aes_key: str) -> tuple[bytes, str, str]: ...


class OutboxObserver(Protocol):
    def sent(self, channel: str, errcode: int | None, ok: bool) -> None: ...
    def retried(self) -> None: ...
    def died(self) -> None: ...
    def config_problems(self, count: int) -> None: ...


class _NullObserver:
    def sent(self, channel: str, errcode: int | None, ok: bool) -> None:
        pass

    def retried(self) -> None:
        pass

    def died(self) -> None:
        pass

    def config_problems(self, count: int) -> None:
        pass


def scope_of(channel: str, target: str) -> str:
    """What a configuration problem blocks: every call with the app's access token ("app": messages,
    card updates, media), or one group robot ("webhook:<group>"), whose key is its own credential."""
    if channel == "aibot":
        return "aibot"
    return f"webhook:{target}" if channel == "webhook" else "app"


@dataclass
class ConfigProblem:
    """A configuration error met by the outbox, and how many messages it has killed since."""

    scope: str
    cause: Misconfiguration
    since: datetime
    killed: int = 1

    def as_json(self) -> dict[str, Any]:
        c = self.cause
        return {
            "scope": self.scope,
            "errcode": c.errcode,
            "errmsg": c.errmsg,
            "setting": c.setting,
            "hint": c.hint_zh,
            "hint_en": c.hint_en,
            "since": self.since.isoformat(timespec="seconds"),
            "killed": self.killed,
        }


class ConfigProblems:
    """The distinct configuration problems (scope, errcode) met since they last cleared.

    Kept per process: a problem is reported once per instance, and a restart reports a problem that
    persists once more, which is what someone who restarted after a fix wants to know.
    """

    def __init__(self) -> None:
        self._active: dict[tuple[str, int], ConfigProblem] = {}

    @property
    def active(self) -> list[ConfigProblem]:
        return sorted(self._active.values(), key=lambda p: p.since)

    def died(self, scope: str, cause: Misconfiguration, now: datetime) -> ConfigProblem | None:
        """Count a message it killed; returns the problem when it is new, i.e. not yet reported."""
        known = self._active.get((scope, cause.errcode))
        if known is not None:
            known.killed += 1
            return None
        problem = self._active[(scope, cause.errcode)] = ConfigProblem(scope, cause, now)
        return problem

    def succeeded(self, scope: str) -> list[ConfigProblem]:
        """A send in `scope` went through: whatever blocked it is fixed. Returns what cleared."""
        cleared = [p for (s, _), p in self._active.items() if s == scope]
        for p in cleared:
            del self._active[(p.scope, p.cause.errcode)]
        return cleared

    def forget(self, problem: ConfigProblem) -> None:
        """Un-report a problem whose notice was not written, so that the next death reports it."""
        self._active.pop((problem.scope, problem.cause.errcode), None)


def problem_notice(problem: ConfigProblem) -> str:
    """What the admins read: what fails, what WeCom said, what to change."""
    c = problem.cause
    what = (
        "先锋发不出应用消息（回复、审批卡片、通知都受影响）"
        if problem.scope == "app"
        else f"先锋发不出群机器人「{problem.scope.removeprefix('webhook:')}」的消息"
    )
    return (
        f"【先锋配置问题】{what}：企业微信返回 {c.errcode}（{c.errmsg or '无说明'}）。\n"
        f"{c.hint_zh}\n"
        f"需修改：{c.setting}。修好后第一条发送成功即恢复；期间放弃的消息数见 /healthz 的 config_problems。"
    )


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    target: str
    msgtype: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Attempt:
    """The result of trying to deliver one outbox row: sent, to be retried after `delay`, or dead."""

    id: int
    status: str  # sent | retry | dead
    error: str = ""
    result: str = ""
    delay: float = 0.0
    media_file: int | None = None  # the MediaFile a media_fetch row fills
    media: tuple[bytes, str, str] | None = None  # what was fetched: bytes, filename, content type
    scope: str = "app"  # see scope_of
    misconfigured: Misconfiguration | None = None  # dead because of the deployment, not the message


class OutboxWorker:
    """Drains the outbox in the background; `wake()` after a commit that queued something."""

    def __init__(
        self, db: Database, client: WeComClient, config: Config, observer: OutboxObserver | None = None
    ):
        self.db = db
        self.client = client
        self.config = config
        self.settings = config.outbox
        self.observer = observer or _NullObserver()
        self.problems = ConfigProblems()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.clock = utcnow  # what "now" is when claiming (tests move it past a quiet window)
        # The AI bot's long connection (bot/aibot), when configured: its rows are claimed only by the
        # process that holds the connection; the others leave them in the table for it.
        self.aibot: AibotChannel | None = None
        self.drawer = pictures.Drawer(self.settings.draw_processes)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self.drawer.warm()
        self._task = asyncio.create_task(self._loop(), name="outbox-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                handled = await self.drain_once()
            except Exception:  # noqa: BLE001 - the worker must outlive a bad round (e.g. database down)
                log.exception("outbox round failed")
                handled = 0
            if handled:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            except TimeoutError:
                pass

    async def drain_once(self, limit: int = 100) -> int:
        """Claim what is due, send it, record the outcomes. Returns how many were attempted."""
        # One claim at a time across processes (PostgreSQL's advisory lock; SQLite has one writer):
        # two claims lining up a target's queue (_LINE_UP) and taking rows (_TAKE) in different orders
        # deadlocked under the soak. A claim is a few statements, so waiting for one costs little.
        claimed = await self.db.run(lambda s: self._claim(s, limit), lock_key=CLAIM_LOCK)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(c: Claimed) -> Attempt:
            async with gate:
                return await self._deliver(c)

        outcomes = await asyncio.gather(*(one(c) for c in claimed))
        # Accounted before the write and with no await in between, so that of two rounds running at
        # once (the background loop and a drain) only one finds a problem new and reports it.
        new = self._account(outcomes)
        try:
            await self.db.run(lambda s: self._record(s, outcomes, new))
        except BaseException:
            for problem in new:
                self.problems.forget(problem)
            raise
        return len(claimed)

    def _account(self, outcomes: list[Attempt]) -> list[ConfigProblem]:
        """Count the messages configuration problems killed, clear those a success disproves, and
        return the problems met for the first time."""
        now = utcnow()
        new: list[ConfigProblem] = []
        for out in outcomes:
            if out.status == "sent":
                for cleared in self.problems.succeeded(out.scope):
                    log.warning(
                        "configuration problem cleared: %s errcode %s (%s) after %d dead messages",
                        cleared.scope,
                        cleared.cause.errcode,
                        cleared.cause.setting,
                        cleared.killed,
                    )
            elif out.misconfigured is not None:
                problem = self.problems.died(out.scope, out.misconfigured, now)
                if problem is not None:
                    new.append(problem)
                    c = problem.cause
                    log.error(
                        "configuration problem: %s calls fail with errcode %s (%s); fix %s: %s",
                        problem.scope,
                        c.errcode,
                        c.errmsg,
                        c.setting,
                        c.hint_en,
                        extra={"errcode": c.errcode, "setting": c.setting},
                    )
        self.observer.config_problems(len(self.problems.active))
        return new

    async def _picture(self, c: Claimed, say: Callable[[dict[str, str]], Awaitable[object]]) -> bytes | None:
        """The file or picture of row `c`, drawn now if it says what to draw (its lease renewed
        meanwhile); None when it cannot be drawn here, after `say` has sent the reason in its place (a
        text body, e.g. no CJK font and the package to install)."""
        try:
            return await image_bytes(c.payload, self.drawer, functools.partial(self._keep_lease, c.id))
        except pictures.PictureError as problem:
            await say({"content": str(problem)})
            return None

    async def _keep_lease(self, outbox_id: int) -> None:
        """Renew a row's lease every third of it until cancelled (while its picture is drawn)."""
        seconds = self.settings.lease_seconds
        while True:
            await asyncio.sleep(seconds / 3)
            renewal = {"oid": outbox_id, "lease": utcnow() + timedelta(seconds=seconds)}
            await self.db.run(functools.partial(_renew, renewal=renewal))

    # -- inside transactions ----------------------------------------------------------------------

    def _claim(self, session: Session, limit: int) -> list[Claimed]:
        now = self.clock()
        conn = session.connection()
        conn.execute(_RELEASE, {"now": now})
        skip = [] if self.aibot is not None and self.aibot.ready else ["aibot"]
        soonest = _SOONEST.rows(session, {})[0][0]
        due = soonest is not None and soonest <= now
        heads = _DUE_HEADS.rows(session, {"now": now, "limit": limit, "skip": skip}) if due else []
        stale = [r.id for r in _STALE.rows(session, {"now": now, "limit": limit, "skip": skip})]
        if not heads and not stale:
            return []
        # One member's messages leave in order: due messages stay behind an older one that is still
        # pending. Behind one backing off, the queue is lined up behind it (so that it is not looked
        # at again meanwhile); behind one being sent, they are taken in a later round.
        wait: dict[tuple[str, str], datetime] = {}
        free = []
        for h in heads:
            if h.sending_ahead is not None:
                continue
            if h.backing_off_until is not None:
                wait[(h.channel, h.target)] = h.backing_off_until
            else:
                free.append(h.id)
        ids = free + list(stale)
        rows = _ROWS.rows(session, {"ids": ids}) if ids else []
        wait |= self._rate_limited(session, rows, now)
        # The oldest due message of each target; 0 for a target known only by a stale row (rare).
        head = {(h.channel, h.target): h.id for h in heads}
        for (channel, target), until in wait.items():  # the queue of that target waits
            self._line_up(session, channel, target, head.get((channel, target), 0), until, now)
        wanted = [r for r in rows if (r.channel, r.target) not in wait]
        if not wanted:
            return []
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        taken = set(
            conn.execute(_TAKE, {"ids": [r.id for r in wanted], "now": now, "lease": lease}).scalars()
        )
        return [
            Claimed(r.id, r.channel, r.target, r.msgtype, json.loads(r.payload), r.attempts + 1)
            for r in wanted
            if r.id in taken
        ]

    def _line_up(
        self, session: Session, channel: str, target: str, head: int, until: datetime, now: datetime
    ) -> None:
        """Move the due messages of a target whose queue waits behind the wait, one `pace` apart in
        order: the older ones (a slot freed, but not for them all) from `until`, the ones that came
        after the queue's newest waiting message behind it. Each is moved about once: when the slot
        frees, one becomes due, not the whole queue. Moved all to `until`, a secretary's 3,000 waiting
        cards were 3,000 rows written each time a slot freed (every two seconds; 60–140 ms on
        PostgreSQL, with the claim's lock held). `head`: the oldest due message (0: not known)."""
        params = {"c": channel, "t": target, "head": head, "now": now}
        due = [r[0] for r in _DUE_OF.rows(session, params)]
        if not due:
            return
        step = pace(self.config, channel)
        last = _LAST_WAITING.rows(session, params)
        older, newer, after = due, [], until
        if last:
            newest, latest = last[0]
            older = [i for i in due if i < newest]
            newer, after = due[len(older) :], max(until, latest + step)
        moves = [{"oid": i, "at": until + k * step} for k, i in enumerate(older)]
        moves += [{"oid": i, "at": after + k * step} for k, i in enumerate(newer)]
        session.connection().execute(_LINE_UP, moves)

    def _rate_limited(
        self, session: Session, rows: list[Any], now: datetime
    ) -> dict[tuple[str, str], datetime]:
        """Targets at one of their limits, with the time a slot frees up. WeCom silently drops app
        messages past 30 a minute or 1,000 an hour to one member, and a group robot's past 20 a
        minute, so the worker holds them back rather than lose them."""
        s = self.settings
        limits = (
            ("app", s.per_member_per_minute, timedelta(minutes=1)),
            ("app", s.per_member_per_hour, timedelta(hours=1)),
            ("webhook", s.per_webhook_per_minute, timedelta(minutes=1)),
            ("aibot", self.config.aibot.per_chat_per_minute, timedelta(minutes=1)),
        )
        held: dict[tuple[str, str], datetime] = {}
        for channel, limit, window in limits:
            targets = {r.target for r in rows if r.channel == channel}
            if not targets:
                continue
            params = {"channel": channel, "targets": list(targets), "since": now - window}
            counts = _SENT_RECENTLY.rows(session, params)
            for target, count, oldest in counts:
                if count < limit:
                    continue
                until = oldest + window + timedelta(seconds=1)
                held[(channel, target)] = max(until, held.get((channel, target), until))
                if window > timedelta(minutes=1):  # rare enough to say: a member waits up to an hour
                    log.warning(
                        "outbox: %s reached %d %s messages in an hour; the rest wait until %s",
                        target,
                        count,
                        channel,
                        until.isoformat(timespec="seconds"),
                        extra={"userid": target},
                    )
        return held

    def _record(self, session: Session, outcomes: list[Attempt], new: Sequence[ConfigProblem] = ()) -> None:
        now = utcnow()

        for problem in new:
            self._report(session, problem)
        for out in outcomes:
            if out.media_file is not None and out.media is not None:
                data, filename, content_type = out.media
                session.execute(
                    update(MediaFile)
                    .where(MediaFile.id == out.media_file)
                    .values(
                        data=data,
                        size=len(data),
                        filename=filename,
                        content_type=content_type,
                        status="fetched",
                        fetched_at=now,
                    )
                )
            elif out.media_file is not None and out.status == "dead":
                session.execute(
                    update(MediaFile).where(MediaFile.id == out.media_file).values(status="failed")
                )
        sent = [{"oid": o.id, "at": now, "res": o.result} for o in outcomes if o.status == "sent"]
        retry = [
            {"oid": o.id, "err": o.error, "due": now + timedelta(seconds=o.delay)}
            for o in outcomes
            if o.status == "retry"
        ]
        dead = [{"oid": o.id, "err": o.error} for o in outcomes if o.status not in ("sent", "retry")]
        conn = session.connection()
        for stmt, params in ((_MARK_SENT, sent), (_MARK_RETRY, retry), (_MARK_DEAD, dead)):
            if params:
                conn.execute(stmt, params)

    def _report(self, session: Session, problem: ConfigProblem) -> None:
        """Tell the admins, by a way the problem does not block: when the app's own API fails, its
        messages cannot carry the news, but a group robot can (its key is its credential, no access
        token); when a group robot fails, the app can. The log line is written in any case."""
        from bot.members import admin_userids

        text = problem_notice(problem)
        if problem.scope == "app":
            if self.settings.alert_group:
                enqueue(session, webhook_rows(self.settings.alert_group, "text", {"content": text}))
            return
        rows = [
            _row("app", userid, "text", {"content": text}, ref=f"config:{problem.scope}")
            for userid in admin_userids(session, self.config.admins)
        ]
        enqueue(session, rows)

    # -- on the wire --------------------------------------------------------------------------------

    async def _deliver(self, c: Claimed) -> Attempt:
        outcome = replace(await self._attempt(c), scope=scope_of(c.channel, c.target))
        if c.channel == "media_fetch":  # _record marks the member's file fetched or failed
            outcome = replace(outcome, media_file=c.payload["media_file"])
        return outcome

    async def _attempt(self, c: Claimed) -> Attempt:
        from bot.wecom.errors import ResponseCodeInvalid, WeComError

        try:
            if c.channel == "media_fetch" and "url" in c.payload:  # the AI bot's: download and decrypt
                if self.aibot is None:
                    raise LookupError("an AI-bot file to fetch, but the AI bot is not configured")
                data, filename, content_type = await self.aibot.download(
                    c.payload["url"], c.payload["aeskey"]
                )
                self.observer.sent(c.channel, 0, True)
                return Attempt(c.id, "sent", media=(data, filename or "", content_type or ""))
            if c.channel == "media_fetch":
                data, name, ctype = await self.client.download_media(c.payload["media_id"])
                self.observer.sent(c.channel, 0, True)
                return Attempt(c.id, "sent", media=(data, name or "", ctype or ""))
            result = await self._send(c)
        except ResponseCodeInvalid:
            # The card was already updated (the passive reply to the click may use the code up).
            self.observer.sent(c.channel, 60140, True)
            return Attempt(c.id, "sent", result='{"note": "response_code already used"}')
        except WeComError as exc:
            errcode = getattr(exc, "errcode", None)
            self.observer.sent(c.channel, errcode, False)
            error = f"{type(exc).__name__}: {exc}"
            cause = (
                None
                if c.channel == "aibot"
                else misconfiguration(exc, group=c.target if c.channel == "webhook" else None)
            )
            if cause is not None:  # no retry can help; _account reports it once
                self.observer.died()
                log.warning(
                    "outbox #%d to %s is dead: configuration problem (%s)",
                    c.id,
                    c.target,
                    error,
                    extra={"outbox_id": c.id, "errcode": errcode},
                )
                return Attempt(c.id, "dead", error, misconfigured=cause)
            if exc.retryable and c.attempts < self.settings.max_attempts:
                self.observer.retried()
                delay = min(
                    self.settings.backoff_max_seconds,
                    self.settings.backoff_base_seconds * 2 ** (c.attempts - 1),
                )
                log.warning(
                    "outbox #%d to %s failed (%s), retry %d in %.1fs",
                    c.id,
                    c.target,
                    error,
                    c.attempts,
                    delay,
                )
                return Attempt(c.id, "retry", error, delay=delay * random.uniform(0.5, 1.5))
            self.observer.died()
            log.error(
                "outbox #%d to %s is dead after %d attempts: %s",
                c.id,
                c.target,
                c.attempts,
                error,
                extra={"outbox_id": c.id, "errcode": errcode},
            )
            return Attempt(c.id, "dead", error)
        except Exception as exc:  # noqa: BLE001 - a bug or bad payload must not stop the worker
            self.observer.died()
            log.exception("outbox #%d to %s could not be sent", c.id, c.target)
            return Attempt(c.id, "dead", f"{type(exc).__name__}: {exc}")
        self.observer.sent(c.channel, 0, True)
        return Attempt(c.id, "sent", result=json.dumps(result, ensure_ascii=False) if result else "")

    async def _send(self, c: Claimed) -> dict[str, Any] | None:
        if c.channel == "app":
            if c.msgtype in ("file", "image"):
                data = await self._picture(c, lambda text: self.client.send_message(c.target, "text", text))
                if data is None:
                    return None
                media_id = await self.client.upload_media(c.msgtype, c.payload["filename"], data)
                await self.client.send_message(c.target, c.msgtype, {"media_id": media_id})
                return None
            answer = await self.client.send_message(c.target, c.msgtype, c.payload)
            code = answer.get("response_code")
            return {"response_code": code} if code else None
        if c.channel == "webhook":
            group = self.config.groups.get(c.target)
            if group is None:
                raise LookupError(f"group {c.target!r} is not configured")
            if c.msgtype == "image":  # group robots take the picture itself, base64 with its md5
                data = await self._picture(
                    c, lambda text: self.client.webhook_send(group.webhook, "text", text)
                )
                if data is not None:
                    await self.client.webhook_image(group.webhook, data)
            else:
                await self.client.webhook_send(group.webhook, c.msgtype, c.payload)
            return None
        if c.channel == "aibot":
            if self.aibot is None:
                raise LookupError("an AI-bot message, but the AI bot is not configured")
            return await self.aibot.push(c.target, c.msgtype, c.payload)
        if c.channel == "card_update":
            await self.client.update_template_card(
                userids=[c.target],
                response_code=c.payload["response_code"],
                button_replace_name=c.payload["label"],
            )
            return None
        raise LookupError(f"unknown outbox channel {c.channel!r}")


async def stats(db: Database) -> dict[str, Any]:
    """Depth, age of the oldest queued message (seconds), dead count and how many wait through quiet
    hours (`held`, not part of the depth), for health and metrics."""

    def read(session: Session) -> dict[str, Any]:
        o = OutboxMessage
        depth, oldest = session.execute(
            select(func.count(), func.min(o.created_at)).where(o.status.in_(PENDING))
        ).one()
        dead = session.execute(select(func.count()).where(o.status == "dead")).scalar_one()
        held = session.execute(select(func.count()).where(o.status == "held")).scalar_one()
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return {"depth": depth, "oldest_age_seconds": round(age, 1), "dead": dead, "held": held}

    return await db.run(read)
