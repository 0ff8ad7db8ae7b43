"""Pictures drawn when they are sent: renderers by name, so that an outbox row can say what to draw.

A handler answers `Image.drawn("甲班多能工训练表.png", "iluo_matrix", {...})`; the outbox keeps the name
and the JSON input, and its worker draws the PNG (`Drawer`) just before the upload. Practices register
their renderers (e.g. `handlers/charts.py`); the runtime knows them only by name.

A big picture is real work (a 200-person 多能工训练表 is 720 × 6,190 pixels: about 180 ms, most of it
compressing the PNG), and a thread of the bot's own process would take it from the one interpreter
lock that every message needs. So the drawer hands it to a separate process (`outbox.draw_processes`),
started in the background as the outbox starts (`Drawer.warm`: it takes about 2 s, which the first
picture should not wait for while its row's lease runs), with the `spawn` method so that no thread or
connection of the bot is copied into it, and at a lower priority (`NICENESS`) so that on a busy
machine the kernel serves the bot first. The process serves every application of the Python process
and ends with it, also when the bot is killed (it watches its parent). If it dies, the picture is
drawn in a thread instead and a new process is started for the next one; 0 processes draws every
picture in a thread.

A renderer's picture depends on its data alone, so the drawer keeps the last few pictures it drew
(`KEEP`, by renderer and data) and draws a picture already being drawn only once: eight people asking
for the same team's matrix at once, or one asking again, get the picture drawn the first time.

A program that starts the bot from a script of its own must guard it with `if __name__ ==
"__main__":` (as `python -m bot` needs no guard): `spawn` runs the main script again in the child.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)
NICENESS = 10  # a picture can wait; a member's answer cannot: the kernel gives the bot the CPU first
PARENT_CHECK_SECONDS = 1.0  # how soon a drawing process notices that its bot has gone
KEEP = 8  # pictures kept after drawing, by renderer and data (a 200-person matrix is about 200 KB)


class PictureError(RuntimeError):
    """A picture cannot be drawn here (no CJK font, too big to send); the message, in Chinese, says
    what to do, and is sent in the picture's place."""


Renderer = Callable[[dict[str, Any]], bytes]  # a pure function: the same data draws the same picture
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register `fn(data) -> PNG bytes` under `name`."""

    def register(fn: Renderer) -> Renderer:
        if RENDERERS.get(name, fn) is not fn:
            raise ValueError(f"picture renderer {name!r} registered twice")
        RENDERERS[name] = fn
        return fn

    return register


# One pool per process count for the whole Python process: a bot process has one application, and the
# drawing process's start (about 2 s: it imports the practices to find their renderers) is paid once,
# not per application (tests start hundreds). Its workers end with the interpreter.
_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(processes: int) -> ProcessPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(processes)
        if pool is None:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                processes, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
            )
            _POOLS[processes] = pool
        return pool


def _start_worker(parent: int) -> None:
    """In a drawing process: yield to the bot (`NICENESS`), and end when the bot has ended. A bot that
    exits normally shuts its pool down, but one killed (SIGKILL, or a stop that timed out) does not,
    and the worker, which holds its own end of the pool's pipes, would wait for work for ever."""
    os.nice(NICENESS)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _discard(pool: ProcessPoolExecutor) -> None:
    """Forget a pool whose process died (the next picture starts a new one)."""
    with _POOLS_LOCK:
        for processes, known in list(_POOLS.items()):
            if known is pool:
                del _POOLS[processes]
    pool.shutdown(wait=False, cancel_futures=True)


def _ready() -> None:
    """Nothing: submitted to start the drawing process before the first picture needs it."""


class Drawer:
    """Draws registered pictures in `processes` separate processes, or in a thread when 0."""

    def __init__(self, processes: int = 1):
        self.processes = processes
        self._kept: OrderedDict[bytes, bytes] = OrderedDict()  # the last `KEEP` pictures drawn
        self._drawing: dict[bytes, asyncio.Future[bytes]] = {}  # pictures being drawn now

    def warm(self) -> Future[None] | None:
        """Start the drawing process now, in the background, so that the first picture does not wait
        for it (about 2 s) while its outbox row's lease runs; the future is done once it runs."""
        return _pool(self.processes).submit(_ready) if self.processes else None

    async def draw(self, name: str, data: dict[str, Any]) -> bytes:
        """The PNG of picture `name` for `data`: kept from an earlier drawing of the same, waited for if
        it is being drawn, or drawn now. LookupError: no renderer of that name; PictureError (raised by
        the renderer, in whichever process): it cannot be drawn here."""
        fn = RENDERERS.get(name)
        if fn is None:
            raise LookupError(f"no picture renderer named {name!r}")
        key = hashlib.blake2b(json.dumps([name, data], ensure_ascii=False).encode(), digest_size=16).digest()
        if (kept := self._kept.get(key)) is not None:
            self._kept.move_to_end(key)
            return kept
        drawing = self._drawing.get(key)
        if drawing is None:
            drawing = asyncio.ensure_future(self._draw(name, fn, data))
            self._drawing[key] = drawing
            drawing.add_done_callback(functools.partial(self._drawn, key))
        return await asyncio.shield(drawing)  # a waiter that leaves does not cancel the others' picture

    def _drawn(self, key: bytes, drawing: asyncio.Future[bytes]) -> None:
        """A drawing ended: keep its picture (not a failure: the next ask tries again)."""
        del self._drawing[key]
        if drawing.cancelled() or drawing.exception() is not None:
            return
        self._kept[key] = drawing.result()
        while len(self._kept) > KEEP:
            self._kept.popitem(last=False)

    async def _draw(self, name: str, fn: Renderer, data: dict[str, Any]) -> bytes:
        if not self.processes:
            return await asyncio.to_thread(fn, data)
        pool = _pool(self.processes)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, data)
        except BrokenProcessPool:
            log.warning("the picture process died; drawing %s in a thread, a new process next time", name)
            _discard(pool)
            return await asyncio.to_thread(fn, data)
