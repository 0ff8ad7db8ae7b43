"""The WeCom callback endpoint: verify, decrypt and parse, hand over, answer with an encrypted reply.

Every protocol fault is a 4xx, never a 5xx: a bad signature, a corp id mismatch or a stale
timestamp is 403; broken XML or any DOCTYPE/entity is 400; a body over the limit is 413. An unknown
message or event type is acknowledged with an empty 200 and logged.
"""

from __future__ import annotations

import binascii
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from wechatpy.enterprise import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.wecom.messages import Incoming, MalformedMessage, PassiveReply, parse_incoming

log = logging.getLogger(__name__)

Dispatch = Callable[[Incoming], Awaitable[PassiveReply | None]]


class CallbackObserver(Protocol):
    def refused(self, reason: str) -> None: ...
    def accepted(self) -> None: ...


class _NullObserver:
    def refused(self, reason: str) -> None:
        pass

    def accepted(self) -> None:
        pass


_CRYPTO_FAULTS = (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, IndexError)


class WeComCallback:
    """aiohttp handlers for `GET` (URL verification) and `POST` (messages) at the callback path."""

    def __init__(
        self,
        *,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        dispatch: Dispatch,
        max_clock_skew: int = 300,
        max_body_bytes: int = 64 * 1024,
        observer: CallbackObserver | None = None,
    ):
        self.crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        self.corp_id = corp_id
        self.dispatch = dispatch
        self.max_clock_skew = max_clock_skew
        self.max_body_bytes = max_body_bytes
        self.observer = observer or _NullObserver()
        self.last_callback_at: float | None = None

    def routes(self, path: str) -> list[web.RouteDef]:
        return [web.get(path, self.verify_url), web.post(path, self.receive)]

    def _refuse(self, status: int, reason: str, request: web.Request) -> web.Response:
        self.observer.refused(reason)
        log.warning("callback refused: %s", reason, extra={"remote": request.remote, "status": status})
        return web.Response(status=status, text=reason)

    def _check_time(self, timestamp: str) -> str | None:
        if not timestamp.isdigit():
            return "bad timestamp"
        if self.max_clock_skew and abs(time.time() - int(timestamp)) > self.max_clock_skew:
            return "stale timestamp"
        return None

    async def verify_url(self, request: web.Request) -> web.Response:
        q = request.query
        signature, timestamp, nonce, echostr = (
            q.get(k, "") for k in ("msg_signature", "timestamp", "nonce", "echostr")
        )
        if not (signature and timestamp and nonce and echostr):
            return self._refuse(400, "missing query parameters", request)
        if problem := self._check_time(timestamp):
            return self._refuse(403, problem, request)
        try:
            echo = self.crypto.check_signature(signature, timestamp, nonce, echostr)
        except (InvalidSignatureException, InvalidCorpIdException):
            return self._refuse(403, "bad signature", request)
        except _CRYPTO_FAULTS:
            return self._refuse(400, "undecryptable echostr", request)
        # WeCom wants the bare plaintext: no quotes, no BOM, no newline.
        return web.Response(body=echo.encode() if isinstance(echo, str) else echo, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        q = request.query
        signature, timestamp, nonce = (q.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self._refuse(413, "body too large", request)
        body = await request.content.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return self._refuse(413, "body too large", request)
        if not (signature and timestamp and nonce):
            return self._refuse(403, "missing signature", request)
        if problem := self._check_time(timestamp):
            return self._refuse(403, problem, request)
        upper = body.upper()
        if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
            return self._refuse(400, "doctype or entity in body", request)
        try:
            plaintext = self.crypto.decrypt_message(body, signature, timestamp, nonce)
        except (InvalidSignatureException, InvalidCorpIdException):
            return self._refuse(403, "bad signature", request)
        except Exception:  # noqa: BLE001 - expat, base64 and padding errors all mean a malformed body
            return self._refuse(400, "malformed body", request)
        try:
            incoming = parse_incoming(plaintext)
        except MalformedMessage as exc:
            return self._refuse(400, f"malformed message: {exc}", request)
        self.last_callback_at = time.time()
        if not incoming.known:
            self.observer.refused("unknown type")
            log.info("ignored %s %s from %s", incoming.kind, incoming.event, incoming.sender)
            return web.Response(status=200, text="")
        self.observer.accepted()
        reply = await self.dispatch(incoming)
        if reply is None:
            return web.Response(status=200, text="")
        xml = reply.render(incoming.sender, self.corp_id)
        reply_nonce = nonce or secrets.token_hex(8)
        encrypted = self.crypto.encrypt_message(xml, reply_nonce, str(int(time.time())))
        return web.Response(text=encrypted, content_type="application/xml")
