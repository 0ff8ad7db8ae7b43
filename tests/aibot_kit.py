"""The AI bot's side of the test kit: a bot whose only channel (or second channel) is the long
connection to a fake `openws` server on loopback (bot/simulator/fake_openws.py).

`await ai.say("zhangwei", "帮助")` delivers an `aibot_msg_callback` and returns the text of the
`aibot_respond_msg` that answered it (same req_id); `ai.openws` shows every frame the bot sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.aibot import protocol as p
from bot.aibot.service import AibotService
from bot.app import Application
from bot.simulator.fake_openws import FakeOpenWS, Received
from tests.kit import BotKit, wait_until

# Short intervals instead of the SDK's 30 s pings and 30 s leases: nothing in a test waits for long.
FAST = {
    "ping_seconds": 0.15,
    "reconnect_base_seconds": 0.05,
    "reconnect_max_seconds": 0.4,
    "ack_timeout_seconds": 0.5,
    "lease_renew_seconds": 0.1,
    "lease_seconds": 0.8,
    "kicked_pause_seconds": 60,
}


def aibot_overrides(openws: FakeOpenWS, *, with_app: bool = False, **aibot: Any) -> dict[str, Any]:
    """Config overrides for a bot on the fake openws; without the app unless `with_app`."""
    over: dict[str, Any] = {
        "aibot": {"bot_id": openws.bot_id, "secret": openws.secret, "ws_url": openws.url, **FAST, **aibot}
    }
    if not with_app:
        # (the kit's WeComSide still wants an EncodingAESKey; a deployment without any is tested in
        # test_serve_with_only_the_ai_bot_runs_no_simulator_and_no_callback)
        over["wecom"] = {"corp_id": "", "secret": ""}
    return over


class AibotKit:
    def __init__(self, kit: BotKit, openws: FakeOpenWS):
        self.kit = kit
        self.openws = openws

    @property
    def app(self) -> Application:
        return self.kit.app

    @property
    def service(self) -> AibotService:
        assert self.kit.app.aibot is not None
        return self.kit.app.aibot

    async def answer(self, rid: str, cmd: str = p.RESPOND, timeout: float = 5.0) -> Received:
        """The frame that answered callback `rid`."""
        await self.openws.wait_for(
            lambda: any(r.req_id == rid for r in self.openws.frames(cmd)), timeout, f"{cmd} for {rid}"
        )
        return next(r for r in self.openws.frames(cmd) if r.req_id == rid)

    async def say(
        self, userid: str, text: str, *, msgid: str | None = None, group: bool = False, chatid: str = ""
    ) -> str:
        rid = await self.openws.deliver(
            self.openws.text(userid, text, msgid=msgid, group=group, chatid=chatid)
        )
        reply = await self.answer(rid)
        return str(reply.body["stream"]["content"])

    async def deliver_all(self, timeout: float = 5.0) -> None:
        """Drain the outbox until no row is queued or being sent, retries after backoff included."""

        def pending(s: Session) -> int:
            return int(
                s.execute(
                    text("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")
                ).scalar_one()
            )

        async def done() -> bool:
            await self.app.outbox.drain_once()
            return await self.kit.query(pending) == 0

        await wait_until(done, timeout=timeout, what="the outbox delivered everything")

    def pushed(self, chat: str) -> list[str]:
        """What was pushed to `chat` (a userid or a group's chatid) and acknowledged: text or card title."""
        out = []
        for body in self.openws.pushes(chat):
            if body["msgtype"] == "markdown":
                out.append(body["markdown"]["content"])
            elif body["msgtype"] == "template_card":
                out.append(body["template_card"]["main_title"]["title"])
            else:
                out.append(body["msgtype"])
        return out

    def cards(self, chat: str) -> list[dict[str, Any]]:
        return [b["template_card"] for b in self.openws.pushes(chat) if b["msgtype"] == "template_card"]
