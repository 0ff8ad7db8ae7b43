"""Points as every practice books and shows them: whole hundredths in storage (`x100`), the
append-only ledger line with its period totals, and reversal of an item's lines when it is voided.

A practice that pays points (尽责, 创新, and later 带教, 录用, 签到, 结题) books through `book`, so
every entry carries who, what, which item, who approved and when, and moves the totals with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from handlers.periods import period_keys
from storage import people
from storage import points as ledger
from storage.people import Person
from storage.points import INNOVATION


def x100(points: float) -> int:
    return round(points * 100)


def fmt(points_x100: int) -> str:
    """250 → "2.5", 300 → "3", -200 → "-2"."""
    sign = "-" if points_x100 < 0 else ""
    whole, frac = divmod(abs(points_x100), 100)
    return f"{sign}{whole}" if not frac else f"{sign}{whole}.{frac:02d}".rstrip("0")


def signed(points_x100: int) -> str:
    return ("+" if points_x100 > 0 else "") + fmt(points_x100)


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Booked:
    """One member's part of a booking (or a reversal: negative points)."""

    member: Person
    points_x100: int


def book(
    session: Session,
    who: Person,
    points_x100: int,
    *,
    category: str,
    indicator: str,
    day: date,
    at: datetime,
    item_id: int | None,
    approver_id: int | None,
    note: str = "",
) -> Booked:
    """Write one ledger line for `who` and move their totals for the week, month, quarter and year."""
    ledger.add_entry(
        session,
        member_id=who.id,
        branch_id=who.branch_id,
        team_id=who.team_id,
        points_x100=points_x100,
        category=category,
        indicator=indicator,
        day=day,
        at=at,
        periods=period_keys(day),
        item_id=item_id,
        approver_id=approver_id,
        note=note,
        in_total=category != INNOVATION,
    )
    return Booked(who, points_x100)


def reverse_item(session: Session, item_id: int, voider_id: int, at: datetime, reason: str) -> list[Booked]:
    """Cancel an item's ledger lines with reversal lines (the originals stay as they were)."""
    done = []
    for e in ledger.unreversed(ledger.entries_of_item(session, item_id)):
        who = people.by_id(session, e.member_id) if e.member_id is not None else None
        if who is None:
            continue
        ledger.add_entry(
            session,
            member_id=who.id,
            branch_id=who.branch_id,
            team_id=who.team_id,
            points_x100=-e.points_x100,
            category=e.category,
            indicator=e.indicator,
            day=e.day,
            at=at,
            periods=period_keys(e.day),
            item_id=item_id,
            approver_id=voider_id,
            note=reason,
            kind="reversal",
            reverses_entry_id=e.id,
            in_total=e.category != INNOVATION,
        )
        done.append(Booked(who, -e.points_x100))
    return done
