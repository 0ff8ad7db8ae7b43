"""The AI bot's long-connection protocol: frames, commands, callbacks as `Incoming`, media decryption.

Every fact here was checked against the official Node SDK (WecomTeam/aibot-node-sdk); docs/aibot.md
lists them with where, and which remain unverified without a real tenant.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.wecom.messages import Incoming

# Commands, as the SDK's `WsCmd` spells them.
SUBSCRIBE = "aibot_subscribe"
PING = "ping"
RESPOND = "aibot_respond_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
SEND = "aibot_send_msg"
UPLOAD_INIT = "aibot_upload_media_init"
UPLOAD_CHUNK = "aibot_upload_media_chunk"
UPLOAD_FINISH = "aibot_upload_media_finish"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
OUTGOING = frozenset(
    {
        SUBSCRIBE,
        PING,
        RESPOND,
        RESPOND_WELCOME,
        RESPOND_UPDATE,
        SEND,
        UPLOAD_INIT,
        UPLOAD_CHUNK,
        UPLOAD_FINISH,
    }
)
# Replies that must reuse the req_id of the callback they answer.
ANSWERS = frozenset({RESPOND, RESPOND_WELCOME, RESPOND_UPDATE})

NOT_SUBSCRIBED = 846609  # the errcode of a frame sent before (or without) a valid subscription
CHUNK_BYTES = 512 * 1024  # upload chunk size before base64, at most 100 chunks (the SDK's limits)
MAX_CHUNKS = 100
STREAM_LIMIT = 20480  # bytes of a stream reply's content

_MENTION = re.compile(r"^(\s*@\S+)+\s*")


def req_id(prefix: str) -> str:
    """`{prefix}_{milliseconds}_{random}`, as the SDK's generateReqId."""
    return f"{prefix}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


def frame(cmd: str, rid: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": rid}}
    if body is not None:
        out["body"] = body
    return out


def strip_mention(text: str) -> str:
    """`@先锋 排行` → `排行`: a group message reaches the bot only when it is @-mentioned."""
    return _MENTION.sub("", text, count=1)


def parse_callback(data: dict[str, Any]) -> Incoming | None:
    """An `aibot_msg_callback` or `aibot_event_callback` frame as the dispatcher's `Incoming`, or None
    when it is not one the bot acts on (a feedback event, a frame without a sender)."""
    body = data.get("body")
    if not isinstance(body, dict):
        return None
    sender = str((body.get("from") or {}).get("userid") or "")
    msgid = str(body.get("msgid") or "")
    if not sender or not msgid:
        return None
    chat_type = str(body.get("chattype") or "single")
    common: dict[str, Any] = {
        "sender": sender,
        "create_time": int(body.get("create_time") or time.time()),
        "msg_id": msgid,
        "channel": "aibot",
        "chat_type": chat_type,
        "chat_id": str(body.get("chatid") or ""),
    }
    msgtype = str(body.get("msgtype") or "")
    if data.get("cmd") == EVENT_CALLBACK or msgtype == "event":
        event = body.get("event") or {}
        kind = str(event.get("eventtype") or "").lower()
        if kind == "template_card_event":
            # The SDK types event_key and task_id on the event itself; the documents' examples nest
            # them under "template_card_event". Both are read.
            inner = event.get("template_card_event") or {}
            return Incoming(
                kind="event",
                event=kind,
                event_key=str(event.get("event_key") or inner.get("event_key") or ""),
                task_id=str(event.get("task_id") or inner.get("task_id") or ""),
                card_type=str(inner.get("card_type") or ""),
                **common,
            )
        if kind in ("enter_chat", "disconnected_event"):
            return Incoming(kind="event", event=kind, **common)
        return None
    if msgtype == "text":
        content = str((body.get("text") or {}).get("content") or "")
        return Incoming(kind="text", content=_clean(content, chat_type), **common)
    if msgtype == "voice":  # the transcript is the message
        content = str((body.get("voice") or {}).get("content") or "")
        return Incoming(kind="text", content=_clean(content, chat_type), **common)
    if msgtype in ("image", "file"):
        media = body.get(msgtype) or {}
        return Incoming(
            kind=msgtype,
            media_id=f"aibot:{msgid}",
            media_url=str(media.get("url") or ""),
            aes_key=str(media.get("aeskey") or ""),
            **common,
        )
    if msgtype == "mixed":  # text and pictures: the text is the message; a picture alone is an image
        items = (body.get("mixed") or {}).get("msg_item") or []
        texts = [str((i.get("text") or {}).get("content") or "") for i in items if i.get("msgtype") == "text"]
        text = "\n".join(t for t in texts if t.strip())
        if text:
            return Incoming(kind="text", content=_clean(text, chat_type), **common)
        image = next((i.get("image") or {} for i in items if i.get("msgtype") == "image"), None)
        if image:
            return Incoming(
                kind="image",
                media_id=f"aibot:{msgid}",
                media_url=str(image.get("url") or ""),
                aes_key=str(image.get("aeskey") or ""),
                **common,
            )
        return None
    return Incoming(kind=msgtype or "unknown", **common)


def _clean(text: str, chat_type: str) -> str:
    return strip_mention(text) if chat_type == "group" else text


def decrypt_media(data: bytes, aes_key: str) -> bytes:
    """AES-256-CBC with the file's own base64 key, IV = the key's first 16 bytes, PKCS#7 padding to a
    multiple of 32 bytes (the SDK's decryptFile)."""
    key = base64.b64decode(aes_key + "=" * (-len(aes_key) % 4))
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    return unpadder.update(plain) + unpadder.finalize()


def encrypt_media(data: bytes, aes_key: str) -> bytes:
    """The inverse of `decrypt_media`, for the fake server and tests."""
    key = base64.b64decode(aes_key + "=" * (-len(aes_key) % 4))
    padder = padding.PKCS7(256).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


# -- bodies ------------------------------------------------------------------------------------------


def stream_reply(text: str, stream_id: str) -> dict[str, Any]:
    """An `aibot_respond_msg` body: one finished stream message (markdown), as the SDK's replyStream."""
    content = text.encode()[:STREAM_LIMIT].decode("utf-8", errors="ignore")
    return {"msgtype": "stream", "stream": {"id": stream_id, "finish": True, "content": content}}


def updated_card(original: dict[str, Any], label: str) -> dict[str, Any]:
    """The clicked card after its decision: `aibot_respond_update_msg` replaces the whole card, so it
    becomes a `text_notice` with the same task_id, title and facts and the decision (e.g. 已通过 · 张三)
    below, without buttons (the SDK's README updates a clicked card to a text_notice the same way)."""
    card: dict[str, Any] = {"card_type": "text_notice", "task_id": original.get("task_id", "")}
    for key in ("source", "main_title", "horizontal_content_list"):
        if key in original:
            card[key] = original[key]
    card["sub_title_text"] = label
    return card


def push_body(chat: str, msgtype: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An `aibot_send_msg` body for an outbox row: text goes as markdown (the only text type the
    push takes), cards as template cards."""
    if msgtype in ("text", "markdown"):
        return {"chatid": chat, "msgtype": "markdown", "markdown": {"content": payload["content"]}}
    if msgtype == "template_card":
        return {"chatid": chat, "msgtype": "template_card", "template_card": payload}
    raise ValueError(f"cannot push {msgtype!r} without an upload")
