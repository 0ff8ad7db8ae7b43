"""The context a handler runs in: who wrote, the open transaction, the clock, and the way out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot import outbox
from bot.replies import Button, Card, File, Image, Markdown, Reply, Text, tone
from bot.wecom.messages import CLICK_EVENTS
from storage.vocabulary import PARTY_STATUSES

if TYPE_CHECKING:
    from bot.config import Config
    from bot.router import Router
    from bot.wecom.messages import Incoming


@dataclass(frozen=True, slots=True)
class Sender:
    """The member who sent a message, with the names of their branch, team, group and module, their
    roles and their own quiet hours: loaded once per message before routing (permissions need the
    roles, 我的 the names and the quiet hours).

    Not `storage.models.Member` (a table row, detached from the session once the look-up ends) and
    not `storage.people.Person` (anyone a practice names or pays, without roles or team names).
    """

    id: int
    userid: str
    name: str
    political_status: str
    roles: frozenset[str]
    branch_id: int | None = None
    branch: str = ""
    team_id: int | None = None
    team: str = ""
    party_group: str = ""
    module: str = ""
    # Their own quiet hours (免打扰): None keeps the workshop's window, "" has none (bot/quiet.py).
    quiet_hours: str | None = None

    @property
    def is_party_member(self) -> bool:
        """党员 or 预备党员."""
        return self.political_status in PARTY_STATUSES

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


@dataclass
class Context:
    """Everything a handler may use. Sends are written to the outbox in the same transaction."""

    session: Session
    config: Config
    router: Router
    message: Incoming
    now: datetime  # aware, in the configured time zone
    member: Sender | None
    has_dialogue: bool  # known from the dispatcher's first look-up
    args: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    out: outbox.Outgoing = field(init=False)

    def __post_init__(self) -> None:
        # What answers the sender leaves now; notices to others wait through their quiet hours.
        self.out = outbox.Outgoing(
            self.session,
            quiet=outbox.QuietRule(self.config, self.now, answering=self.message.sender),
            channel=self.config.personal_channel,
        )

    @property
    def userid(self) -> str:
        return self.message.sender

    @property
    def in_group(self) -> bool:
        """True when the message was written in a group chat (the AI bot, @-mentioned there)."""
        return self.message.chat_type == "group"

    @property
    def by_click(self) -> bool:
        """True when this command came from a button on a card rather than typed text."""
        return self.message.kind == "event" and self.message.event in CLICK_EVENTS

    def send(self, userid: str, reply: Reply | str, *, ref: str = "") -> None:
        """Push a message to a member through the outbox (delivered after this transaction commits)."""
        self.out.send(userid, reply, ref=ref)

    def broadcast(self, group: str, content: Markdown | Image | str) -> None:
        """Post markdown (`tone` spans allowed) or an image to a configured group robot."""
        self.out.broadcast(group, content)

    def fetch_media(self, media_id: str, *, ref: str) -> int:
        """Keep a file the sender sent (e.g. a photo as evidence for `ref`); returns the MediaFile id."""
        m = self.message
        if m.media_url and media_id == m.media_id:  # the AI bot's: an encrypted URL, valid 5 minutes
            return self.out.fetch_media(
                media_id, ref=ref, userid=m.sender, url=m.media_url, aes_key=m.aes_key
            )
        return self.out.fetch_media(media_id, ref=ref, userid=m.sender)

    def update_cards(self, ref: str, label: str) -> None:
        """Grey out the buttons of every card sent about `ref`, showing `label` (e.g. 已通过 · 张三)."""
        self.out.update_cards(ref, label)


__all__ = ["Button", "Card", "Context", "File", "Image", "Markdown", "Sender", "Text", "tone"]
