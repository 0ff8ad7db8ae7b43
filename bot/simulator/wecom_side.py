"""WeCom's side of the callback protocol: build encrypted callbacks, post them, read encrypted replies.

The local simulator, the test kit and the benchmark all talk to the bot through this, exactly as
WeCom does: the same XML, the same AES envelope, the same signatures.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import xmltodict
from wechatpy.enterprise import WeChatCrypto

from bot.wecom.messages import PassiveReply, _cdata


@dataclass(frozen=True)
class Delivery:
    """What the bot answered to one callback."""

    status: int
    reply: PassiveReply | None
    body: str


class WeComSide:
    def __init__(self, *, token: str, encoding_aes_key: str, corp_id: str, agent_id: int | str):
        self.crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        self.token = token
        self.corp_id = corp_id
        self.agent_id = str(agent_id)
        self._ids = itertools.count(int(time.time() * 1000) * 1000)

    def next_msg_id(self) -> str:
        return str(next(self._ids))

    def _head(self, user: str, msgtype: str, create_time: int | None) -> str:
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName><FromUserName>{_cdata(user)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType>{_cdata(msgtype)}</MsgType>"
        )

    def text(
        self, user: str, content: str, *, msg_id: str | None = None, create_time: int | None = None
    ) -> str:
        return (
            self._head(user, "text", create_time) + f"<Content>{_cdata(content)}</Content>"
            f"<MsgId>{msg_id or self.next_msg_id()}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def image(self, user: str, media_id: str, *, pic_url: str = "", msg_id: str | None = None) -> str:
        return (
            self._head(user, "image", None)
            + f"<PicUrl>{_cdata(pic_url)}</PicUrl><MediaId>{_cdata(media_id)}</MediaId>"
            f"<MsgId>{msg_id or self.next_msg_id()}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def file(self, user: str, media_id: str, *, msg_id: str | None = None) -> str:
        """A file a member sends in the app (MsgType file, its MediaId)."""
        return (
            self._head(user, "file", None) + f"<MediaId>{_cdata(media_id)}</MediaId>"
            f"<MsgId>{msg_id or self.next_msg_id()}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def event(self, user: str, event: str, *, event_key: str = "", create_time: int | None = None) -> str:
        return (
            self._head(user, "event", create_time) + f"<Event>{_cdata(event)}</Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def card_click(
        self,
        user: str,
        event_key: str,
        *,
        task_id: str,
        card_type: str = "button_interaction",
        response_code: str = "",
        create_time: int | None = None,
    ) -> str:
        return (
            self._head(user, "event", create_time) + "<Event><![CDATA[template_card_event]]></Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey><TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata(card_type)}</CardType><ResponseCode>{_cdata(response_code)}</ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def envelope(
        self, plaintext: str, *, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[str, str]:
        """(query string, body) of the POST WeCom would make for this plaintext."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        sealed = xmltodict.parse(self.crypto.encrypt_message(plaintext, nonce, timestamp))["xml"]
        body = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName><Encrypt>{_cdata(sealed['Encrypt'])}</Encrypt>"
            f"<AgentID>{_cdata(self.agent_id)}</AgentID></xml>"
        )
        query = urlencode({"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce})
        return query, body

    def read_reply(self, body: str) -> PassiveReply | None:
        """Decrypt and read the bot's passive reply; None for an empty acknowledgement."""
        if not body.strip():
            return None
        outer = xmltodict.parse(body)["xml"]
        plain = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        msg = xmltodict.parse(plain)["xml"]
        if msg.get("MsgType") == "update_button":
            return PassiveReply(replace_button=msg["Button"]["ReplaceName"] or "")
        return PassiveReply(text=msg.get("Content") or "")

    async def deliver(self, http: aiohttp.ClientSession, url: str, plaintext: str) -> Delivery:
        query, body = self.envelope(plaintext)
        async with http.post(
            f"{url}?{query}", data=body.encode(), headers={"Content-Type": "text/xml"}
        ) as resp:
            text = await resp.text()
            reply = self.read_reply(text) if resp.status == 200 else None
            return Delivery(resp.status, reply, text)
