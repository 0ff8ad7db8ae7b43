"""What a handler can answer with, in the domain's terms: text, markdown, a card with buttons, a file,
an image. How each looks on the wire (WeCom JSON, font tags, passive-reply XML) is decided in
`bot/wecom/render.py` and `bot/outbox.py`; handlers never build it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Tone = Literal["info", "comment", "warning"]  # highlighted (green), muted (grey), alarming (orange)

# A toned span inside markdown is written between private-use characters, so that it survives string
# formatting and splitting and cannot be confused with anything a person types.
_OPEN, _MID, _CLOSE = "\ue000", "\ue001", "\ue002"
TONE_START, TONE_MID, TONE_END = _OPEN, _MID, _CLOSE


def tone(text: str, kind: Tone) -> str:
    """Mark `text` inside a `Markdown` reply as highlighted (`info`), muted (`comment`) or a warning."""
    return f"{_OPEN}{kind}{_MID}{text}{_CLOSE}"


@dataclass(frozen=True, slots=True)
class Text:
    content: str


@dataclass(frozen=True, slots=True)
class Markdown:
    """Markdown as WeCom's clients show it: `**bold**`, `### headings`, `> quotes`, and `tone(...)` spans."""

    content: str


@dataclass(frozen=True, slots=True)
class Button:
    """A card button that runs command `command` (its code) with `argument`, as if typed."""

    label: str
    command: str
    argument: str = ""
    primary: bool = True


@dataclass(frozen=True, slots=True)
class Card:
    """A card about one thing (`ref`, e.g. `item:12`) with facts and buttons, e.g. an approval request.

    After a decision every card sent about `ref` is greyed out with a label (`Context.update_cards`).
    """

    title: str
    buttons: tuple[Button, ...]
    ref: str = ""
    subtitle: str = ""
    facts: tuple[tuple[str, str], ...] = ()  # (name, value) lines, shown in order
    description: str = ""
    source: str = "先锋"


@dataclass(frozen=True, slots=True)
class File:
    """A file sent back to the person, e.g. an .xlsx export; the bytes are kept until it is sent."""

    filename: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Image:
    """A PNG or JPEG picture (a chart, a skill matrix); at most 2 MB so that group robots take it too.

    Either its bytes, or a drawing made when it is sent: `Image.drawn(filename, name, data)` names a
    renderer registered with `bot.pictures.renderer` and its JSON input, so that a handler does not
    spend its transaction (or the single SQLite writer) drawing; the picture follows its text."""

    filename: str
    data: bytes = field(default=b"", repr=False)
    drawing: tuple[str, dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def drawn(cls, filename: str, renderer: str, data: dict[str, Any]) -> Image:
        return cls(filename, drawing=(renderer, data))


@dataclass(frozen=True, slots=True)
class ReplaceButton:
    """After a card click: grey out the clicked card's buttons with this label (passive reply)."""

    label: str


Reply = Text | Markdown | Card | File | Image | ReplaceButton
HandlerResult = str | Reply | list[Reply] | None


def as_replies(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, str):
        return [Text(result)] if result else []
    if isinstance(result, list):
        return [r for r in result if r is not None]
    return [result]
