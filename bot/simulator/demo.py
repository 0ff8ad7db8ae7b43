"""Demo history for local mode: weeks of chat replayed through the real handlers before the page opens.

A freshly started demo has no points, so 排行, 我的, 待审 and the ranking broadcasts would all be empty
on the first click. Each practice therefore ships a script of chat steps (`DEMO_HISTORY` in a
`<module>_demo` companion of its handler module): who typed what, or which card button they clicked,
and when — days ago and a time of day. `seed` feeds the steps, merged in time order, through the real
`Dispatcher` with its clock set to each step's time, exactly as callbacks would arrive, so the history
obeys every rule the handlers enforce and changes with them.

Steps refer to what earlier steps created by a label: a step with `label="王芳-换型"` remembers the
`#N` in the bot's answer, and a later `{王芳-换型}` in a text (or `item="王芳-换型"` on a click) becomes
that `#N`, so no script hard-codes item numbers.

What the handlers pushed while the past was replayed is marked as already sent, except the approval
cards still waiting for a decision: those are delivered when the bot starts, so the secretaries find
them in their conversations.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.members import ImportReport
from bot.wecom.messages import Incoming
from storage.models import InboxEntry, OutboxMessage

if TYPE_CHECKING:
    from bot.app import Application


# A practice's importer for one of the demo's CSV files beside `cast.csv` (registered here, in a module
# the handlers import anyway, so that serving does not import the simulator's page and its cipher).
DemoImporter = Callable[[Session, Config, str], ImportReport]
DEMO_FILES: dict[str, DemoImporter] = {}


def demo_file(name: str) -> Callable[[DemoImporter], DemoImporter]:
    """Register a practice's importer for one of the demo's CSV files beside `cast.csv`."""

    def register(func: DemoImporter) -> DemoImporter:
        DEMO_FILES[name] = func
        return func

    return register


log = logging.getLogger(__name__)

_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]  # SQLModel hides the Core table
_INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_NUMBER = re.compile(r"[#＃](\d+)")
GAP = timedelta(minutes=1)  # steps moved before "now" keep their order, this far apart


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a member did in the demo's past: typed `say`, or clicked button `click` on a card.

    `days_ago` and `at` ("HH:MM", in the configured time zone) say when. `label` names the `#N` in
    the bot's answer for later steps; `item` names the item whose card is clicked.
    """

    who: str  # userid in the demo cast
    days_ago: int
    at: str
    say: str = ""
    click: str = ""
    item: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if bool(self.say) == bool(self.click):
            raise ValueError(f"a step either says or clicks: {self}")
        if self.click and not self.item:
            raise ValueError(f"a click needs the item whose card is clicked: {self}")
        hour, _, minute = self.at.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ValueError(f"at must be HH:MM: {self}")

    def when(self, today: datetime) -> datetime:
        hour, _, minute = self.at.partition(":")
        day = today.date() - timedelta(days=self.days_ago)
        return datetime.combine(day, clock_time(int(hour), int(minute)), tzinfo=today.tzinfo)


def say(who: str, days_ago: int, at: str, text: str, *, label: str = "") -> Step:
    """`who` types `text` (one line, or a form with one `字段：值` per line)."""
    return Step(who, days_ago, at, say=text, label=label)


def click(who: str, days_ago: int, at: str, button: str, item: str) -> Step:
    """`who` clicks `button` (通过, 驳回, …) on the card they received about `item`."""
    return Step(who, days_ago, at, click=button, item=item)


def histories(modules: Iterable[ModuleType]) -> tuple[Step, ...]:
    """Every practice's `DEMO_HISTORY`, from the `<module>_demo` companion of each handler module."""
    steps: list[Step] = []
    for module in modules:
        name = f"{module.__name__}_demo"
        try:
            demo = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # this practice has no demo history
        steps.extend(getattr(demo, "DEMO_HISTORY", ()))
    return tuple(steps)


def timeline(steps: Iterable[Step], now: datetime) -> list[tuple[datetime, Step]]:
    """The steps with their times, in time order (stable for equal times), all before `now`.

    A script is written once, but runs at any hour: steps of today that lie ahead are moved back to
    just before `now`, in order, `GAP` apart, or closer if that is what keeps them within today (so
    a demo opened just after midnight on the 1st still has today's points in the new month).
    """
    ordered = sorted(((s.when(now), s) for s in steps), key=lambda pair: pair[0])
    ahead = sum(1 for at, _ in ordered if at >= now)
    midnight = datetime.combine(now.date(), clock_time(0), tzinfo=now.tzinfo)
    gap = min(GAP, (now - midnight) / (ahead + 1)) if ahead else GAP
    placed: list[tuple[datetime, Step]] = []
    latest = now - gap
    for at, step in reversed(ordered):
        at = min(at, latest)
        placed.append((at, step))
        latest = at - gap
    placed.reverse()
    return placed


@dataclass
class SeedReport:
    steps: int = 0
    items: dict[str, int] = field(default_factory=dict)  # label → number
    problems: list[str] = field(default_factory=list)
    transcript: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # at, who, did, reply
    seconds: float = 0.0

    def summary(self) -> str:
        return f"{self.steps} steps, {len(self.items)} items, {self.seconds:.1f} s"


async def is_fresh(app: Application) -> bool:
    """Nobody has written to the bot in this database yet (so seeding cannot mix with real use)."""
    return bool(await app.db.run(lambda s: s.execute(select(func.count()).select_from(_INBOX)).scalar() == 0))


async def seed(app: Application, steps: Iterable[Step], *, now: datetime | None = None) -> SeedReport:
    """Replay `steps` through the real dispatcher, each at its own time; see the module docstring."""
    started = time.perf_counter()
    now = now or datetime.now(app.config.tz)
    moment = [now]
    dispatcher = Dispatcher(app.db, app.config, app.router, clock=lambda: moment[0])
    report = SeedReport()
    agent = str(app.config.wecom.agent_id or "")
    windows: list[tuple[datetime, datetime]] = []  # real time each step began, and the step's time
    with _quiet("bot.dispatcher", "bot.router", "handlers"):
        for n, (at, step) in enumerate(timeline(steps, now)):
            moment[0] = at
            incoming = await _incoming(app, step, at, n, agent, report)
            if incoming is None:
                continue
            wall = datetime.now(UTC)
            reply = await dispatcher(incoming)
            windows.append((wall, at))
            report.steps += 1
            text = reply.text if reply is not None else ""
            did = incoming.content or f"[{step.click} #{report.items.get(step.item)}]"
            report.transcript.append((at, step.who, did, text or (reply.replace_button if reply else "")))
            if step.label:
                found = _NUMBER.search(text)
                if found:
                    report.items[step.label] = int(found.group(1))
                else:
                    report.problems.append(f"{step.who} {step.say.splitlines()[0]!r}: no #N in {text!r}")
    await app.db.run(functools.partial(_settle, windows=windows))
    report.seconds = time.perf_counter() - started
    return report


async def _incoming(
    app: Application, step: Step, at: datetime, n: int, agent: str, report: SeedReport
) -> Incoming | None:
    """The callback WeCom would have sent for `step`, or None (with a problem noted) if it cannot be."""
    missing = [
        name for name in _PLACEHOLDER.findall(step.say) + [step.item] if name and name not in report.items
    ]
    if missing:
        report.problems.append(f"{step.who} at {at:%m-%d %H:%M}: unknown {', '.join(missing)}")
        return None
    stamp = int(at.timestamp())
    if step.say:
        content = _PLACEHOLDER.sub(lambda m: f"#{report.items[m.group(1)]}", step.say)
        return Incoming(
            kind="text", sender=step.who, create_time=stamp, agent_id=agent, msg_id=f"demo-{stamp}-{n}",
            content=content,
        )  # fmt: skip
    number = report.items[step.item]
    card = await app.db.run(lambda s: _card(s, step.who, number, step.click))
    if card is None:
        report.problems.append(f"{step.who}: no card about #{number} with a {step.click} button")
        return None
    key, task_id = card
    return Incoming(
        kind="event", sender=step.who, create_time=stamp, agent_id=agent, event="template_card_event",
        event_key=key, task_id=task_id, card_type="button_interaction",
    )  # fmt: skip


def _card(session: Session, userid: str, number: int, button: str) -> tuple[str, str] | None:
    """The event key and task id of `button` on the newest card sent to `userid` about `#number`."""
    box = _OUTBOX.c
    rows = session.execute(
        select(box.payload)
        .where(box.channel == "app", box.msgtype == "template_card", box.target == userid)
        .order_by(box.id.desc())
    ).scalars()
    mark = re.compile(rf"[#＃]{number}(?!\d)")
    for payload in rows:
        card: dict[str, Any] = json.loads(payload)
        if not mark.search(json.dumps(card.get("main_title", {}), ensure_ascii=False)):
            continue
        for b in card.get("button_list", []):
            if b.get("text") == button:
                return str(b.get("key", "")), str(card.get("task_id", ""))
    return None


def _settle(session: Session, windows: list[tuple[datetime, datetime]]) -> None:
    """Mark what the replay queued as sent, each at its step's time, except cards that wait for a click.

    Seeding runs on a fresh database before the outbox worker starts, so everything queued is the
    replay's; a row belongs to the last step that began (in real time) before it was written. A
    decision greys out the cards about its item and drops those not yet sent, so the interactive
    cards still queued now are exactly those about undecided items.
    """
    box = _OUTBOX.c
    waiting = (box.msgtype == "template_card") & box.payload.like('%"button_interaction"%')
    rows = session.execute(select(box.id, box.created_at).where(box.status == "queued", ~waiting)).all()
    began = [wall for wall, _ in windows]
    sent = [
        {
            "row": row.id,
            "at": windows[max(bisect.bisect_right(began, row.created_at) - 1, 0)][1].astimezone(UTC),
        }
        for row in rows
    ]
    if sent:
        session.execute(
            update(_OUTBOX)
            .where(box.id == bindparam("row"))
            .values(status="sent", sent_at=bindparam("at"), result='{"demo": true}'),
            sent,
        )


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Keep the replay out of the console: a line per replayed message would bury the start-up line."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


__all__ = ["SeedReport", "Step", "click", "histories", "is_fresh", "say", "seed", "timeline"]
