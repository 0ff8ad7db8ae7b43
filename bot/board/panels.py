"""What a 党建看板 shows: panels registered by the practices, each built from one transaction.

A panel is a function `(session, config, scope, now) -> dict` (plain JSON data: names and numbers)
registered with `@board_panel(key, title, watches=…)`. `watches` names the change signals of
`storage.board.signals` the panel depends on (plus `clock`, which moves every minute, for panels whose
content depends on the time: today's activities, late milestones); when one of them moves, the open
boards are told to fetch the panel again. `bot/board` serves the panels and knows nothing of points
or skills; `handlers/board.py` registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from bot.config import Config


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose data a board shows: the whole workshop (`branch_id` None) or one branch."""

    board: str  # the board's name in config
    branch: str = ""
    branch_id: int | None = None

    @property
    def label(self) -> str:
        return self.branch or "全车间"


PanelFunc = Callable[[Session, "Config", Scope, datetime], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Panel:
    key: str
    title: str
    build: PanelFunc
    watches: frozenset[str]
    order: int


PANELS: dict[str, Panel] = {}
CLOCK = "clock"  # a signal that moves once a minute


def board_panel(
    key: str, title: str, *, watches: tuple[str, ...], order: int
) -> Callable[[PanelFunc], PanelFunc]:
    """Register a board panel under `key` (letters, digits, '_'), shown in `order`."""

    def register(func: PanelFunc) -> PanelFunc:
        if key in PANELS and PANELS[key].build is not func:
            raise ValueError(f"board panel {key!r} registered twice")
        PANELS[key] = Panel(key, title, func, frozenset(watches), order)
        return func

    return register


def ordered() -> list[Panel]:
    return sorted(PANELS.values(), key=lambda p: p.order)


def changed_panels(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Keys of the panels a signal they watch moved between two readings of the signals."""
    moved = {k for k in after if before.get(k) != after[k]}
    return [p.key for p in ordered() if p.watches & moved]
