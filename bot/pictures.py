"""Pictures drawn when they are sent: renderers by name, so that an outbox row can say what to draw.

A handler answers `Image.drawn("甲班多能工训练表.png", "iluo_matrix", {...})`; the outbox keeps the name
and the JSON input, and its worker draws the PNG (`Drawer`) just before the upload. Practices register
their renderers (e.g. `handlers/charts.py`); the runtime knows them only by name.

A big picture is real work (a 200-person 多能工训练表 is 720 × 6,190 pixels: about 180 ms, most of it
compressing the PNG), and a thread of the bot's own process would take it from the one interpreter
lock that every message needs. So the drawer hands it to a separate process (`outbox.draw_processes`,
started on the first picture with the `spawn` method, so no thread or connection of the bot is copied
into it, and at a lower priority, `NICENESS`, so that on a busy machine the kernel serves the bot
first). If that process dies, the picture is drawn in a thread instead and a new process is started
for the next one; 0 processes draws every picture in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)
NICENESS = 10  # a picture can wait; a member's answer cannot: the kernel gives the bot the CPU first


class PictureError(RuntimeError):
    """A picture cannot be drawn here (no CJK font, too big to send); the message, in Chinese, says
    what to do, and is sent in the picture's place."""


Renderer = Callable[[dict[str, Any]], bytes]
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register `fn(data) -> PNG bytes` under `name`."""

    def register(fn: Renderer) -> Renderer:
        if RENDERERS.get(name, fn) is not fn:
            raise ValueError(f"picture renderer {name!r} registered twice")
        RENDERERS[name] = fn
        return fn

    return register


class Drawer:
    """Draws registered pictures in `processes` separate processes, or in a thread when 0."""

    def __init__(self, processes: int = 1):
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def draw(self, name: str, data: dict[str, Any]) -> bytes:
        """The PNG of picture `name` for `data`. LookupError: no renderer of that name; PictureError
        (raised by the renderer, in whichever process): it cannot be drawn here."""
        fn = RENDERERS.get(name)
        if fn is None:
            raise LookupError(f"no picture renderer named {name!r}")
        if not self.processes:
            return await asyncio.to_thread(fn, data)
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=os.nice, initargs=(NICENESS,)
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, data)
        except BrokenProcessPool:
            log.warning("the picture process died; drawing %s in a thread, a new process next time", name)
            self.close()
            return await asyncio.to_thread(fn, data)

    def close(self) -> None:
        """Stop the drawing process (a picture being drawn is given up: its row is sent again later)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
