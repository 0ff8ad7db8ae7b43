"""The WeCom callback endpoint: verify, decrypt and parse, hand over, answer with an encrypted reply.

Every protocol fault is a 4xx, never a 5xx: a bad signature, a corp id mismatch or a stale
timestamp is 403; broken XML or any DOCTYPE/entity is 400; a body over the limit is 413. An unknown
message or event type is acknowledged with an empty 200 and logged. The signature is checked here,
in constant time, before wechatpy decrypts (its own check compares with `!=`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from bot.wecom.messages import Incoming, MalformedMessage, PassiveReply, parse_incoming, xml_root

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


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom's msg_signature: SHA-1 of the four strings sorted and joined, in lower-case hex."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypted))).encode()).hexdigest()


def signature_matches(token: str, given: str, timestamp: str, nonce: str, encrypted: str) -> bool:
    """Compare in constant time, so that the answer's timing tells a forger nothing about how many
    leading characters of a guessed signature were right. Bytes, because compare_digest refuses
    non-ASCII str and the query string is the sender's to choose."""
    expected = signature(token, timestamp, nonce, encrypted)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


class MessageCipher(PrpCrypto):  # type: ignore[misc]
    """wechatpy's AES-CBC message envelope, built once for the process (building its cipher cost ~7 µs
    a message), with the 16 random characters that open each encrypted reply drawn from `secrets`
    (wechatpy draws them with `random`, which is not meant for cryptography, and ~8 µs slower)."""

    def __init__(self, encoding_aes_key: str):
        self.key = base64.b64decode(encoding_aes_key + "=")
        assert len(self.key) == 32, "EncodingAESKey is 43 characters of base64 for 32 bytes"
        super().__init__(self.key)

    def get_random_string(self) -> str:
        return secrets.token_urlsafe(12)  # 16 characters


# What wechatpy's `encrypt_message` writes around an encrypted passive reply.
_SEALED = (
    "<xml>\n<Encrypt><![CDATA[{}]]></Encrypt>\n<MsgSignature><![CDATA[{}]]></MsgSignature>\n"
    "<TimeStamp>{}</TimeStamp>\n<Nonce><![CDATA[{}]]></Nonce>\n</xml>"
)


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
        self.cipher = MessageCipher(encoding_aes_key)
        self.token = token
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

    def _decrypt(self, encrypted: str) -> str:
        """The plaintext of a verified `Encrypt` or echostr; InvalidCorpIdException when it was
        encrypted for another corp."""
        return str(self.cipher.decrypt(encrypted, self.corp_id))

    def seal(self, xml: str, nonce: str, timestamp: str) -> str:
        """A passive reply as WeCom takes it: `xml` encrypted, signed with the token, in its envelope."""
        encrypted = self.cipher.encrypt(xml, self.corp_id).decode()
        return _SEALED.format(encrypted, signature(self.token, timestamp, nonce, encrypted), timestamp, nonce)

    async def verify_url(self, request: web.Request) -> web.Response:
        q = request.query
        signature, timestamp, nonce, echostr = (
            q.get(k, "") for k in ("msg_signature", "timestamp", "nonce", "echostr")
        )
        if not (signature and timestamp and nonce and echostr):
            return self._refuse(400, "missing query parameters", request)
        if problem := self._check_time(timestamp):
            return self._refuse(403, problem, request)
        if not signature_matches(self.token, signature, timestamp, nonce, echostr):
            return self._refuse(403, "bad signature", request)
        try:
            echo = self._decrypt(echostr)
        except InvalidCorpIdException:
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
            encrypted = read_envelope(body)
        except Exception:  # noqa: BLE001 - expat and shape errors all mean a malformed body
            return self._refuse(400, "malformed body", request)
        if not signature_matches(self.token, signature, timestamp, nonce, encrypted):
            return self._refuse(403, "bad signature", request)
        try:
            plaintext = self._decrypt(encrypted)
        except InvalidCorpIdException:
            return self._refuse(403, "bad signature", request)
        except Exception:  # noqa: BLE001 - base64, padding and length errors all mean a malformed body
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
        return web.Response(
            text=self.seal(xml, reply_nonce, str(int(time.time()))), content_type="application/xml"
        )


def read_envelope(body: bytes) -> str:
    """The `Encrypt` text of a POST body: the one field of its <xml> root, plain text."""
    field = xml_root(body.decode()).find("Encrypt")
    text = "" if field is None or len(field) or field.attrib else (field.text or "").strip()
    if not text:
        raise ValueError("Encrypt is not text")
    return text
