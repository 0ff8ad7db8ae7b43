"""Running the bot for real (`serve`) and one job on demand (`jobs run`)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

from bot.app import Application
from bot.config import Config
from bot.front import Front
from bot.scheduler import RunResult

log = logging.getLogger(__name__)


async def serve(
    config: Config,
    stop: asyncio.Event,
    *,
    on_started: Callable[[Application], None] | None = None,
    front: Front | None = None,
) -> None:
    """Run until `stop` is set: WeCom mode with credentials, the local simulator without.

    `on_started` is called with the running application (for tests and embedding). `front`: the
    callback's front process (`bot.front.Front`), started early by the caller so that it comes up while
    this process imports and migrates.
    """
    local = not config.channels  # neither the self-built app nor the AI bot is configured
    if local:
        from bot.simulator.local import local_config, open_simulator

        config = local_config(config)
    app = Application(config, front=front)
    try:
        await app.initialize()
    except BaseException:
        if front is not None:
            front.close()
        raise
    threshold = gc.get_threshold()
    try:
        simulator = await open_simulator(app) if local else None
        await app.start()
        settle_heap()
        if simulator is not None:
            log.info("no WeCom credentials configured: local mode, callback at %s", simulator.callback_url)
            print(f"Pioneer is running in local mode: open {simulator.page_url}", flush=True)
        else:
            log.info(
                "Pioneer is running: channels %s; listening on %s%s",
                ", ".join(config.channels),
                app.url,
                config.server.callback_path
                if app.callback is not None or app.front is not None
                else " (/healthz, /metrics)",
            )
        if app.board is not None:  # the tokens are not logged; the simulator page links to it
            screens = len(config.board.screens)
            log.info("the 党建看板 is at %s%s (%d screens)", app.url, config.board.path, screens)
        if on_started is not None:
            on_started(app)
        await stop.wait()
    finally:
        gc.unfreeze()  # what was kept out of collection is collectable again (an embedder goes on)
        gc.set_threshold(*threshold)
        try:
            await app.stop()
            await app.shutdown()
        finally:
            if front is not None:
                front.close()


GC_YOUNGEST = 10_000  # objects allocated (less those freed) before a collection of the youngest


def settle_heap() -> None:
    """Keep what start-up built (modules, configuration, SQLAlchemy's metadata and compiled statements:
    ~165,000 objects) out of the cyclic garbage collector's way. Each full collection walked them all:
    ~100 ms during which no message was answered, several times a minute under load; once frozen, a
    full collection takes ~0.3 ms (docs/PERFORMANCE.md). Garbage is collected first, so only what is
    alive is frozen; it is still freed when its references go.

    The youngest generation is collected after `GC_YOUNGEST` allocations instead of Python's 700.
    Handling a message leaves no reference cycles behind (its garbage is freed by reference counting;
    tests/test_prebuilt.py checks the Sessions, which did), but the messages under way hold a few
    hundred objects each: at 700 they set off a collection every 30 messages or so, ~0.4 ms each that
    found nothing (about 2 % of the CPU at saturation). Cycles that do form (an exception's traceback)
    are still collected, a little later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST, *gc.get_threshold()[1:])


async def run_job(config: Config, name: str) -> RunResult:
    """Run one scheduled job now and deliver what it queued before returning.

    In local mode the messages go to the simulator; if it is not running they stay queued and the
    bot delivers them once it is.
    """
    if not config.wecom.configured:
        from bot.simulator.local import local_config

        config = local_config(config)
    app = Application(config)
    await app.initialize()
    try:
        result = await app.scheduler.run_now(name)
        while await app.outbox.drain_once():
            pass
        return result
    finally:
        await app.shutdown()
