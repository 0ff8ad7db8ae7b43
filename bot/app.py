"""The running bot: its parts, wired, with an explicit lifecycle (initialize → start → stop → shutdown).

One `Application` owns the database, the WeCom API client, the dispatcher behind the callback, the
outbox worker and the scheduler, and serves the callback, `/healthz` and `/metrics` over aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy.orm import configure_mappers

from bot import __version__, outbox
from bot.aibot.service import AibotService
from bot.board import Board
from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.front import Front
from bot.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.outbox import OutboxWorker
from bot.router import Router
from bot.scheduler import JobFunc, Scheduler
from bot.wecom.client import WeComClient
from storage.database import Database
from storage.migrate import upgrade

if TYPE_CHECKING:
    from bot.wecom.callback import WeComCallback

log = logging.getLogger(__name__)


class Application:
    """Pioneer, assembled from a validated `Config`."""

    def __init__(
        self,
        config: Config,
        *,
        router: Router | None = None,
        jobs: dict[str, JobFunc] | None = None,
        front: Front | None = None,
    ):
        if router is None:
            from handlers import build_router

            router = build_router()
        self.config = config
        self.router = router
        self.metrics = Metrics()
        self.db = Database(
            config.database.url,
            busy_timeout_ms=config.database.busy_timeout_ms,
            pool_size=config.database.pool_size,
            batch_max=config.database.batch_max,
            readers=config.database.readers,
        )
        self._jobs = jobs
        self.http: aiohttp.ClientSession | None = None
        self.started_at = time.time()
        self.extra_routes: list[web.RouteDef] = []
        self.subapps: list[tuple[str, web.Application]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.board: Board | None = None
        self.front = front  # the callback's front process (bot/front.py), started by `serve`
        self._front_callback_at: float | None = None

    async def initialize(self, *, migrate: bool = True) -> None:
        """Migrate the database and build the parts; nothing runs in the background yet."""
        if migrate:
            await asyncio.to_thread(upgrade, self.config.database.url)
        # Every model is imported by now (the handlers were): configure SQLAlchemy's mappers here, not
        # at the first ORM query. Values built with `model_construct` (a claim's Item) are read through
        # the mapped attributes, and a process whose first work was a claim failed every one.
        configure_mappers()
        self.db.start()
        cfg = self.config
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=cfg.outbox.request_timeout_seconds)
        )
        self.client = WeComClient(
            self.http,
            corp_id=cfg.wecom.corp_id,
            secret=cfg.wecom.secret,
            agent_id=cfg.wecom.agent_id,
            api_base=cfg.wecom.api_base,
            timeout=cfg.outbox.request_timeout_seconds,
            observer=self.metrics,
        )
        self.outbox = OutboxWorker(self.db, self.client, cfg, self.metrics)
        self.dispatcher = Dispatcher(self.db, cfg, self.router, self.outbox, self.metrics)
        self.aibot: AibotService | None = None
        if cfg.aibot.configured:  # the AI bot's long connection (bot/aibot), beside or instead of the app
            self.aibot = AibotService(self.db, cfg, self.dispatcher, wake=self.outbox.wake)
            self.outbox.aibot = self.aibot
        self.scheduler = Scheduler(self.db, cfg, self.outbox, self.metrics, jobs=self._jobs)
        self.callback: WeComCallback | None = None
        # The AI bot alone needs no callback endpoint; with a front process, the front answers it (and
        # this process does not import its cipher).
        if cfg.wecom.encoding_aes_key and self.front is None:
            from bot.wecom.callback import WeComCallback

            self.callback = WeComCallback(
                token=cfg.wecom.token,
                encoding_aes_key=cfg.wecom.encoding_aes_key,
                corp_id=cfg.wecom.corp_id,
                dispatch=self.dispatcher,
                max_clock_skew=cfg.server.max_clock_skew,
                max_body_bytes=cfg.server.max_body_bytes,
                observer=self.metrics,
            )
        if cfg.board.enabled:
            self.board = Board(cfg, self.db)
            self.dispatcher.committed.append(self.board.poke)

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.server.max_body_bytes + 1024)
        if self.callback is not None:
            app.add_routes(self.callback.routes(self.config.server.callback_path))
        app.add_routes([web.get("/healthz", self.healthz), web.get("/metrics", self.metrics_view)])
        app.add_routes(self.extra_routes)
        if self.board is not None:
            self.board.install(app)
        for prefix, sub in self.subapps:
            app.add_subapp(prefix, sub)
        return app

    async def start(self, *, serve: bool = True, workers: bool = True) -> None:
        """Start the background work and, with `serve`, listen on `server.host:server.port`."""
        if serve:
            self._runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
            await self._runner.setup()
            if self.front is not None:  # the front holds the port and passes on what is not a callback
                await web.SockSite(self._runner, self.front.upstream).start()
                await self.front.attach(
                    self.dispatcher.submit, observer=self.metrics, seen=self._callback_seen
                )
                self.url = self.front.url
            else:
                site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
                await site.start()
                port = self._runner.addresses[0][1]  # the real port when server.port is 0
                self.url = f"http://{self.config.server.host}:{port}"
            if self.board is not None:
                await self.board.start()
        if workers:
            await self.outbox.start()
            await self.scheduler.start()
            if self.aibot is not None:
                await self.aibot.start()

    def _callback_seen(self) -> None:
        self._front_callback_at = time.time()

    @property
    def last_callback_at(self) -> float | None:
        """When the last callback was read (verified, decrypted and parsed), here or in the front."""
        return self.callback.last_callback_at if self.callback is not None else self._front_callback_at

    async def stop(self) -> None:
        if getattr(self, "aibot", None) is not None:
            await self.aibot.stop()  # type: ignore[union-attr]
        if self.board is not None:
            await self.board.stop()  # its event streams end, in the front too
        if self.front is not None:  # it finishes its callbacks, answered from here
            await self.front.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if getattr(self, "dispatcher", None) is not None:
            await self.dispatcher.drain()
        if getattr(self, "scheduler", None) is not None:
            await self.scheduler.stop()
        if getattr(self, "outbox", None) is not None:
            await self.outbox.stop()

    async def shutdown(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        await self.db.close()

    # -- operations endpoints -------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        db_ok = await self.db.usable()  # answers, and takes writes again after one failed
        status: dict[str, Any] = {
            "status": "ok" if db_ok else "unavailable",
            "version": __version__,
            "database": {"reachable": db_ok, "backend": self.db.dialect},
            "scheduler": {"running": self.scheduler.running},
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "last_callback_at": (
                datetime.fromtimestamp(self.last_callback_at, UTC).isoformat()
                if self.last_callback_at
                else None
            ),
        }
        if not db_ok and self.db.write_failure:
            status["database"]["write_failure"] = self.db.write_failure
        if db_ok:
            status["outbox"] = await self._outbox_gauges()
        # Pushes die on these until someone changes a setting; the instance itself is healthy, so
        # the answer stays 200 and only the status word and the list say so.
        problems = [p.as_json() for p in self.outbox.problems.active]
        status["config_problems"] = problems
        if self.aibot is not None:  # taken over by another connection (disconnected_event) shows here
            status["aibot"] = self.aibot.status()
        if problems and db_ok:
            status["status"] = "misconfigured"
        return status

    async def _outbox_gauges(self) -> dict[str, Any]:
        box = await outbox.stats(self.db)
        self.metrics.outbox_depth.set(box["depth"])
        self.metrics.outbox_oldest.set(box["oldest_age_seconds"])
        self.metrics.outbox_dead.set(box["dead"])
        return box

    async def healthz(self, request: web.Request) -> web.Response:
        status = await self.health()
        return web.json_response(
            status,
            status=200 if status["database"]["reachable"] else 503,
            dumps=functools.partial(json.dumps, ensure_ascii=False),
        )

    async def metrics_view(self, request: web.Request) -> web.Response:
        if await self.db.ping():
            await self._outbox_gauges()
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
