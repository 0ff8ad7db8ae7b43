"""What a handler can answer with. Plain text can go back passively; the rest goes through the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Text:
    content: str


@dataclass(frozen=True, slots=True)
class Markdown:
    content: str


@dataclass(frozen=True, slots=True)
class Card:
    """A WeCom template card (`card` is the `template_card` body); `ref` names what it is about."""

    card: dict[str, Any]
    ref: str = ""


@dataclass(frozen=True, slots=True)
class File:
    """A file sent back to the person, e.g. an .xlsx export; the bytes are kept until it is sent."""

    filename: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReplaceButton:
    """After a card click: grey out the clicked card's buttons with this label (passive reply)."""

    label: str


Reply = Text | Markdown | Card | File | ReplaceButton
HandlerResult = str | Reply | list[Reply] | None


def as_replies(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, str):
        return [Text(result)] if result else []
    if isinstance(result, list):
        return [r for r in result if r is not None]
    return [result]
