"""WeCom's side of the AI bot's long connection, on loopback: for tests and local experiments.

It checks what a client must do (subscribe first with the right bot id and secret, ping, reuse a
callback's req_id to answer it, send frames shaped `{cmd, headers: {req_id}, body}`) and records any
breach in `problems`. It can deliver messages and events, drop the connection, answer 846609 (not
subscribed), delay or lose acks, and kick a connection with `disconnected_event`, as WeCom does when
another connection for the same bot subscribes. Images and files are served encrypted at /media/.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from bot.aibot import protocol as p


@dataclass
class Connection:
    number: int
    ws: web.WebSocketResponse
    subscribed: bool = False
    callbacks: dict[str, float] = field(default_factory=dict)  # req_id → when it was delivered
    pings: int = 0


@dataclass(frozen=True)
class Received:
    connection: int
    cmd: str
    req_id: str
    body: dict[str, Any]
    at: float


class FakeOpenWS:
    def __init__(self, bot_id: str = "aibot-test", secret: str = "aibot-secret"):
        self.bot_id = bot_id
        self.secret = secret
        self.connections: list[Connection] = []
        self.received: list[Received] = []
        self.problems: list[str] = []
        self.answer_pings = True
        self.ack_delay = 0.0
        self.lose: dict[str, int] = {}  # cmd → how many of its next acks never come
        self.not_subscribed = 0  # answer the next N frames (other than subscribe and ping) with 846609
        self.kicked = 0
        self.uploads: dict[str, dict[str, Any]] = {}
        self.media: dict[str, tuple[bytes, str]] = {}  # name → encrypted bytes, filename
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.base_url = ""
        self._changed = asyncio.Event()
        self.on_frame: Callable[[Received], None] | None = None  # e.g. print what the bot sent

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.add_routes([web.get("/", self._ws), web.get("/media/{name}", self._media)])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"ws://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        for c in self.connections:
            with contextlib.suppress(Exception):
                await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what tests look at -------------------------------------------------------------------------

    @property
    def live(self) -> Connection | None:
        """The subscribed connection still open, if any."""
        for c in reversed(self.connections):
            if c.subscribed and not c.ws.closed:
                return c
        return None

    def frames(self, cmd: str) -> list[Received]:
        return [r for r in self.received if r.cmd == cmd]

    def pushes(self, chat: str | None = None) -> list[dict[str, Any]]:
        """Bodies of `aibot_send_msg` frames that were acknowledged, to `chat` if given."""
        return [
            r.body
            for r in self.received
            if r.cmd == p.SEND and r.body.get("_acked") and (chat is None or r.body.get("chatid") == chat)
        ]

    def replies(self, cmd: str = p.RESPOND) -> list[Received]:
        return self.frames(cmd)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0, what: str = "it") -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"fake openws: {what} did not happen within {timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def wait_live(self, timeout: float = 5.0) -> Connection:
        await self.wait_for(lambda: self.live is not None, timeout, "a subscribed connection")
        assert self.live is not None
        return self.live

    # -- what WeCom does ----------------------------------------------------------------------------

    async def deliver(self, body: dict[str, Any], *, cmd: str = p.MSG_CALLBACK) -> str:
        """Push a callback to the live connection; returns its req_id."""
        conn = await self.wait_live()
        rid = secrets.token_hex(8)
        conn.callbacks[rid] = time.monotonic()
        await conn.ws.send_json(p.frame(cmd, rid, body))
        return rid

    def text(
        self, userid: str, content: str, *, msgid: str | None = None, chatid: str = "", group: bool = False
    ) -> dict[str, Any]:
        body = self._base(userid, msgid, chatid, group)
        return body | {"msgtype": "text", "text": {"content": content}}

    def picture(
        self,
        userid: str,
        data: bytes,
        *,
        kind: str = "image",
        filename: str = "photo.png",
        group: bool = False,
    ) -> dict[str, Any]:
        """An image or file message: its bytes are served encrypted under a fresh URL and key."""
        aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        name = secrets.token_hex(6)
        self.media[name] = (p.encrypt_media(data, aes_key), filename)
        body = self._base(userid, None, "", group)
        return body | {"msgtype": kind, kind: {"url": f"{self.base_url}/media/{name}", "aeskey": aes_key}}

    def click(self, userid: str, event_key: str, task_id: str) -> dict[str, Any]:
        body = self._base(userid, None, "", False)
        return body | {
            "msgtype": "event",
            "event": {"eventtype": "template_card_event", "event_key": event_key, "task_id": task_id},
        }

    def event(self, userid: str, eventtype: str) -> dict[str, Any]:
        return self._base(userid, None, "", False) | {"msgtype": "event", "event": {"eventtype": eventtype}}

    def _base(self, userid: str, msgid: str | None, chatid: str, group: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgid": msgid or secrets.token_hex(10),
            "aibotid": self.bot_id,
            "chattype": "group" if group else "single",
            "from": {"userid": userid},
            "create_time": int(time.time()),
        }
        if group:
            body["chatid"] = chatid or "wrgroupchat"
        return body

    async def drop(self) -> None:
        """Close the live connection without a word (a network fault)."""
        conn = self.live
        if conn is not None:
            await conn.ws.close()

    async def kick(self) -> None:
        """Tell the live connection another one took over, then close it."""
        conn = self.live
        if conn is not None:
            await self._kick(conn)

    async def _kick(self, conn: Connection) -> None:
        self.kicked += 1
        body = {
            "msgid": secrets.token_hex(10),
            "aibotid": self.bot_id,
            "create_time": int(time.time()),
            "msgtype": "event",
            "event": {"eventtype": "disconnected_event"},
        }
        with contextlib.suppress(Exception):
            await conn.ws.send_json(p.frame(p.EVENT_CALLBACK, secrets.token_hex(8), body))
            await conn.ws.close()

    # -- the server -------------------------------------------------------------------------------

    async def _media(self, request: web.Request) -> web.StreamResponse:
        found = self.media.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        data, filename = found
        return web.Response(
            body=data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
        )

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(len(self.connections) + 1, ws)
        self.connections.append(conn)
        self._changed.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    self.problems.append(f"connection {conn.number}: a non-text frame")
                    continue
                await self._frame(conn, msg.data)
                self._changed.set()
        finally:
            self._changed.set()
        return ws

    async def _frame(self, conn: Connection, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            self.problems.append(f"connection {conn.number}: a frame that is not JSON")
            return
        headers = data.get("headers") if isinstance(data, dict) else None
        rid = headers.get("req_id") if isinstance(headers, dict) else None
        cmd = data.get("cmd") if isinstance(data, dict) else None
        body = data.get("body", {}) if isinstance(data, dict) else {}
        if cmd not in p.OUTGOING or not isinstance(rid, str) or not rid or not isinstance(body, dict):
            self.problems.append(f"connection {conn.number}: malformed frame {raw[:120]}")
            return
        got = Received(conn.number, cmd, rid, dict(body), time.monotonic())
        self.received.append(got)
        if self.on_frame is not None:
            self.on_frame(got)
        if cmd == p.SUBSCRIBE:
            if body.get("bot_id") != self.bot_id or body.get("secret") != self.secret:
                await self._ack(conn, rid, 40001, "invalid bot_id or secret")
                return
            previous = self.live
            conn.subscribed = True
            await self._ack(conn, rid, 0)
            if previous is not None and previous is not conn:  # a new connection kicks the old one
                await self._kick(previous)
            return
        if not conn.subscribed:
            self.problems.append(f"connection {conn.number}: {cmd} before a successful {p.SUBSCRIBE}")
            await self._ack(conn, rid, p.NOT_SUBSCRIBED, "not subscribed")
            return
        if cmd == p.PING:
            conn.pings += 1
            if self.answer_pings:
                await self._ack(conn, rid, 0)
            return
        if self.not_subscribed > 0:
            self.not_subscribed -= 1
            await self._ack(conn, rid, p.NOT_SUBSCRIBED, "not subscribed")
            return
        result: dict[str, Any] | None = None
        if cmd in p.ANSWERS:
            delivered = conn.callbacks.get(rid)
            if delivered is None:
                self.problems.append(f"connection {conn.number}: {cmd} with req_id {rid} of no callback here")
                await self._ack(conn, rid, 40058, "invalid req_id")
                return
            if cmd == p.RESPOND_UPDATE and time.monotonic() - delivered > 5:
                self.problems.append(f"connection {conn.number}: card updated more than 5 s after the click")
        elif cmd == p.SEND:
            if not body.get("chatid") or body.get("msgtype") not in (
                "markdown",
                "template_card",
                "image",
                "file",
            ):
                self.problems.append(f"connection {conn.number}: {p.SEND} without chatid or known msgtype")
        elif cmd == p.UPLOAD_INIT:
            upload_id = secrets.token_hex(6)
            self.uploads[upload_id] = {**body, "chunks": {}}
            result = {"upload_id": upload_id}
        elif cmd == p.UPLOAD_CHUNK:
            upload = self.uploads.get(str(body.get("upload_id")))
            if upload is None:
                await self._ack(conn, rid, 40058, "unknown upload_id")
                return
            upload["chunks"][int(body["chunk_index"])] = base64.b64decode(body["base64_data"])
        elif cmd == p.UPLOAD_FINISH:
            upload = self.uploads.get(str(body.get("upload_id")))
            if upload is None or len(upload["chunks"]) != upload["total_chunks"]:
                await self._ack(conn, rid, 40058, "upload incomplete")
                return
            upload["data"] = b"".join(upload["chunks"][i] for i in sorted(upload["chunks"]))
            media_id = "media-" + secrets.token_hex(6)
            upload["media_id"] = media_id
            result = {"type": upload["type"], "media_id": media_id, "created_at": str(int(time.time()))}
        if self.lose.get(cmd, 0) > 0:
            self.lose[cmd] -= 1
            return
        if cmd == p.SEND:  # counted as delivered only when its ack goes out
            self.received[self.received.index(got)] = Received(
                got.connection, cmd, rid, {**got.body, "_acked": True}, got.at
            )
        await self._ack(conn, rid, 0, body=result)

    async def _ack(
        self, conn: Connection, rid: str, errcode: int, errmsg: str = "ok", body: dict[str, Any] | None = None
    ) -> None:
        frame: dict[str, Any] = {"headers": {"req_id": rid}, "errcode": errcode, "errmsg": errmsg}
        if body is not None:
            frame["body"] = body
        if self.ack_delay and errcode == 0:
            asyncio.get_running_loop().call_later(
                self.ack_delay, lambda: asyncio.ensure_future(self._send(conn, frame))
            )
            return
        await self._send(conn, frame)

    async def _send(self, conn: Connection, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.ws.send_json(frame)
        self._changed.set()


# -- by hand: `python -m bot.simulator.fake_openws` ---------------------------------------------------


def _show(got: Received) -> None:
    b = got.body
    if got.cmd == p.RESPOND:
        print(f"  ← {(b.get('stream') or {}).get('content', b)}", flush=True)
    elif got.cmd == p.SEND:
        content = (b.get("markdown") or {}).get("content") or (b.get("template_card") or {}).get("main_title")
        print(f"  ⇐ to {b.get('chatid')}: {content or b.get('msgtype')}", flush=True)
    elif got.cmd == p.RESPOND_UPDATE:
        print(f"  ↻ card updated: {(b.get('template_card') or {}).get('sub_title_text')}", flush=True)
    elif got.cmd == p.SUBSCRIBE:
        print(f"  (connection {got.connection} subscribed as {b.get('bot_id')})", flush=True)


async def _console(port: int) -> None:
    fake = FakeOpenWS()
    fake.on_frame = _show
    app = web.Application()
    app.add_routes([web.get("/", fake._ws), web.get("/media/{name}", fake._media)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.base_url = f"http://127.0.0.1:{port}"
    fake.url = f"ws://127.0.0.1:{port}/"
    print(
        f"fake openws on {fake.url}. Start Pioneer with\n"
        f"  AIBOT_BOT_ID={fake.bot_id} AIBOT_SECRET={fake.secret} AIBOT_WS_URL={fake.url} "
        "python -m bot serve\n"
        "then type `userid 文字` (private chat) or `group userid 文字` (a group, as if @-mentioned).",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, input):
            group = line.startswith("group ")
            words = line.removeprefix("group ").split(maxsplit=1)
            if len(words) < 2:
                print("  usage: userid 文字 | group userid 文字", flush=True)
                continue
            await fake.deliver(fake.text(words[0], ("@先锋 " if group else "") + words[1], group=group))
    except EOFError:
        pass
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    import sys

    asyncio.run(_console(int(sys.argv[1]) if len(sys.argv) > 1 else 8090))
