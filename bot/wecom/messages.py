"""What arrives from WeCom and what goes back passively, as plain typed values.

The decrypted XML is read with the standard library's ElementTree (expat underneath), not wechatpy's
`parse_message`: that one goes through xmltodict, costs about 75 µs a message against about 25 here
(measured on the bench's messages; the bot spends about 1 ms of CPU on a message in all), and its
typed message classes were never used: wechatpy 1.8.18 types MsgId as an integer (it is not always
one) and knows nothing of `template_card_event`, so the fields were read from its raw dict anyway.
What it accepted and refused is kept: a root other than <xml>, or no MsgType (no Event for an event),
is a malformed message. A field given twice counts once (the first).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

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


def xml_root(text: str) -> ET.Element:
    """The <xml> root of a WeCom document (a callback's envelope or its decrypted message). Raises
    MalformedMessage for anything else. A DOCTYPE or ENTITY declaration is refused before parsing."""
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise MalformedMessage("document type declarations are not accepted")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise MalformedMessage(str(exc)) from None
    if root.tag != "xml":
        raise MalformedMessage("no <xml> root")
    return root


def _data(elem: ET.Element) -> str:
    """An element's own text (around its children, if any), stripped: what WeCom's fields hold."""
    if len(elem):
        return ((elem.text or "") + "".join(child.tail or "" for child in elem)).strip()
    return (elem.text or "").strip()


def _text(root: ET.Element, name: str) -> str:
    elem = root.find(name)
    return "" if elem is None else _data(elem)


def _selected(root: ET.Element) -> dict[str, tuple[str, ...]]:
    """SelectedItems of a vote or multi-select card; both `OptionIds` and the misspelt `OpitonIds`."""
    out: dict[str, tuple[str, ...]] = {}
    for item in root.iterfind("SelectedItems/SelectedItem"):
        options: list[str] = []
        for ids, one in (("OptionIds", "OptionId"), ("OpitonIds", "OpitonId")):
            options = [o for o in (_data(e) for e in item.iterfind(f"{ids}/{one}")) if o]
            if options:
                break
        out[_text(item, "QuestionKey")] = tuple(options)
    return out


def parse_incoming(plaintext: str) -> Incoming:
    """Turn decrypted callback XML into an `Incoming`; raise `MalformedMessage` if it is not one."""
    if not plaintext:
        raise MalformedMessage("empty message")
    root = xml_root(plaintext)
    sender = _text(root, "FromUserName")
    create = _text(root, "CreateTime")
    if not sender or not (create.isascii() and create.isdigit()):  # int() refuses "²", which isdigit() takes
        raise MalformedMessage("FromUserName and CreateTime are required")
    kind = _text(root, "MsgType").lower()
    if not kind:
        raise MalformedMessage("MsgType is required")
    is_event = kind == "event"
    event = _text(root, "Event").lower() if is_event else ""
    if is_event and not event:
        raise MalformedMessage("an event needs its Event")
    return Incoming(
        kind=kind,
        sender=sender,
        create_time=int(create),
        agent_id=_text(root, "AgentID"),
        msg_id="" if is_event else _text(root, "MsgId"),
        content=_text(root, "Content"),
        media_id=_text(root, "MediaId"),
        pic_url=_text(root, "PicUrl"),
        event=event,
        event_key=_text(root, "EventKey"),
        task_id=_text(root, "TaskId"),
        card_type=_text(root, "CardType"),
        response_code=_text(root, "ResponseCode"),
        selected=_selected(root),
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
