"""Pictures drawn when they are sent: renderers by name, so that an outbox row can say what to draw.

A handler answers `Image.drawn("甲班多能工训练表.png", "iluo_matrix", {...})`; the outbox keeps the name
and the JSON input, and its worker draws the PNG in a thread just before the upload. Practices register
their renderers (e.g. `handlers/charts.py`); the runtime knows them only by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


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


async def draw(name: str, data: dict[str, Any]) -> bytes:
    """Draw a registered picture off the event loop. LookupError: no renderer of that name."""
    fn = RENDERERS.get(name)
    if fn is None:
        raise LookupError(f"no picture renderer named {name!r}")
    return await asyncio.to_thread(fn, data)
