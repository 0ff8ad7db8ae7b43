"""In-process fake of the WeCom HTTP API (gettoken, message/send, update_template_card, media,
user/get, the directory: department/list, department/simplelist, user/list, user/simplelist;
group-robot webhook) with fault injection and observation, for the tests and the local
simulator page. Serve it with `start()` or mount `app()` as a sub-application.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

log = logging.getLogger(__name__)

APP_MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "markdown",
        "miniprogram_notice",
        "template_card",
        "interactive_taskcard",
    }
)
WEBHOOK_MSGTYPES = frozenset(
    {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
)
INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
_APP_TEXT_LIMITS = {"text": 2048, "markdown": 2048}
_WEBHOOK_TEXT_LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
_WEBHOOK_IMAGE_LIMIT = 2 * 1024 * 1024
_TOKEN_TTL = 7200

_ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40004: "invalid media type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    44001: "empty media data",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    60003: "department not found",
    60011: "no privilege to access/modify contact/party/agent",
    60111: "userid not found",
    60140: "invalid response_code",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}


@dataclass
class SentMessage:
    """An accepted message/send; `body` is the msgtype's object, e.g. {"content": "…"} for text."""

    seq: int
    touser: str
    msgtype: str
    body: dict[str, Any]
    time: float
    msgid: str
    response_code: str | None = None


@dataclass
class WebhookMessage:
    seq: int
    key: str
    msgtype: str
    body: dict[str, Any]
    time: float


@dataclass
class CardUpdate:
    seq: int
    userids: list[str]
    response_code: str
    button_replace_name: str | None
    template_card: dict[str, Any] | None
    time: float


@dataclass
class Call:
    """Every HTTP request, failed or not; `errcode` is None for HTTP failures and file downloads."""

    seq: int
    api: str
    method: str
    status: int
    errcode: int | None
    time: float


@dataclass
class _Fault:
    api: str | None
    remaining: int | None  # None: until heal()
    code: int
    http: bool  # code is an HTTP status, not an errcode


@dataclass
class _Media:
    data: bytes
    filename: str
    content_type: str


class _Reject(Exception):
    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or _ERRMSG.get(errcode, "error")


Subscriber = Callable[[str, Any], Awaitable[None] | None]
_Handler = Callable[[web.Request], Awaitable[dict[str, Any] | web.StreamResponse]]


class FakeWeCom:
    def __init__(
        self,
        corp_id: str = "wwfake",
        secret: str = "fake-secret",
        agent_id: int = 1000002,
        users: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        # Once any user is known, receivers outside this dict count as invalid (like a visible range).
        self.users = {uid: {"userid": uid, **fields} for uid, fields in (users or {}).items()}
        self.base_url: str | None = None
        self._seq = 0
        self._id_counts: Counter[str] = Counter()
        self._tokens: dict[str, float] = {}  # token -> monotonic deadline
        self._open_codes: set[str] = set()
        self._media: dict[str, _Media] = {}
        self._invalid_keys: set[str] = set()
        self._sent: list[SentMessage] = []
        self._webhooks: list[WebhookMessage] = []
        self._card_updates: list[CardUpdate] = []
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._random_faults: list[tuple[str | None, float, tuple[int, ...], random.Random]] = []
        self._delays: dict[str | None, float] = {}
        self._subscribers: list[Subscriber] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        # The address book (通讯录): departments by id, and its people (kept apart from `users`, which
        # is the app's visible range for message/send).
        self.departments: dict[int, dict[str, Any]] = {}
        self.directory: dict[str, dict[str, Any]] = {}

    # -- serving ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh Application over this fake's state, routes under /cgi-bin/."""
        app = web.Application()
        routes: dict[str, tuple[str, _Handler]] = {
            "gettoken": ("GET", self._gettoken),
            "message/send": ("POST", self._message_send),
            "message/update_template_card": ("POST", self._update_template_card),
            "webhook/send": ("POST", self._webhook_send),
            "webhook/upload_media": ("POST", self._webhook_upload),
            "media/upload": ("POST", self._media_upload),
            "media/get": ("GET", self._media_get),
            "user/get": ("GET", self._user_get),
            "department/list": ("GET", self._department_list),
            "department/simplelist": ("GET", self._department_simplelist),
            "user/list": ("GET", self._user_list),
            "user/simplelist": ("GET", self._user_simplelist),
        }
        for api, (method, handler) in routes.items():
            app.router.add_route(method, f"/cgi-bin/{api}", self._endpoint(api, handler))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve standalone; returns the base URL (use it as the client's api_base)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = str(URL.build(scheme="http", host=host, port=self._runner.addresses[0][1]))
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    # -- state and fault injection ------------------------------------------------------------

    def add_user(self, userid: str, name: str, **fields: Any) -> None:
        self.users[userid] = {"userid": userid, "name": name, **fields}

    def add_department(self, dept_id: int, name: str, parentid: int = 1, order: int = 0) -> None:
        self.departments[dept_id] = {"id": dept_id, "name": name, "parentid": parentid, "order": order}

    def add_person(self, userid: str, name: str, departments: list[int], **fields: Any) -> None:
        """Someone in the address book (user/list and user/simplelist), in `departments` (the first is
        their main department)."""
        self.directory[userid] = {
            "userid": userid,
            "name": name,
            "department": list(departments),
            "main_department": departments[0],
            "status": 1,
            **fields,
        }

    def remove_person(self, userid: str) -> None:
        """Someone who left: WeCom deletes them from the address book."""
        self.directory.pop(userid, None)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on."""
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def invalid_webhook(self, key: str) -> None:
        self._invalid_keys.add(key)

    def fail_next(self, n: int, errcode: int = -1, api: str | None = None) -> None:
        """The next n calls of `api` (e.g. "message/send"; None: any api) answer `errcode`."""
        self._faults.append(_Fault(api, n, errcode, http=False))

    def fail_http(self, n: int, status: int = 500, api: str | None = None) -> None:
        self._faults.append(_Fault(api, n, status, http=True))

    def fail_randomly(self, rate: float, codes: Sequence[int], api: str | None = None, seed: int = 0) -> None:
        """Until heal(): each call of `api` fails with probability `rate`, with one of `codes` (100–599:
        an HTTP status, else a WeCom errcode): faults independent of which message happens to be next."""
        self._random_faults.append((api, rate, tuple(codes), random.Random(seed)))

    def fail_always(self, code: int, api: str | None = None) -> None:
        """Until heal(): `code` in 100–599 is an HTTP status, anything else a WeCom errcode."""
        self._faults.append(_Fault(api, None, code, http=100 <= code <= 599))

    def set_delay(self, seconds: float, api: str | None = None) -> None:
        """Answer `api` (None: every api without its own delay) only after `seconds`."""
        self._delays[api] = seconds

    def heal(self) -> None:
        """Drop all injected faults and delays (invalid webhooks and expired tokens stay)."""
        self._faults.clear()
        self._random_faults.clear()
        self._delays.clear()

    # -- observation --------------------------------------------------------------------------

    def sent(self, touser: str | None = None, msgtype: str | None = None) -> list[SentMessage]:
        """App messages, optionally those reaching `touser` (alone or in an "a|b" list)."""
        return [
            m
            for m in self._sent
            if (touser is None or touser in m.touser.split("|")) and (msgtype is None or m.msgtype == msgtype)
        ]

    def webhooks(self, key: str | None = None) -> list[WebhookMessage]:
        return [m for m in self._webhooks if key is None or m.key == key]

    def card_updates(self) -> list[CardUpdate]:
        return list(self._card_updates)

    def calls(self, api: str | None = None) -> list[Call]:
        return [c for c in self._calls if api is None or c.api == api]

    @property
    def token_requests(self) -> int:
        return len(self.calls("gettoken"))

    async def wait_for(self, predicate: Callable[[], bool] | None = None, *, timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (default: anything new is recorded, calls included);
        re-checked on each record. Raises TimeoutError."""
        if predicate is None:
            start = self._seq

            def predicate() -> bool:
                return self._seq > start

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(kind, item)` (sync or async) for each ("app", SentMessage),
        ("webhook", WebhookMessage) and ("card_update", CardUpdate). Returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    # -- plumbing -----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_id(self, prefix: str) -> str:
        self._id_counts[prefix] += 1
        return f"{prefix}-{self._id_counts[prefix]}"

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _publish(self, kind: str, item: SentMessage | WebhookMessage | CardUpdate) -> None:
        for callback in list(self._subscribers):
            try:
                result = callback(kind, item)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A broken listener (e.g. a closed simulator page) must not fail the fake API.
                log.exception("FakeWeCom subscriber failed on %s", kind)
        await self._notify()

    def _take_fault(self, api: str) -> _Fault | None:
        for fault in self._faults:
            if fault.api in (None, api):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        for on, rate, codes, rng in self._random_faults:
            if on in (None, api) and rng.random() < rate:
                code = rng.choice(codes)
                return _Fault(api, 1, code, http=100 <= code <= 599)
        return None

    def _endpoint(
        self, api: str, handler: _Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            delay = self._delays.get(api, self._delays.get(None, 0.0))
            if delay:
                await asyncio.sleep(delay)
            fault = self._take_fault(api)
            errcode: int | None = None
            try:
                if fault and fault.http:
                    result: dict[str, Any] | web.StreamResponse = web.Response(
                        status=fault.code, text="injected failure"
                    )
                elif fault:
                    raise _Reject(fault.code)
                else:
                    result = await handler(request)
            except _Reject as e:
                errcode, result = e.errcode, {"errcode": e.errcode, "errmsg": e.errmsg}
            if isinstance(result, dict):
                errcode = errcode or 0
                response: web.StreamResponse = web.json_response(
                    {"errcode": 0, "errmsg": "ok", **result}, dumps=partial(json.dumps, ensure_ascii=False)
                )
            else:
                response = result
            self._calls.append(
                Call(self._next_seq(), api, request.method, response.status, errcode, time.time())
            )
            await self._notify()
            return response

        return endpoint

    def _check_token(self, request: web.Request) -> None:
        token = request.query.get("access_token")
        if not token:
            raise _Reject(41001)
        deadline = self._tokens.get(token)
        if deadline is None:
            raise _Reject(40014)
        if time.monotonic() >= deadline:
            raise _Reject(42001)

    def _check_agent(self, body: dict[str, Any]) -> None:
        if str(body.get("agentid")) != str(self.agent_id):
            raise _Reject(40056)

    def _check_key(self, request: web.Request) -> str:
        key = request.query.get("key", "")
        if not key or key in self._invalid_keys:
            raise _Reject(93000)
        return key

    def store_media(self, data: bytes, filename: str, content_type: str = "application/octet-stream") -> str:
        """Put a file where `media/get` finds it, as if a member had sent it; returns its media_id."""
        return self._store(_Media(data, filename, content_type))

    def media(self, media_id: str) -> tuple[bytes, str | None]:
        """The bytes and filename behind a media_id (e.g. a file the bot uploaded)."""
        m = self._media[media_id]
        return m.data, m.filename

    def _store(self, media: _Media) -> str:
        media_id = self._new_id("media")
        self._media[media_id] = media
        return media_id

    # -- handlers: return the fields beside errcode/errmsg, or a ready response ----------------

    async def _gettoken(self, request: web.Request) -> dict[str, Any]:
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            raise _Reject(40001)
        token = self._new_id("tok")
        self._tokens[token] = time.monotonic() + _TOKEN_TTL
        return {"access_token": token, "expires_in": _TOKEN_TTL}

    async def _message_send(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        body = await _json_body(request)
        self._check_agent(body)
        msgtype, content = _typed_body(body, APP_MSGTYPES, _APP_TEXT_LIMITS)
        touser = str(body.get("touser") or "")
        if not touser:
            raise _Reject(40058, "touser is empty")
        receivers = touser.split("|")
        invalid = [u for u in receivers if self.users and u != "@all" and u not in self.users]
        if len(invalid) == len(receivers):
            raise _Reject(81013)
        response_code = None
        if msgtype == "template_card" and content.get("card_type") in INTERACTIVE_CARDS:
            response_code = self._new_id("rc")
            self._open_codes.add(response_code)
        seq = self._next_seq()
        message = SentMessage(seq, touser, msgtype, content, time.time(), f"msg-{seq}", response_code)
        self._sent.append(message)
        await self._publish("app", message)
        answer: dict[str, Any] = {"invaliduser": "|".join(invalid), "msgid": message.msgid}
        if response_code:
            answer["response_code"] = response_code
        return answer

    async def _update_template_card(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        body = await _json_body(request)
        self._check_agent(body)
        code = body.get("response_code")
        if code not in self._open_codes:
            raise _Reject(60140)
        button, card = body.get("button"), body.get("template_card")
        if not isinstance(button, dict) and not isinstance(card, dict):
            raise _Reject(40058, "button or template_card required")
        self._open_codes.discard(code)
        update = CardUpdate(
            self._next_seq(),
            list(body.get("userids") or []),
            code,
            button.get("replace_name") if isinstance(button, dict) else None,
            card if isinstance(card, dict) else None,
            time.time(),
        )
        self._card_updates.append(update)
        await self._publish("card_update", update)
        return {"invaliduser": []}

    async def _webhook_send(self, request: web.Request) -> dict[str, Any]:
        key = self._check_key(request)
        msgtype, content = _typed_body(await _json_body(request), WEBHOOK_MSGTYPES, _WEBHOOK_TEXT_LIMITS)
        if msgtype == "image":
            _check_image(content)
        if msgtype in ("file", "voice") and content.get("media_id") not in self._media:
            raise _Reject(40007)
        message = WebhookMessage(self._next_seq(), key, msgtype, content, time.time())
        self._webhooks.append(message)
        await self._publish("webhook", message)
        return {}

    async def _webhook_upload(self, request: web.Request) -> dict[str, Any]:
        self._check_key(request)
        return await self._upload(request, {"file", "voice"})

    async def _media_upload(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        return await self._upload(request, {"image", "voice", "video", "file"})

    async def _upload(self, request: web.Request, kinds: set[str]) -> dict[str, Any]:
        kind = request.query.get("type", "")
        if kind not in kinds:
            raise _Reject(40004)
        part = (await request.post()).get("media")
        # Real WeCom does not read RFC 2231 `filename*` and answers 44001 (sbzhu/weworkapi_python#1).
        if not isinstance(part, web.FileField) or "filename*" in part.headers.get(
            hdrs.CONTENT_DISPOSITION, ""
        ):
            raise _Reject(44001)
        data = part.file.read()
        if not data:
            raise _Reject(44001)
        media_id = self._store(_Media(data, part.filename, part.content_type))
        return {"type": kind, "media_id": media_id, "created_at": str(int(time.time()))}

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        self._check_token(request)
        media = self._media.get(request.query.get("media_id", ""))
        if media is None:
            raise _Reject(40007)
        # Raw UTF-8 in a quoted string: the form WeCom accepts on upload, and what browsers send.
        name = media.filename.replace("\\", "\\\\").replace('"', '\\"')
        headers = {
            hdrs.CONTENT_TYPE: media.content_type,
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="{name}"',
        }
        return web.Response(body=media.data, headers=headers)

    async def _user_get(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        user = self.users.get(request.query.get("userid", ""))
        if user is None:
            raise _Reject(60111)
        return dict(user)

    # -- the address book: the shapes of WeCom's documents; apps created since 2022 get no phones,
    # e-mails or avatars from user/list, so the fake returns none either.

    def _subtree(self, request: web.Request, key: str, *, required: bool) -> list[dict[str, Any]]:
        raw = request.query.get(key, "")
        if not raw:
            if required:
                raise _Reject(40058, f"missing {key}")
            return sorted(self.departments.values(), key=lambda d: d["id"])
        try:
            root = int(raw)
        except ValueError:
            raise _Reject(40058, f"invalid {key}") from None
        if root not in self.departments:
            raise _Reject(60003)
        found, frontier = [self.departments[root]], [root]
        while frontier:
            children = [d for d in self.departments.values() if d["parentid"] in frontier and d["id"] != root]
            found += children
            frontier = [d["id"] for d in children]
        return found

    async def _department_list(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        return {"department": [dict(d) for d in self._subtree(request, "id", required=False)]}

    async def _department_simplelist(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        return {
            "department_id": [
                {"id": d["id"], "parentid": d["parentid"], "order": d["order"]}
                for d in self._subtree(request, "id", required=False)
            ]
        }

    def _members_of(self, request: web.Request) -> list[dict[str, Any]]:
        """The people of one department (not its sub-departments: `fetch_child` is no longer offered)."""
        [dept] = self._subtree(request, "department_id", required=True)[:1]
        return [p for p in self.directory.values() if dept["id"] in p["department"]]

    async def _user_list(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        return {"userlist": [dict(p) for p in self._members_of(request)]}

    async def _user_simplelist(self, request: web.Request) -> dict[str, Any]:
        self._check_token(request)
        return {
            "userlist": [
                {"userid": p["userid"], "name": p["name"], "department": p["department"]}
                for p in self._members_of(request)
            ]
        }


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _Reject(47001) from None
    if not isinstance(body, dict):
        raise _Reject(47001)
    return body


def _typed_body(
    body: dict[str, Any], msgtypes: frozenset[str], limits: dict[str, int]
) -> tuple[str, dict[str, Any]]:
    """(msgtype, its object) after checking the type is known and text fits WeCom's byte limits."""
    msgtype = body.get("msgtype")
    if msgtype not in msgtypes:
        raise _Reject(40008)
    content = body.get(msgtype)
    if not isinstance(content, dict):
        raise _Reject(40058, f"missing {msgtype} object")
    if msgtype in limits:
        text = content.get("content")
        if not isinstance(text, str) or not text:
            raise _Reject(44004)
        if len(text.encode()) > limits[msgtype]:
            raise _Reject(45002)
    return msgtype, content


def _check_image(content: dict[str, Any]) -> None:
    try:
        data = base64.b64decode(content.get("base64", ""), validate=True)
    except (binascii.Error, TypeError):
        raise _Reject(40058, "image base64 is invalid") from None
    if not data:
        raise _Reject(40058, "image is empty")
    if len(data) > _WEBHOOK_IMAGE_LIMIT:
        raise _Reject(45002)
    if hashlib.md5(data).hexdigest() != content.get("md5"):
        raise _Reject(40058, "image md5 does not match")
