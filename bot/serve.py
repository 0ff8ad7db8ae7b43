"""Running the bot for real (`serve`) and one job on demand (`jobs run`)."""

from __future__ import annotations

import asyncio
import logging

from bot.app import Application
from bot.config import Config
from bot.scheduler import RunResult

log = logging.getLogger(__name__)


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run until `stop` is set: WeCom mode with credentials, the local simulator without."""
    app = Application(config)
    await app.initialize()
    try:
        await app.start()
        log.info("Pioneer is listening on %s%s", app.url, config.server.callback_path)
        await stop.wait()
    finally:
        await app.stop()
        await app.shutdown()


async def run_job(config: Config, name: str) -> RunResult:
    """Run one scheduled job now and deliver what it queued before returning."""
    app = Application(config)
    await app.initialize()
    try:
        result = await app.scheduler.run_now(name)
        while await app.outbox.drain_once():
            pass
        return result
    finally:
        await app.shutdown()
