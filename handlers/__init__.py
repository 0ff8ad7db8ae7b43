"""The practices. Importing this package registers everything they contribute: commands (their
routers), jobs, item kinds, config sections, command-line commands, demo files and 党建看板 panels.

A practice whose commands are not built yet contributes only its config section, so that the shipped
`config.yaml` is validated in full.
"""

from __future__ import annotations

from bot.router import Router
from handlers import (  # noqa: F401 - imported for what they register
    activities,
    activities_config,
    approvals,
    assessment,
    basics,
    board,
    export,
    maintenance,
    points,
    projects,
    projects_config,
    publicity,
    publicity_config,
    quiet,
    rankings,
    skills,
)

MODULES = (
    basics,
    points,
    rankings,
    approvals,
    export,
    skills,
    publicity,
    activities,
    projects,
    assessment,
    quiet,
)  # with commands; 我的 shows their sections in this order


def build_router() -> Router:
    root = Router("pioneer")
    for module in MODULES:
        root.include_router(module.router)
    return root
