"""The simulator page at `/sim/`: WeCom as a member sees it, in a browser, for local mode.

One aiohttp sub-application serves the fake WeCom API (`/sim/cgi-bin/…`, which the bot's client
calls), the chat page and its small JSON API. What a member types goes to the bot as an encrypted
callback over loopback, exactly as WeCom sends it; what the bot sends back through the API is
recorded by the fake and streamed to the page (Server-Sent Events), history first, so a reload
keeps every conversation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import mimetypes
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from bot import members
from bot.router import ROLE_NAMES
from bot.simulator import address_book
from bot.simulator.fake_api import CardUpdate, FakeWeCom, SentMessage, WebhookMessage
from bot.simulator.wecom_side import Delivery, WeComSide

if TYPE_CHECKING:
    from bot.app import Application

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
HISTORY = 5000  # events kept for replay; a demo session stays far below
UPLOAD_LIMIT = 20 * 1024 * 1024  # bodies under /sim/: the bot's file uploads and the page's images
KEEPALIVE_SECONDS = 15.0
TEXT_LIMIT = 2048  # bytes WeCom accepts in one message a member types

_dumps = partial(json.dumps, ensure_ascii=False)


class EventLog:
    """What the page shows, in order: every event numbered, kept for replay, pushed to open streams."""

    def __init__(self, limit: int = HISTORY) -> None:
        self.instance = secrets.token_hex(4)  # a restarted bot starts a new log; pages then start over
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self._streams: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._seq = 0

    def add(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        event = {"id": self._seq, "kind": kind, "time": time.time(), **fields}
        self._events.append(event)
        for queue in self._streams:
            queue.put_nowait(event)
        return event

    @property
    def last_id(self) -> int:
        return self._seq

    def since(self, last_event_id: str) -> list[dict[str, Any]]:
        """Events after an SSE `Last-Event-ID` of this log (`instance:seq`); all of them otherwise."""
        instance, _, seq = last_event_id.partition(":")
        after = int(seq) if instance == self.instance and seq.isdigit() else 0
        return [e for e in self._events if e["id"] > after]

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._streams.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._streams.discard(queue)

    def close(self) -> None:
        """End every open stream (at shutdown, so the server need not wait for them)."""
        for queue in self._streams:
            queue.put_nowait(None)

    def sse(self, event: dict[str, Any]) -> bytes:
        return f"id: {self.instance}:{event['id']}\ndata: {_dumps(event)}\n\n".encode()


class Simulator:
    """The local WeCom: a fake API the bot calls, and a page where people play the members.

    Build it after `app.initialize()` and `mount()` it before `app.start()`.
    """

    def __init__(self, app: Application) -> None:
        w = app.config.wecom
        self.app = app
        self.fake = FakeWeCom(corp_id=w.corp_id, secret=w.secret, agent_id=w.agent_id or 0)
        address_book.fill(self.fake)  # for `members sync` against the simulator
        self.side = WeComSide(
            token=w.token, encoding_aes_key=w.encoding_aes_key, corp_id=w.corp_id, agent_id=w.agent_id or 0
        )
        self.log = EventLog()
        self.groups = {
            _webhook_key(g.webhook) or name: (name, g.description) for name, g in app.config.groups.items()
        }
        self._http: aiohttp.ClientSession | None = None
        self.fake.subscribe(self._on_api)

    @property
    def callback_url(self) -> str:
        return self.app.url + self.app.config.server.callback_path

    @property
    def page_url(self) -> str:
        """Where a person opens the page (loopback even when the bot listens on every interface)."""
        return _loopback(self.app.url) + "/sim/"

    def mount(self) -> None:
        """Add the simulator to the bot's web server: `/sim/…`, with `/` and `/sim` leading to the page."""
        self.app.subapps.append(("/sim", self.web_app()))
        self.app.extra_routes.extend([web.get("/", self._to_page), web.get("/sim", self._to_page)])

    def web_app(self) -> web.Application:
        """The fake API's routes and the page's, in one sub-application (sub-apps cannot share a prefix)."""
        sub = self.fake.app()
        sub.middlewares.append(_larger_bodies)
        sub.add_routes(
            [
                web.get("/", self._index),
                web.get("/api/cast", self._cast),
                web.post("/api/say", self._say),
                web.post("/api/image", self._image),
                web.post("/api/click", self._click),
                web.post("/api/jobs/{name}", self._run_job),
                web.get("/api/events", self._events),
                web.get("/api/media/{media_id}", self._media),
            ]
        )
        sub.router.add_static("/static/", STATIC)
        sub.on_shutdown.append(self._on_shutdown)
        return sub

    # -- what the bot sent, as the fake API recorded it ------------------------------------------------

    def _on_api(self, kind: str, item: Any) -> None:
        if kind == "app" and isinstance(item, SentMessage):
            fields: dict[str, Any] = {
                "users": item.touser.split("|"),
                "msgtype": item.msgtype,
                "body": item.body,
                "response_code": item.response_code,
            }
            if item.msgtype in ("file", "image", "voice", "video"):
                fields["file"] = self._file(str(item.body.get("media_id", "")))
            self.log.add("app", **fields)
        elif kind == "card_update" and isinstance(item, CardUpdate):
            self.log.add(
                "card_update",
                users=item.userids,
                response_code=item.response_code,
                label=item.button_replace_name,
                card=item.template_card,
            )
        elif kind == "webhook" and isinstance(item, WebhookMessage):
            name, description = self.groups.get(item.key, (item.key, ""))
            body = item.body
            if item.msgtype in ("file", "voice"):
                body = {**body, "file": self._file(str(body.get("media_id", "")))}
            self.log.add("webhook", group=name, description=description, msgtype=item.msgtype, body=body)

    def _file(self, media_id: str) -> dict[str, Any]:
        try:
            data, filename = self.fake.media(media_id)
        except KeyError:
            return {"name": media_id, "size": 0, "url": ""}
        return {"name": filename or media_id, "size": len(data), "url": f"api/media/{quote(media_id)}"}

    # -- the page and its API ------------------------------------------------------------------------------

    async def _to_page(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/sim/")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        # The asset links carry their modification time, so a browser never runs yesterday's script.
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        for name in ("sim.css", "sim.js"):
            html = html.replace(f"static/{name}", f"static/{name}?v={int((STATIC / name).stat().st_mtime)}")
        board = self.app.config.board
        if board.token:  # local mode makes one up (`local_config`): the newcomer sees the board change
            href = f"{board.path}?token={quote(board.token)}"
            link = f'<a class="board-link" href="{href}" target="_blank">党建看板 ↗</a>'
            html = html.replace("<!--board-->", link)
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def _cast(self, request: web.Request) -> web.Response:
        people = await self.app.db.run(members.list_members)
        cast = [
            {
                "userid": p.userid,
                "name": p.name,
                "branch": p.branch,
                "team": p.team,
                "party_group": p.party_group,
                "module": p.module,
                "political_status": p.political_status,
                "roles": [
                    {"code": r, "name": ROLE_NAMES[r]} for r in ROLE_NAMES if r in p.roles and r != "member"
                ],
            }
            for p in people
        ]
        groups = [{"name": name, "description": description} for name, description in self.groups.values()]
        jobs = [
            {"name": s.name, "description": s.description}
            for s in self.app.config.schedules
            if s.job in self.app.scheduler.jobs
        ]
        return _json(
            {
                "members": cast,
                "groups": groups,
                "jobs": jobs,
                "instance": self.log.instance,
                # The page shows every time in the bot's zone, as the cards and replies do, whatever
                # zone the browser is in.
                "timezone": self.app.config.timezone,
            }
        )

    async def _say(self, request: web.Request) -> web.Response:
        body = await _body(request)
        userid, text = _field(body, "userid"), body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("text is required")
        if len(text.encode()) > TEXT_LIMIT:
            raise _bad(f"text is longer than {TEXT_LIMIT} bytes")
        self.log.add("user", userid=userid, msgtype="text", text=text)
        return await self._deliver(userid, self.side.text(userid, text))

    async def _image(self, request: web.Request) -> web.Response:
        body = await _body(request)
        userid, filename = _field(body, "userid"), str(body.get("filename") or "image.png")
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except binascii.Error:
            raise _bad("data must be base64") from None
        if not data:
            raise _bad("data is empty")
        content_type = mimetypes.guess_type(filename)[0] or "image/png"
        media_id = self.fake.store_media(data, filename, content_type)
        self.log.add("user", userid=userid, msgtype="image", file=self._file(media_id))
        return await self._deliver(userid, self.side.image(userid, media_id))

    async def _click(self, request: web.Request) -> web.Response:
        body = await _body(request)
        userid, event_key = _field(body, "userid"), _field(body, "event_key")
        response_code = str(body.get("response_code") or "")
        self.log.add(
            "click", userid=userid, label=str(body.get("label") or event_key), response_code=response_code
        )
        plaintext = self.side.card_click(
            userid,
            event_key,
            task_id=str(body.get("task_id") or ""),
            card_type=str(body.get("card_type") or "button_interaction"),
            response_code=response_code,
        )
        return await self._deliver(userid, plaintext, response_code=response_code)

    async def _deliver(self, userid: str, plaintext: str, *, response_code: str = "") -> web.Response:
        """Post the callback to the bot as WeCom would and show its passive reply in the conversation."""
        try:
            d = await self.side.deliver(self._session(), self.callback_url, plaintext)
        except aiohttp.ClientError as exc:
            self.log.add("note", userid=userid, text=f"机器人没有响应：{exc}")
            return _json({"status": 0, "error": str(exc)}, status=502)
        if d.status != 200:
            self.log.add("note", userid=userid, text=f"回调被拒绝：HTTP {d.status} {d.body[:200]}")
        elif d.reply is not None:
            self.log.add(
                "reply",
                userid=userid,
                text=d.reply.text,
                replace_button=d.reply.replace_button,
                response_code=response_code,
            )
        return _json(_delivery(d))

    async def _run_job(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in {s.name for s in self.app.config.schedules if s.job in self.app.scheduler.jobs}:
            return _json({"error": f"no job {name!r} (see GET api/cast for the jobs)"}, status=404)
        result = await self.app.scheduler.run_now(name)
        self.log.add("job", name=name, status=result.status, detail=result.detail)
        return _json({"name": name, "status": result.status, "detail": result.detail})

    async def _media(self, request: web.Request) -> web.StreamResponse:
        try:
            data, filename = self.fake.media(request.match_info["media_id"])
        except KeyError:
            raise web.HTTPNotFound(text="no such media") from None
        name = filename or "file"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        disposition = "inline" if content_type.startswith("image/") else "attachment"
        return web.Response(
            body=data,
            headers={
                "Content-Type": content_type,
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            },
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the history after `Last-Event-ID` (all of it on a fresh page), then live."""
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        queue = self.log.subscribe()  # before taking the history: nothing falls between the two
        try:
            # `replayed`: the events up to this one are history, not news (the page counts no unread
            # for them); the stream is subscribed already, so nothing newer can be missed.
            hello = {"id": 0, "kind": "hello", "instance": self.log.instance, "replayed": self.log.last_id}
            await resp.write(f"event: hello\ndata: {_dumps(hello)}\n\n".encode())
            for past in self.log.since(request.headers.get("Last-Event-ID", "")):
                await resp.write(self.log.sse(past))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                await resp.write(self.log.sse(event))
        except ConnectionResetError:
            pass  # the page was closed
        finally:
            self.log.unsubscribe(queue)
        return resp

    # -- plumbing --------------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.log.close()
        if self._http is not None:
            await self._http.close()
            self._http = None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _larger_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The bot's root app caps bodies for the callback; files and images under /sim/ may be bigger.
    return await handler(request.clone(client_max_size=UPLOAD_LIMIT))


def _webhook_key(url: str) -> str:
    return URL(url).query.get("key", "")


def _loopback(url: str) -> str:
    u = URL(url)
    return str(u.with_host("127.0.0.1")) if u.host in ("0.0.0.0", "::", "") else url


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=_dumps({"error": reason}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name} is required")
    return value.strip()


def _delivery(d: Delivery) -> dict[str, Any]:
    reply = {"text": d.reply.text, "replace_button": d.reply.replace_button} if d.reply else None
    return {"status": d.status, "reply": reply}
