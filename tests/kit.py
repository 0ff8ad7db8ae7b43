"""The test kit: a real bot on a loopback port, a fake WeCom API, and WeCom's side of the protocol.

A test reads like a conversation: `reply = await bot.say("zhangwei", "帮助")`, then what the fake
API received (`bot.sent_to("zhangwei")`) and what the database holds (`await bot.query(fn)`).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from bot.app import Application
from bot.config import Config, parse_config
from bot.members import import_members
from bot.router import Router
from bot.scheduler import JobFunc
from bot.simulator.fake_api import FakeWeCom, SentMessage
from bot.simulator.wecom_side import Delivery, WeComSide
from bot.wecom.messages import PassiveReply

ROOT = Path(__file__).resolve().parent.parent
CAST = ROOT / "bot" / "simulator" / "cast.csv"
T = TypeVar("T")

CORP_ID = "wwpioneertest"
SECRET = "test-secret"
AGENT_ID = 1000002


def random_aes_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


def shipped_config() -> dict[str, Any]:
    """The shipped config.yaml as data, so tests run against the realistic defaults."""
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_config(database_url: str, api_base: str, **overrides: Any) -> Config:
    raw = shipped_config()
    raw["groups"] = {
        name: {**g, "webhook": f"{api_base}/cgi-bin/webhook/send?key={name}"}
        for name, g in (raw.get("groups") or {}).items()
    }
    raw = merge(
        raw,
        {
            "wecom": {
                "corp_id": CORP_ID,
                "secret": SECRET,
                "agent_id": AGENT_ID,
                "token": "pioneertoken",
                "encoding_aes_key": random_aes_key(),
                "api_base": api_base,
            },
            "server": {"host": "127.0.0.1", "port": 0},
            # Tests fire jobs and write at whatever hour suits them; tests/test_quiet_hours.py turns
            # the shipped window back on where it is the subject.
            "quiet_hours": "",
            "database": {"url": database_url},
            "outbox": {
                "poll_seconds": 0.05,
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                "lease_seconds": 2,
            },
        },
    )
    raw = merge(raw, overrides)
    return parse_config(raw, env={})


class BotKit:
    """One running bot with its fake WeCom API; use through the `bot` / `make_bot` fixtures."""

    def __init__(self, app: Application, fake: FakeWeCom, http: aiohttp.ClientSession):
        self.app = app
        self.fake = fake
        self.http = http
        w = app.config.wecom
        self.wecom = WeComSide(
            token=w.token, encoding_aes_key=w.encoding_aes_key, corp_id=w.corp_id, agent_id=w.agent_id or 0
        )

    @property
    def callback_url(self) -> str:
        return self.app.url + self.app.config.server.callback_path

    # -- what people do ---------------------------------------------------------------------------

    async def deliver(self, plaintext: str) -> Delivery:
        return await self.wecom.deliver(self.http, self.callback_url, plaintext)

    async def say(self, userid: str, text: str, *, msg_id: str | None = None) -> str:
        """Send a text as `userid`; return the passive reply's text ('' when the reply comes later)."""
        d = await self.deliver(self.wecom.text(userid, text, msg_id=msg_id))
        assert d.status == 200, f"callback answered {d.status}: {d.body}"
        return d.reply.text if d.reply else ""

    async def click(
        self,
        userid: str,
        event_key: str,
        *,
        task_id: str = "",
        response_code: str = "",
        create_time: int | None = None,
    ) -> PassiveReply | None:
        d = await self.deliver(
            self.wecom.card_click(
                userid,
                event_key,
                task_id=task_id or event_key,
                response_code=response_code,
                create_time=create_time,
            )
        )
        assert d.status == 200, f"callback answered {d.status}: {d.body}"
        return d.reply

    async def image(
        self, userid: str, data: bytes = b"\x89PNG fake image", filename: str = "photo.png"
    ) -> str:
        media_id = self.fake.store_media(data, filename, "image/png")
        d = await self.deliver(self.wecom.image(userid, media_id))
        assert d.status == 200
        return d.reply.text if d.reply else ""

    async def file(
        self,
        userid: str,
        media_id: str | None = None,
        filename: str = "材料.pdf",
        data: bytes = b"%PDF-1.4 fake document",
    ) -> str:
        """Send a file (MsgType file) as `userid`; its bytes are stored in the fake API under `media_id`
        (a new one if not given) for media/get."""
        if media_id is None:
            media_id = self.fake.store_media(data, filename, "application/pdf")
        d = await self.deliver(self.wecom.file(userid, media_id))
        assert d.status == 200
        return d.reply.text if d.reply else ""

    # -- what came out ----------------------------------------------------------------------------

    async def drain(self, timeout: float = 30.0) -> None:
        """Deliver everything due in the outbox, including what the background worker has in hand.

        The timeout allows for pictures: their process runs at a lower priority (bot/pictures.py), so on
        a machine busy with other work a chart can take seconds."""
        from storage.models import OutboxMessage

        def busy(s: Session) -> bool:
            now = datetime.now(UTC)
            return (
                s.execute(
                    select(OutboxMessage.id)
                    .where(
                        (OutboxMessage.status == "sending")
                        | ((OutboxMessage.status == "queued") & (OutboxMessage.next_attempt_at <= now))
                    )
                    .limit(1)
                ).first()
                is not None
            )

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while await self.app.outbox.drain_once():
                pass
            if not await self.app.db.run(busy):
                return
            if asyncio.get_running_loop().time() > deadline:
                stuck = await self.app.db.run(
                    lambda s: s.execute(
                        text(
                            "SELECT id, target, status, attempts, last_error FROM outbox "
                            "WHERE status IN ('queued', 'sending') ORDER BY id"
                        )
                    ).all()
                )
                raise AssertionError(f"the outbox did not drain within {timeout} s: {stuck}")
            await asyncio.sleep(0.02)

    def watch_wakes(self) -> list[str]:
        """From now on, each time something wakes the outbox worker (a commit that wrote rows that may
        leave now) appends to the returned list instead."""
        woken: list[str] = []
        self.app.outbox.wake = lambda: woken.append("woken")  # type: ignore[method-assign]
        return woken

    def sent_to(self, userid: str, msgtype: str | None = None) -> list[SentMessage]:
        return self.fake.sent(touser=userid, msgtype=msgtype)

    def texts_to(self, userid: str) -> list[str]:
        return [
            m.body.get("content", "")
            for m in self.fake.sent(touser=userid)
            if m.msgtype in ("text", "markdown")
        ]

    async def wait_sent(self, userid: str, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        await self.fake.wait_for(lambda: len(self.fake.sent(touser=userid)) >= count, timeout=timeout)
        return self.fake.sent(touser=userid)

    async def query(self, fn: Any) -> Any:
        return await self.app.db.run(fn)


def quiet_schedules() -> list[dict[str, Any]]:
    """The shipped schedules, never due while a test runs (a 29 February midnight, no catch-up): a test
    fires a job with `scheduler.run(name, when)`, so no answer depends on the minute it runs in."""
    return [{**s, "cron": "0 0 29 2 *", "grace_minutes": 0} for s in shipped_config()["schedules"]]


async def start_bot(
    fake: FakeWeCom,
    http: aiohttp.ClientSession,
    database_url: str,
    *,
    members: bool = True,
    jobs: dict[str, JobFunc] | None = None,
    router: Router | None = None,
    **overrides: Any,
) -> BotKit:
    assert fake.base_url
    if "schedules" not in overrides:
        overrides["schedules"] = quiet_schedules()
    config = make_config(database_url, fake.base_url, **overrides)
    app = Application(config, router=router, jobs=jobs)
    await app.initialize()
    if members:
        text = CAST.read_text(encoding="utf-8")
        await app.db.run(lambda s: import_members(s, text, actor="test"))
    await app.start()
    return BotKit(app, fake, http)


async def stop_bot(kit: BotKit) -> None:
    await kit.app.stop()
    await kit.app.shutdown()


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool], *, timeout: float = 5.0, what: str = "the condition"
) -> None:
    """Poll `condition` until it holds; fail the test when it does not within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.01)


# -- what was recorded, in plain SQL over table names --------------------------------------------
# Kept here so that a change of schema (as when the status columns moved from `submissions` to `items`)
# is adapted in one place.


@dataclass(frozen=True)
class Ledger:
    """How much the points practice holds: numbered items, ledger lines, and the sum of all totals."""

    items: int
    entries: int
    points_x100: int


async def ledger(bot: BotKit) -> Ledger:
    def read(s: Session) -> Ledger:
        one = lambda sql: int(s.execute(text(sql)).scalar_one() or 0)  # noqa: E731
        return Ledger(
            items=one("SELECT count(*) FROM items"),
            entries=one("SELECT count(*) FROM point_entries"),
            points_x100=one("SELECT coalesce(sum(points_x100), 0) FROM member_totals"),
        )

    return await bot.query(read)


async def item_status(bot: BotKit, number: int) -> tuple[str, str]:
    """(status, userid of who decided it or '') of item #number."""
    row = await bot.query(
        lambda s: s.execute(
            text(
                "SELECT i.status, coalesce(m.userid, '') FROM items i "
                "LEFT JOIN members m ON m.id = i.decided_by WHERE i.id = :n"
            ),
            {"n": number},
        ).one()
    )
    return (row[0], row[1])


async def item_entries(bot: BotKit, number: int) -> list[int]:
    """The points (x100) of every ledger line of item #number, in order."""
    return await bot.query(
        lambda s: list(
            s.execute(
                text("SELECT points_x100 FROM point_entries WHERE item_id = :n ORDER BY id"), {"n": number}
            ).scalars()
        )
    )


async def outbox_rows(bot: BotKit) -> int:
    return await bot.query(lambda s: int(s.execute(text("SELECT count(*) FROM outbox")).scalar_one()))


__all__ = [
    "BotKit",
    "Ledger",
    "Session",
    "item_entries",
    "item_status",
    "ledger",
    "outbox_rows",
    "settle",
    "start_bot",
    "stop_bot",
    "wait_until",
]


def watch_statements(bot: BotKit, keep: Callable[[str, Any], None]) -> None:
    """Hand `keep` every SQL statement the bot runs from now on, with its parameters, on any of its
    engines (writer, readers, PostgreSQL's)."""
    db = bot.app.db
    engines = [db.sync_engine, db.read_engine, db.async_engine.sync_engine if db.async_engine else None]
    for engine in {e for e in engines if e is not None}:
        event.listen(
            engine, "before_cursor_execute", lambda _conn, _cursor, sql, params, *_: keep(sql, params)
        )
