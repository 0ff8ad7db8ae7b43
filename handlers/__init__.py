"""Handler modules, one per practice; importing the package registers their commands and jobs."""

from __future__ import annotations

from bot.router import Router
from handlers import approvals, basics, export, points, rankings

MODULES = (basics, points, approvals, rankings, export)


def build_router() -> Router:
    root = Router("pioneer")
    for module in MODULES:
        root.include_router(module.router)
    return root
