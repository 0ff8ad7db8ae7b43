"""The item-kind registry: everything that waits for a decision is a kind, registered once by its
practice, and `handlers/approvals.py` decides every kind through it without knowing any of them.

A kind says who approves it, how its card and notices read, what approving books, and what voiding
undoes. The defaults fit a claim for points decided by the owner's branch secretary; a practice
overrides what differs (an innovation pays its whole team; an article is decided by its module's
lead; a training step by the trainee).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy.orm import Session

from bot.config import Config
from bot.context import Context, Sender
from bot.replies import Button, Card
from handlers.ledger import Booked, reverse_item
from storage import items as item_store
from storage import people
from storage.items import Item
from storage.people import Person
from storage.vocabulary import Role

KINDS: dict[str, ItemKind] = {}


class ItemKind:
    """How one kind of item is decided. Subclass, set `name`, override what differs, `register()`."""

    name: ClassVar[str]  # stored in items.kind and shown to people: 尽责, 创新, 投稿 …
    noun: ClassVar[str] = "申报"  # what people call one: 申报, 稿件, 带教记录
    source: ClassVar[str] = "先锋 · 积分审核"  # the card's top line
    approve_label: ClassVar[str] = "通过"
    reject_label: ClassVar[str] = "驳回"
    takes_evidence: ClassVar[bool] = True  # photos sent within 10 minutes attach to it
    # Every role that may ever decide this kind: who sees 待审, 通过 and 驳回 in 帮助.
    decider_roles: ClassVar[frozenset[str]] = frozenset({Role.SECRETARY, Role.COMMITTEE})

    # -- who decides --------------------------------------------------------------------------------

    def approver_roles(self, config: Config) -> Sequence[str]:
        """Roles that decide this kind within the owner's branch (`committee`: any branch)."""
        return (Role.SECRETARY,)

    def beneficiaries(self, session: Session, item: Item) -> list[int]:
        """Everyone the item pays: nobody decides an item that pays them."""
        return [item.member_id] if item.member_id is not None else []

    def approvers(
        self, session: Session, config: Config, item: Item, paid: Sequence[int] | None = None
    ) -> list[Person]:
        """Who receives the card: the branch's approvers, the committee where configured, and the
        committee when the branch has nobody else. Never someone the item pays (`paid`, when the
        caller knows them already, saves looking them up)."""
        excluded = set(self.beneficiaries(session, item) if paid is None else paid)
        found: list[Person] = []
        for role in self.approver_roles(config):
            if role == Role.COMMITTEE:
                found += people.with_role(session, Role.COMMITTEE)
            elif item.branch_id is not None:
                found += people.with_role(session, role, item.branch_id)
        found = [p for p in found if p.id not in excluded]
        if not found:
            found = [p for p in people.with_role(session, Role.COMMITTEE) if p.id not in excluded]
        return list({p.id: p for p in found}.values())

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        """Why `member` may not decide (or void) `item`, or None. Checked for typed commands and clicks."""
        if member.id in self.beneficiaries(session, item):
            return f"#{item.id} 是你自己的{self.noun}，不能由你审核，已交给其他审核人处理。"
        if member.has(Role.COMMITTEE):
            return None  # 党总支: every branch
        roles = [r for r in self.approver_roles(config) if r != Role.COMMITTEE]
        if member.has(*roles):
            if member.branch_id is not None and member.branch_id == item.branch_id:
                return None
            branch = people.branch_name(session, item.branch_id) or "未登记支部"
            return f"#{item.id} 是{branch}成员的事项，只能由该支部书记或党总支处理。"
        return f"#{item.id} 只能由支部书记或党总支处理。"

    # -- how it reads -------------------------------------------------------------------------------

    def value(self, session: Session, item: Item) -> str:
        """What it is worth, for lists and cards ("3 分"), or ""."""
        return ""

    def values(self, session: Session, item_ids: Sequence[int]) -> dict[int, str]:
        """`value` of several items of this kind at once (for 我的, on every member's hot path);
        override with one query where `value` reads a table."""
        found = {i: session.get(Item, i) for i in item_ids}
        return {i: self.value(session, item) for i, item in found.items() if item is not None}

    def facts(self, session: Session, config: Config, item: Item) -> list[tuple[str, str]]:
        """The card's lines after 提交人 (e.g. 指标, 分值, each member's share)."""
        value = self.value(session, item)
        return [("分值", value)] if value else []

    def description(self, session: Session, item: Item) -> str:
        """The longer text under the card's facts (what the member wrote)."""
        return ""

    def card(
        self,
        session: Session,
        config: Config,
        item: Item,
        owner: Person,
        evidence: int = 0,
        *,
        facts: Sequence[tuple[str, str]] | None = None,
        description: str | None = None,
    ) -> Card:
        """The approval card. A handler that has just built the item passes its `facts` and
        `description` instead of having them read back from the tables."""
        assert item.id is not None
        lines = self.facts(session, config, item) if facts is None else list(facts)
        facts = [("提交人", f"{owner.name}（{owner.branch or '未登记支部'}）"), *lines]
        if self.takes_evidence:
            facts.append(("证明材料", f"{evidence} 个"))
        return Card(
            title=f"{item.kind}{self.noun} #{item.id}",
            subtitle=item.title,
            source=self.source,
            facts=tuple(facts),
            description=self.description(session, item) if description is None else description,
            buttons=(
                Button(self.approve_label, "approve", str(item.id)),
                Button(self.reject_label, "reject", str(item.id), primary=False),
            ),
            ref=ref(item.id),
        )

    # -- what a decision does -----------------------------------------------------------------------

    def blocker(self, ctx: Context, item: Item) -> str | None:
        """Why the item cannot be approved now even by the right person (e.g. a cap reached since)."""
        return None

    def approve(self, ctx: Context, item: Item, approver: Sender) -> list[Booked]:
        """Book what approving pays (ledger lines, levels, states); returns who got what."""
        return []

    def void(self, ctx: Context, item: Item, voider: Sender, reason: str) -> list[Booked]:
        """Undo an approved item: reversal lines for every ledger line it booked."""
        assert item.id is not None
        return reverse_item(ctx.session, item.id, voider.id, ctx.now, reason)

    def register(self) -> ItemKind:
        if self.name in KINDS:
            raise ValueError(f"item kind {self.name!r} registered twice")
        KINDS[self.name] = self
        return self


def kind_of(item: Item) -> ItemKind:
    """The registered kind of an item; a kind that went away in an upgrade is a programming error."""
    return KINDS[item.kind]


# An item's number as typed: at most nine digits, so that no number a person (or a fuzzer) types can
# overflow the database's integer (PostgreSQL's is 32-bit); a longer one is simply not a number here.
NUMBER = r"(?<!\d)(\d{1,9})(?!\d)"


def ref(item_id: int | None) -> str:
    """What cards and files about an item are filed under."""
    return f"item:{item_id}"


def submit(
    ctx: Context,
    item: Item,
    owner: Person,
    *,
    paid: Sequence[int] | None = None,
    facts: Sequence[tuple[str, str]] | None = None,
    description: str | None = None,
) -> list[Person]:
    """Ask an item's approvers to decide it: record who was asked and send each of them the card.

    A claim is on the hot path: the handler that built the item passes who it pays and the card's
    facts and description it already holds, so nothing is read back."""
    assert item.id is not None
    kind = kind_of(item)
    approvers = kind.approvers(ctx.session, ctx.config, item, paid)
    item_store.ask(ctx.session, item.id, [a.id for a in approvers])
    # Photos can only follow the claim: the card says 0.
    card = kind.card(ctx.session, ctx.config, item, owner, facts=facts, description=description)
    for a in approvers:
        ctx.send(a.userid, card)
    return approvers


def waiting_for(approvers: Sequence[Person]) -> str:
    """ "等待 张伟、吴昊 审核。" — said when an item is submitted."""
    if not approvers:
        return "暂时没有可以审核的人，请联系管理员。"
    names = "、".join(a.name for a in approvers[:3]) + ("等" if len(approvers) > 3 else "")
    return f"等待 {names} 审核。"
