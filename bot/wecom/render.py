"""Domain replies as WeCom shows them: template-card JSON, markdown font tags, plain text.

Handlers answer with `bot.replies` value objects; this module is the one place that knows how WeCom
spells a card (`template_card` of type `button_interaction`), a button key and a coloured span.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.replies import TONE_END, TONE_MID, TONE_START, Card

_TONED = re.compile(f"{TONE_START}(info|comment|warning){TONE_MID}(.*?){TONE_END}", re.S)
# WeCom's limits for template-card fields (characters); longer text is cut with an ellipsis.
TITLE_LIMIT, DESC_LIMIT, KEY_LIMIT, VALUE_LIMIT, SUB_TITLE_LIMIT = 26, 30, 10, 26, 100
MAX_FACTS, MAX_BUTTONS = 6, 6


def markdown(content: str) -> str:
    """WeCom markdown: toned spans become `<font color="…">`."""
    return _TONED.sub(lambda m: f'<font color="{m.group(1)}">{m.group(2)}</font>', content)


def plain(content: str) -> str:
    """The same content without tones, for plain text (and the simulator's transcript)."""
    return _TONED.sub(lambda m: m.group(2), content)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_id(ref: str, userid: str, now: datetime) -> str:
    """A card's task_id: unique per card; WeCom allows letters, digits and _-@ up to 128 bytes."""
    safe = re.sub(r"[^A-Za-z0-9_@-]", "-", f"{ref}_{userid}")
    return f"{safe}_{int(now.timestamp() * 1000)}"[:128]


def button_key(command: str, argument: str) -> str:
    """The EventKey a click sends back: `code:argument`, which the router runs like typed text."""
    return f"{command}:{argument}"


def template_card(card: Card, userid: str, now: datetime) -> dict[str, Any]:
    """The `template_card` body of an app message for one recipient."""
    body: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": _cut(card.source, 13)},
        "main_title": {"title": _cut(card.title, TITLE_LIMIT)},
        "button_list": [
            {"text": b.label, "style": 1 if b.primary else 2, "key": button_key(b.command, b.argument)}
            for b in card.buttons[:MAX_BUTTONS]
        ],
        "task_id": task_id(card.ref or "card", userid, now),
    }
    if card.subtitle:
        body["main_title"]["desc"] = _cut(card.subtitle, DESC_LIMIT)
    if card.facts:
        body["horizontal_content_list"] = [
            {"keyname": _cut(k, KEY_LIMIT), "value": _cut(v, VALUE_LIMIT)} for k, v in card.facts[:MAX_FACTS]
        ]
    if card.description:
        body["sub_title_text"] = _cut(card.description, SUB_TITLE_LIMIT)
    return body
