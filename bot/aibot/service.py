"""The AI bot's long connection, held by one process at a time.

`Lease` is a row in `ws_leases`, renewed every `aibot.lease_renew_seconds` by its holder and taken
over by another process once it has not been renewed for `aibot.lease_seconds`. Only the holder
connects. `AibotService` dials `aibot.ws_url`, subscribes with the bot id and secret, pings, and
reconnects with backoff; callbacks go through the same dispatcher as the app's callback and are
answered with `aibot_respond_msg` (or `aibot_respond_update_msg` after a card click). Pushes are the
outbox's "aibot" rows, which only the holder's outbox worker claims (`ready`); an ack that does not
come within `aibot.ack_timeout_seconds` is a retryable failure, so the row is tried again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import mimetypes
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.aibot import protocol as p
from bot.outbox import enqueue, reply_rows
from bot.replies import Text
from bot.wecom.errors import WeComError
from bot.wecom.messages import Incoming, PassiveReply
from storage.models import OutboxMessage, WsLease

if TYPE_CHECKING:
    from bot.config import Config
    from storage.database import Database

log = logging.getLogger(__name__)

Dispatch = Callable[[Incoming], Awaitable[PassiveReply | None]]
WELCOME = "你好，我是先锋。发送「帮助」查看你可以用的命令；在群里 @先锋 加命令，例如「@先锋 排行」。"
RETRYABLE = frozenset({p.NOT_SUBSCRIBED, -1, 45009, 45033})


class AibotError(WeComError):
    """The long connection refused a frame (errcode != 0 in its ack)."""

    @property
    def retryable(self) -> bool:
        return self.errcode in RETRYABLE


class NotConnected(AibotError):
    """No subscribed connection right now; the outbox tries again later."""

    def __init__(self, errmsg: str = "the AI bot's connection is not up") -> None:
        super().__init__(-1, errmsg)


class AckLost(AibotError):
    """The frame was sent but no ack came in time: maybe delivered, maybe not, so it is retried."""

    def __init__(self, rid: str, seconds: float) -> None:
        super().__init__(-1, f"no ack for {rid} within {seconds:g} s")


_LEASE = WsLease.__table__  # type: ignore[attr-defined]
_L = _LEASE.c
_O = OutboxMessage.__table__.c  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Lease:
    """One named lease row: whoever holds an unexpired row may act; taking it over is an update
    that only succeeds once it has expired, so of two processes exactly one gets it."""

    def __init__(self, db: Database, name: str, holder: str, seconds: float):
        self.db = db
        self.name = name
        self.holder = holder
        self.seconds = seconds

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another holder's is unexpired."""
        now = utcnow()
        values = {"holder": self.holder, "expires_at": now + timedelta(seconds=self.seconds)}
        t = _L

        def renew(s: Session) -> int:
            stmt = (
                update(_LEASE)
                .where(t.name == self.name, or_(t.holder == self.holder, t.expires_at < now))
                .values(**values)
            )
            return int(s.connection().execute(stmt).rowcount or 0)

        if await self.db.run(renew):
            return True
        try:
            await self.db.run(
                lambda s: s.connection().execute(insert(_LEASE).values(name=self.name, **values))
            )
        except IntegrityError:  # someone else's row exists and has not expired
            return False
        return True

    async def release(self) -> None:
        """Let the next process take over at once (a clean stop); a killed one just lets it expire."""
        t = _L
        gone = utcnow() - timedelta(seconds=1)
        await self.db.run(
            lambda s: s.connection().execute(
                update(_LEASE).where(t.name == self.name, t.holder == self.holder).values(expires_at=gone)
            )
        )


class AibotService:
    """The AI bot channel of one process: lease, connection, callbacks in, frames out."""

    def __init__(
        self,
        db: Database,
        config: Config,
        dispatch: Dispatch,
        *,
        wake: Callable[[], None] = lambda: None,
        holder: str | None = None,
    ):
        self.db = db
        self.config = config
        self.settings = config.aibot
        self.dispatch = dispatch
        self.wake = wake
        self.holder_id = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease = Lease(db, "aibot", self.holder_id, self.settings.lease_seconds)
        self.http: aiohttp.ClientSession | None = None
        self.holding = False
        self.connections = 0  # connections opened (for health and tests)
        self.reconnect_delays: list[float] = []  # every backoff waited, in order
        self.dead_pings = 0  # connections given up because pings went unanswered
        self.kicked = 0  # disconnected_event received: another connection took over
        self.kicked_at: datetime | None = None
        self.last_error = ""
        self.subscribed_at: datetime | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._subscribed = False
        self._missed = 0
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._answers: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        ws = self._ws
        return self.holding and self._subscribed and ws is not None and not ws.closed

    async def start(self) -> None:
        self._stop.clear()
        # Its own session: the app's has a total timeout per request, which must not end a connection.
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        self._task = asyncio.create_task(self._run(), name="aibot")

    async def stop(self) -> None:
        self._stop.set()
        if self._answers:  # callbacks being answered: let them reply over the connection
            await asyncio.wait(set(self._answers), timeout=10)
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.holding:
            self.holding = False
            with contextlib.suppress(Exception):
                await self.lease.release()
        if self.http is not None:
            await self.http.close()
            self.http = None

    def status(self) -> dict[str, Any]:
        """For /healthz: who holds the connection, whether it is up, and whether it was taken over."""
        return {
            "holder": self.holding,
            "holder_id": self.holder_id,
            "connected": self.ready,
            "connections": self.connections,
            "subscribed_at": self.subscribed_at.isoformat(timespec="seconds") if self.subscribed_at else None,
            "last_error": self.last_error,
            "taken_over": self.kicked,
            "taken_over_at": self.kicked_at.isoformat(timespec="seconds") if self.kicked_at else None,
        }

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _run(self) -> None:
        s = self.settings
        while not self._stop.is_set():
            try:
                got = await self.lease.acquire()
            except Exception as exc:  # noqa: BLE001 - the database may be away for a while
                log.warning("aibot: could not take the lease: %s", exc)
                got = False
            if not got:
                self.holding = False
                await self._pause(s.lease_renew_seconds)
                continue
            if not self.holding:
                log.info("aibot: this process (%s) holds the connection lease", self.holder_id)
            self.holding = True
            keeper = asyncio.create_task(self._keep_lease(), name="aibot-lease")
            try:
                await self._connect_loop()
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _keep_lease(self) -> None:
        s = self.settings
        renewed = asyncio.get_running_loop().time()
        while self.holding and not self._stop.is_set():
            await self._pause(s.lease_renew_seconds)
            if self._stop.is_set():
                return
            try:
                kept = await self.lease.acquire()
            except Exception as exc:  # noqa: BLE001
                log.warning("aibot: could not renew the lease: %s", exc)
                kept = asyncio.get_running_loop().time() - renewed < s.lease_seconds
            else:
                renewed = asyncio.get_running_loop().time()
            if not kept:
                log.warning("aibot: lost the connection lease; closing the connection")
                self.holding = False
                if self._ws is not None:
                    await self._ws.close()
                return

    async def _connect_loop(self) -> None:
        s = self.settings
        attempt = 0
        while self.holding and not self._stop.is_set():
            outcome = await self._session()
            if self._stop.is_set() or not self.holding:
                return
            if outcome == "taken_over":
                log.warning(
                    "aibot: another connection for this bot took over; not reconnecting for %g s",
                    s.kicked_pause_seconds,
                )
                await self._pause(s.kicked_pause_seconds)
                attempt = 0
                continue
            if outcome == "subscribed":
                attempt = 0
            attempt += 1
            delay = min(s.reconnect_base_seconds * 2 ** (attempt - 1), s.reconnect_max_seconds)
            self.reconnect_delays.append(delay)
            log.info("aibot: reconnecting in %g s (attempt %d)", delay, attempt)
            await self._pause(delay)

    # -- one connection ---------------------------------------------------------------------------

    async def _session(self) -> str:
        """Connect, subscribe, serve until the connection ends; returns how it ended: "subscribed"
        (it was up, then dropped), "refused", "dropped" (never up) or "taken_over"."""
        assert self.http is not None
        s = self.settings
        self.connections += 1
        subscribed = False
        pinger: asyncio.Task[None] | None = None
        try:
            async with self.http.ws_connect(
                s.ws_url, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=s.ack_timeout_seconds)
            ) as ws:
                self._ws = ws
                sub = p.req_id(p.SUBSCRIBE)
                await ws.send_json(p.frame(p.SUBSCRIBE, sub, {"bot_id": s.bot_id, "secret": s.secret}))
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        log.warning("aibot: a frame that is not JSON was ignored")
                        continue
                    if not isinstance(data, dict):
                        continue
                    cmd = data.get("cmd") or ""
                    rid = str((data.get("headers") or {}).get("req_id") or "")
                    if cmd in (p.MSG_CALLBACK, p.EVENT_CALLBACK):
                        event = ((data.get("body") or {}).get("event") or {}).get("eventtype")
                        if event == "disconnected_event":
                            self.kicked += 1
                            self.kicked_at = utcnow()
                            self.last_error = "another connection for this bot took over (disconnected_event)"
                            log.warning("aibot: disconnected_event: another connection took over")
                            await ws.close()
                            return "taken_over"
                        task = asyncio.create_task(self._answer(data))
                        self._answers.add(task)
                        task.add_done_callback(self._answers.discard)
                    elif not cmd and rid.startswith(p.SUBSCRIBE):
                        if data.get("errcode", 0) != 0:
                            self.last_error = (
                                f"subscription refused: {data.get('errcode')} {data.get('errmsg', '')}"
                            )
                            log.error("aibot: %s (check aibot.bot_id and aibot.secret)", self.last_error)
                            await ws.close()
                            return "refused"
                        subscribed = self._subscribed = True
                        self.subscribed_at = utcnow()
                        self.last_error = ""
                        log.info("aibot: subscribed at %s", s.ws_url)
                        pinger = asyncio.create_task(self._ping(ws))
                        self.wake()  # pushes that waited for the connection
                    elif not cmd and rid.startswith(p.PING):
                        self._missed = 0
                    elif not cmd and rid in self._pending:
                        future = self._pending[rid]
                        if not future.done():
                            future.set_result(data)
                    else:
                        log.info("aibot: unexpected frame ignored: %s", str(data)[:200])
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("aibot: connection to %s failed: %s", s.ws_url, self.last_error)
        finally:
            self._subscribed = False
            self._ws = None
            if pinger is not None:
                pinger.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NotConnected("the connection closed before the ack"))
        return "subscribed" if subscribed else "dropped"

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A ping every `ping_seconds`; two in a row unanswered mean the connection is dead."""
        self._missed = 0
        while not ws.closed:
            await asyncio.sleep(self.settings.ping_seconds)
            if self._missed >= 2:
                self.dead_pings += 1
                self.last_error = f"{self._missed} pings unanswered"
                log.warning("aibot: %d pings unanswered, the connection is dead", self._missed)
                await ws.close()
                return
            self._missed += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(p.frame(p.PING, p.req_id(p.PING)))

    async def request(self, cmd: str, body: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        """Send a frame and wait for its ack (same req_id); raise `AibotError` unless errcode is 0."""
        ws = self._ws
        if ws is None or ws.closed or not self._subscribed:
            raise NotConnected()
        rid = rid or p.req_id(cmd)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await ws.send_json(p.frame(cmd, rid, body))
            ack = await asyncio.wait_for(future, self.settings.ack_timeout_seconds)
        except TimeoutError:
            raise AckLost(rid, self.settings.ack_timeout_seconds) from None
        except (ConnectionError, RuntimeError) as exc:
            raise NotConnected(str(exc)) from None
        finally:
            self._pending.pop(rid, None)
        errcode = int(ack.get("errcode") or 0)
        if errcode:
            if errcode == p.NOT_SUBSCRIBED and self._ws is ws:
                log.warning("aibot: WeCom says this connection is not subscribed; reconnecting")
                await ws.close()
            raise AibotError(errcode, str(ack.get("errmsg") or ""))
        return ack

    # -- callbacks in -----------------------------------------------------------------------------

    async def _answer(self, data: dict[str, Any]) -> None:
        rid = str((data.get("headers") or {}).get("req_id") or "")
        incoming = p.parse_callback(data)
        if incoming is None:
            return
        try:
            if incoming.event == "enter_chat":
                await self.request(p.RESPOND_WELCOME, {"msgtype": "text", "text": {"content": WELCOME}}, rid)
                return
            passive = await self.dispatch(incoming)
        except Exception:  # noqa: BLE001 - one bad callback must not end the connection
            log.exception("aibot: callback %s could not be handled", incoming.key)
            return
        if passive is None:
            return
        try:
            if passive.replace_button:
                card = await self._clicked_card(incoming)
                if card is not None:
                    body = {
                        "response_type": "update_template_card",
                        "userids": [incoming.sender],
                        "template_card": p.updated_card(card, passive.replace_button),
                    }
                    await self.request(p.RESPOND_UPDATE, body, rid)
            elif passive.text:
                await self.request(p.RESPOND, p.stream_reply(passive.text, p.req_id("stream")), rid)
        except WeComError as exc:
            # Handled and recorded already; the answer must not be lost with the connection.
            log.warning("aibot: reply to %s failed (%s); it goes through the outbox", incoming.key, exc)
            if passive.text:
                chat = incoming.chat_id if incoming.chat_type == "group" else incoming.sender
                await self.db.run(lambda s: enqueue(s, reply_rows(chat, Text(passive.text), channel="aibot")))
                self.wake()

    async def _clicked_card(self, incoming: Incoming) -> dict[str, Any] | None:
        """The card that was clicked, as it was sent (found by its task_id)."""
        if not incoming.task_id or not re.fullmatch(r"[A-Za-z0-9_@-]+", incoming.task_id):
            return None
        o = _O
        pattern = f'%"task_id": "{incoming.task_id}"%'
        payload = await self.db.run(
            lambda s: s.execute(
                select(o.payload)
                .where(o.channel == "aibot", o.msgtype == "template_card", o.payload.like(pattern))
                .order_by(o.id.desc())
                .limit(1)
            ).scalar()
        )
        return json.loads(payload) if payload else None

    # -- outbox rows out --------------------------------------------------------------------------

    async def push(self, chat: str, msgtype: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send one outbox row with `aibot_send_msg` (uploading a picture or file first)."""
        if msgtype in ("image", "file"):
            media_id = await self.upload(msgtype, payload["filename"], base64.b64decode(payload["data"]))
            body: dict[str, Any] = {"chatid": chat, "msgtype": msgtype, msgtype: {"media_id": media_id}}
        else:
            body = p.push_body(chat, msgtype, payload)
        await self.request(p.SEND, body)
        return None

    async def upload(self, kind: str, filename: str, data: bytes) -> str:
        """The chunked upload: init (size, chunk count, md5) → chunks of 512 KB → finish → media_id."""
        import hashlib

        chunks = max(1, math.ceil(len(data) / p.CHUNK_BYTES))
        if chunks > p.MAX_CHUNKS:
            raise ValueError(f"{filename}: {len(data)} bytes is more than {p.MAX_CHUNKS} chunks")
        init = await self.request(
            p.UPLOAD_INIT,
            {
                "type": kind,
                "filename": filename,
                "total_size": len(data),
                "total_chunks": chunks,
                "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - WeCom's checksum, not security
            },
        )
        upload_id = (init.get("body") or {}).get("upload_id")
        if not upload_id:
            raise AibotError(-1, "upload init answered without upload_id")
        for index in range(chunks):
            piece = data[index * p.CHUNK_BYTES : (index + 1) * p.CHUNK_BYTES]
            await self.request(
                p.UPLOAD_CHUNK,
                {
                    "upload_id": upload_id,
                    "chunk_index": index,
                    "base64_data": base64.b64encode(piece).decode(),
                },
            )
        finish = await self.request(p.UPLOAD_FINISH, {"upload_id": upload_id})
        media_id = (finish.get("body") or {}).get("media_id")
        if not media_id:
            raise AibotError(-1, "upload finish answered without media_id")
        return str(media_id)

    async def download(self, url: str, aes_key: str) -> tuple[bytes, str, str]:
        """Fetch a member's picture or file (its URL lives 5 minutes) and decrypt it with its key."""
        session = self.http
        if session is None:
            raise NotConnected("the AI bot is not started")
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status >= 500:
                raise AibotError(-1, f"download answered HTTP {resp.status}")
            if resp.status != 200:
                raise AibotError(resp.status, f"download answered HTTP {resp.status}")
            encrypted = await resp.read()
            disposition = resp.headers.get("Content-Disposition", "")
        data = p.decrypt_media(encrypted, aes_key) if aes_key else encrypted
        match = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition, re.I) or re.search(
            r'filename="?([^";]+)"?', disposition, re.I
        )
        from urllib.parse import unquote

        filename = unquote(match.group(1)) if match else ""
        content_type = (mimetypes.guess_type(filename)[0] if filename else None) or _sniff(data)
        return data, filename, content_type


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"%PDF"):
        return "application/pdf"
    return "application/octet-stream"
