"""What arrives from WeCom and what goes back passively, as plain typed values.

Parsing goes through wechatpy's `parse_message`; fields are read from its raw dict because wechatpy
1.8.18 types MsgId as an integer (it is not always one) and knows nothing of `template_card_event`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wechatpy.enterprise import parse_message
from wechatpy.events import BaseEvent
from wechatpy.messages import UnknownMessage

# Message types the bot acts on, and types it knows but only answers politely.
HANDLED_TYPES = frozenset({"text", "image", "file", "event"})
UNSUPPORTED_TYPES = frozenset({"voice", "video", "location", "link"})
# Messages that carry a MediaId the bot keeps (attached to what the sender submitted last).
MEDIA_TYPES = frozenset({"image", "file"})
HANDLED_EVENTS = frozenset({"template_card_event", "enter_agent", "subscribe", "unsubscribe", "click"})
# Events that are a person pressing a button (a template card's, or a menu item's): routed as commands.
CLICK_EVENTS = frozenset({"template_card_event", "click"})


class MalformedMessage(ValueError):
    """The decrypted plaintext is not a message we can read."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One decrypted callback: a message or an event from a member."""

    kind: str  # text | image | file | event | voice | … | unknown
    sender: str
    create_time: int
    agent_id: str = ""
    msg_id: str = ""
    content: str = ""
    media_id: str = ""
    pic_url: str = ""
    event: str = ""  # lower-cased
    event_key: str = ""
    task_id: str = ""
    card_type: str = ""
    response_code: str = ""
    selected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Set for what arrives over the AI bot's long connection (bot/aibot): the channel, the chat it
    # came from (chat_type "single" or "group"; chat_id for a group) and, for images and files, the
    # encrypted download URL with its key.
    channel: str = "app"
    chat_type: str = ""
    chat_id: str = ""
    media_url: str = ""
    aes_key: str = ""

    @property
    def key(self) -> str:
        """The inbox key: MsgId for messages; sender, time, event, key and task for events; the AI
        bot's msgid (messages and events alike) under its own prefix."""
        if self.channel == "aibot":
            return f"a:{self.msg_id}"
        if self.msg_id:
            return f"m:{self.msg_id}"
        return f"e:{self.sender}:{self.create_time}:{self.event}:{self.event_key}:{self.task_id}"

    @property
    def known(self) -> bool:
        if self.kind == "event":
            return self.event in HANDLED_EVENTS
        return self.kind in HANDLED_TYPES or self.kind in UNSUPPORTED_TYPES


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, dict):  # an element with attributes or children is not a plain value
        return str(value.get("#text", ""))
    return str(value).strip() if name != "Content" else str(value)


def _selected(raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """SelectedItems of a vote or multi-select card; both `OptionIds` and the misspelt `OpitonIds`."""
    container = raw.get("SelectedItems")
    items = container.get("SelectedItem") if isinstance(container, dict) else None
    if items is None:
        return {}
    if isinstance(items, dict):
        items = [items]
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        ids = item.get("OptionIds") or item.get("OpitonIds") or {}
        options = (ids.get("OptionId") or ids.get("OpitonId") or []) if isinstance(ids, dict) else []
        if not isinstance(options, list):
            options = [options]
        out[str(item.get("QuestionKey") or "")] = tuple(str(o) for o in options if o is not None)
    return out


def parse_incoming(plaintext: str) -> Incoming:
    """Turn decrypted callback XML into an `Incoming`; raise `MalformedMessage` if it is not one."""
    if "<!DOCTYPE" in plaintext.upper() or "<!ENTITY" in plaintext.upper():
        raise MalformedMessage("document type declarations are not accepted")
    try:
        msg = parse_message(plaintext)
    except Exception as exc:  # xmltodict/expat raise several types for broken XML
        raise MalformedMessage(str(exc)) from None
    if msg is None:
        raise MalformedMessage("empty message")
    raw: dict[str, Any] = msg._data  # noqa: SLF001 - wechatpy keeps the parsed fields here
    if not isinstance(raw, dict):
        raise MalformedMessage("no <xml> root")
    sender = _text(raw, "FromUserName")
    create = _text(raw, "CreateTime")
    if not sender or not (create.isascii() and create.isdigit()):  # int() refuses "²", which isdigit() takes
        raise MalformedMessage("FromUserName and CreateTime are required")
    kind = _text(raw, "MsgType").lower()
    if isinstance(msg, UnknownMessage) and kind != "event":
        kind = kind or "unknown"
    is_event = kind == "event" or isinstance(msg, BaseEvent)
    return Incoming(
        kind="event" if is_event else kind,
        sender=sender,
        create_time=int(create),
        agent_id=_text(raw, "AgentID"),
        msg_id="" if is_event else _text(raw, "MsgId"),
        content=_text(raw, "Content"),
        media_id=_text(raw, "MediaId"),
        pic_url=_text(raw, "PicUrl"),
        event=_text(raw, "Event").lower() if is_event else "",
        event_key=_text(raw, "EventKey"),
        task_id=_text(raw, "TaskId"),
        card_type=_text(raw, "CardType"),
        response_code=_text(raw, "ResponseCode"),
        selected=_selected(raw),
    )


@dataclass(frozen=True, slots=True)
class PassiveReply:
    """What goes back in the HTTP response: a text, or a card button replaced after a click."""

    text: str = ""
    replace_button: str = ""

    def render(self, to_user: str, from_corp: str, now: int | None = None) -> str:
        head = (
            f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><FromUserName>{_cdata(from_corp)}</FromUserName>"
            f"<CreateTime>{int(now if now is not None else time.time())}</CreateTime>"
        )
        if self.replace_button:
            return (
                head + "<MsgType><![CDATA[update_button]]></MsgType>"
                f"<Button><ReplaceName>{_cdata(self.replace_button)}</ReplaceName></Button></xml>"
            )
        return head + f"<MsgType><![CDATA[text]]></MsgType><Content>{_cdata(self.text)}</Content></xml>"


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
