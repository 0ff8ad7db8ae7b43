"""The soak test: thousands of mixed messages from hundreds of members through the front door, with
WeCom's retries and a flaky WeCom API, then an audit of everything the bot kept and sent.

    python -m tests.soak --messages 20000 [--members 300] [--database-url postgresql+asyncpg://…]

prints the figures that docs/RELIABILITY.md reports; `tests/test_soak.py` runs a smaller size in CI
(`PIONEER_SOAK_MESSAGES` sets it). Everything stays on 127.0.0.1: the fake WeCom API and the bot.

What is sent (seeded, so a run can be repeated): 尽责 claims (a form in one message), 通过 by the
branch's secretary, typed or as a click on the card's button, 我的, 排行, 帮助, 待审, an unknown word,
取消; and 5 % of messages again with the same MsgId (WeCom's retry), whose answer must be the first
one. The fake API fails 2 % of the sends, each independently (errcode -1, 45009, HTTP 502), which the
outbox retries.

The audit: no 5xx; no ERROR in the log; every claim answered 「已提交」 recorded exactly once (and
nothing recorded that was not answered so); every approval booked once; every outbox row sent once
and received once by the fake API; every member's totals equal the sum of their ledger lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from bot.members import import_members
from bot.simulator.fake_api import FakeWeCom
from handlers.periods import period_keys
from storage.points import INNOVATION, TOTAL
from tests.kit import AGENT_ID, CAST, CORP_ID, SECRET, BotKit, start_bot, stop_bot

SECRETARIES = {"第一党支部": "zhangwei", "第二党支部": "wuhao"}
INDICATORS = ["A01", "A02", "突击队", "技术难题"]
SOAK_OVERRIDES: dict[str, Any] = {
    # The soak measures correctness under load, not WeCom's rate limits: the outbox must drain.
    "outbox": {"per_member_per_minute": 1_000_000, "per_member_per_hour": 1_000_000, "concurrency": 16},
    # WeCom's limit: answers later than this follow through the outbox (the audit looks there too).
    "handlers": {"budget_seconds": 4.5},
}
SUBMITTED = re.compile(r"^已提交尽责申报 #(\d+)")
MARK = re.compile(r"soak (\d+) ")  # each claim's 说明 carries its MsgId


def members_csv(total: int) -> tuple[str, list[tuple[str, str]]]:
    """The demo cast plus generated members up to `total`: (CSV, [(userid, branch)])."""
    cast = CAST.read_text(encoding="utf-8").strip().splitlines()
    header, rows = cast[0], cast[1:]
    people = [(r.split(",")[0], r.split(",")[2]) for r in rows]
    extra = []
    for i in range(total - len(rows)):
        branch = "第一党支部" if i % 2 else "第二党支部"
        team = "甲班" if i % 2 else "乙班"
        group = "第一党小组" if i % 2 else "第三党小组"
        status = "群众" if i % 10 == 9 else "党员"
        userid = f"soak{i:04d}"
        extra.append(f"{userid},成员{i:04d},{branch},{team},{group},,{status},,")
        people.append((userid, branch))
    return "\n".join([header, *rows, *extra]) + "\n", people


@dataclass
class Report:
    messages: int = 0  # callbacks delivered, retries included
    retries: int = 0
    members: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    claims_submitted: int = 0
    approvals: int = 0
    retry_mismatches: list[str] = field(default_factory=list)
    api_calls: int = 0
    api_failures: int = 0
    pushes: int = 0
    late_answers: int = 0  # answered through the outbox, past the reply budget
    errors_logged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    drain_seconds: float = 0.0

    def summary(self) -> str:
        five = sum(n for s, n in self.statuses.items() if s >= 500)
        return "\n".join(
            [
                f"messages delivered: {self.messages} from {self.members} members "
                f"({self.retries} retries with the same MsgId)",
                f"by kind: {dict(self.commands.most_common())}",
                f"HTTP statuses: {dict(self.statuses)} (5xx: {five})",
                f"claims answered 已提交: {self.claims_submitted} ({self.late_answers} past the budget, "
                f"through the outbox); approvals: {self.approvals}",
                f"WeCom API calls: {self.api_calls}, failures injected: {self.api_failures}; "
                f"pushes delivered: {self.pushes}",
                f"retries answered differently: {len(self.retry_mismatches)}",
                f"ERROR log records: {len(self.errors_logged)}",
                f"audit problems (anything lost or doubled): {len(self.problems)}",
                f"time: {self.seconds:.1f} s sending "
                f"({self.messages / max(self.seconds, 1e-9):.0f} messages/s), "
                f"{self.drain_seconds:.1f} s for the outbox to drain",
            ]
        )


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


@dataclass
class _Sent:
    userid: str
    msg_id: str
    plaintext: str
    reply: str
    kind: str


async def soak(
    bot: BotKit, *, messages: int, members: int, seed: int = 20261130, workers: int = 24
) -> Report:
    """Drive `messages` callbacks through `bot`, then audit; the report lists every problem found."""
    csv_text, people = members_csv(members)
    imported = await bot.query(lambda s: import_members(s, csv_text, actor="soak"))
    assert not imported.problems, imported.problems
    report = Report(members=len(people))
    pending: dict[str, list[int]] = {b: [] for b in SECRETARIES}  # claims waiting, by branch
    submitted: dict[int, str] = {}  # item id → the MsgId whose answer said 已提交
    late: dict[str, str] = {}  # MsgId → userid, for claims answered through the outbox
    done: list[_Sent] = []
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    typing: dict[str, asyncio.Lock] = {}  # one message per person in flight, as a person types
    branch_of = dict(people)
    counter = iter(range(messages))
    msg_seq = iter(range(10**9, 2 * 10**9))

    def plan(i: int) -> tuple[str, str, str, str]:
        """(kind, userid, plaintext, msg_id) of the i-th message."""
        r = random.Random(seed * 1_000_003 + i)
        if done and r.random() < 0.05:
            prior = r.choice(done)
            return "retry", prior.userid, prior.plaintext, prior.msg_id
        msg_id = str(next(msg_seq))
        roll = r.random()
        branch = r.choice(list(SECRETARIES))
        if roll < 0.15 and pending[branch]:
            item = pending[branch].pop(r.randrange(len(pending[branch])))
            secretary = SECRETARIES[branch]
            if r.random() < 0.5:
                return "approve", secretary, bot.wecom.text(secretary, f"通过 #{item}", msg_id=msg_id), msg_id
            click = bot.wecom.card_click(secretary, f"approve:{item}", task_id=f"soak-{msg_id}")
            return "approve_click", secretary, click, msg_id
        userid, _ = r.choice(people)
        if roll < 0.55:
            words = f"尽责\n指标：{r.choice(INDICATORS)}\n说明：soak {msg_id} 设备抢修"
            kind = "claim"
        else:
            kind, words = r.choice(
                [
                    ("me", "我的"),
                    ("ranking", "排行"),
                    ("help", "帮助"),
                    ("pending", "待审"),
                    ("unknown", "今天食堂吃什么"),
                    ("cancel", "取消"),
                    ("ranking", "排行 本月"),
                ]
            )
        return kind, userid, bot.wecom.text(userid, words, msg_id=msg_id), msg_id

    async def worker() -> None:
        while True:
            try:
                i = next(counter)
            except StopIteration:
                return
            kind, userid, plaintext, msg_id = plan(i)
            async with typing.setdefault(userid, asyncio.Lock()):
                d = await bot.deliver(plaintext)
            report.messages += 1
            report.statuses[d.status] += 1
            report.commands[kind] += 1
            reply = d.reply.text or d.reply.replace_button if d.reply else ""
            if kind == "retry":
                report.retries += 1
                first = next(s for s in done if s.msg_id == msg_id)
                if reply != first.reply:
                    report.retry_mismatches.append(f"{msg_id}: {first.reply[:40]!r} then {reply[:40]!r}")
                continue
            if kind == "claim" and not reply:
                late[msg_id] = userid  # past the budget: the answer went through the outbox
            if kind == "claim" and (m := SUBMITTED.match(reply)):
                item = int(m.group(1))
                if item in submitted:
                    report.problems.append(f"item #{item} answered 已提交 twice")
                submitted[item] = msg_id
                pending[branch_of[userid]].append(item)
            if kind.startswith("approve"):
                report.approvals += 1
            done.append(_Sent(userid, msg_id, plaintext, reply, kind))

    # The WeCom API fails some sends (errcode -1, 45009, HTTP 502), each call independently: a fault
    # aimed at "the next send" would always hit the oldest row being retried, which the worker sends
    # first, and kill it however rare the faults.
    bot.fake.fail_randomly(0.02, (-1, 45009, 502), api="message/send", seed=seed)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
        report.seconds = time.perf_counter() - started
        drain_started = time.perf_counter()
        await _drain_all(bot, timeout=600)
        report.drain_seconds = time.perf_counter() - drain_started
    finally:
        logging.getLogger().removeHandler(errors)
    await _late_answers(bot, late, submitted, report)
    report.claims_submitted = len(submitted)
    report.errors_logged = errors.records
    await _audit(bot, report, submitted)
    return report


async def _drain_all(bot: BotKit, timeout: float) -> None:
    """Until nothing is queued or being sent: rows backing off after a fault are waited for too."""
    from sqlalchemy import func, select

    from storage.models import OutboxMessage

    def waiting(s: Any) -> int:
        return int(
            s.execute(
                select(func.count()).where(OutboxMessage.status.in_(("queued", "sending")))
            ).scalar_one()
        )

    deadline = time.perf_counter() + timeout
    while True:
        await bot.drain(timeout=max(1.0, deadline - time.perf_counter()))
        if not await bot.query(waiting) or time.perf_counter() > deadline:
            return
        await asyncio.sleep(0.05)


async def _late_answers(bot: BotKit, late: dict[str, str], submitted: dict[int, str], report: Report) -> None:
    """A claim answered after the budget was told 已提交 by an app message: find it there."""
    report.late_answers = len(late)
    if not late:
        return
    rows = await bot.query(lambda s: s.execute(text("SELECT s.id, s.description FROM submissions s")).all())
    for row in rows:
        found = MARK.findall(row.description)
        if found and found[0] in late:
            userid = late[found[0]]
            if any(t.startswith(f"已提交尽责申报 #{row.id}") for t in bot.texts_to(userid)):
                submitted[row.id] = found[0]


async def _audit(bot: BotKit, report: Report, submitted: dict[int, str]) -> None:
    problems = report.problems

    def read(s: Any) -> dict[str, Any]:
        q = lambda sql: s.execute(text(sql)).all()  # noqa: E731
        return {
            "submissions": q(
                "SELECT i.id, s.description FROM items i JOIN submissions s ON s.id = i.id ORDER BY i.id"
            ),
            "states": q("SELECT i.id, i.status FROM items i JOIN submissions s ON s.id = i.id"),
            "entries": q("SELECT member_id, points_x100, category, day, item_id FROM point_entries"),
            "totals": q("SELECT member_id, period, category, points_x100 FROM member_totals"),
            "outbox": q("SELECT id, channel, target, msgtype, status, payload FROM outbox ORDER BY id"),
        }

    data = await bot.query(read)
    # Every accepted form recorded exactly once, and nothing recorded that was not accepted.
    recorded = {row.id: row.description for row in data["submissions"]}
    if set(recorded) != set(submitted):
        problems.append(
            f"claims recorded {len(recorded)} vs answered 已提交 {len(submitted)}: "
            f"unanswered {sorted(set(recorded) - set(submitted))[:5]}, "
            f"lost {sorted(set(submitted) - set(recorded))[:5]}"
        )
    by_msg = Counter(MARK.findall(d)[0] for d in recorded.values() if MARK.search(d))
    doubled = [m for m, n in by_msg.items() if n > 1]
    if doubled:
        problems.append(f"messages recorded more than once: {doubled[:5]}")
    # Every approved claim booked once.
    approved = {row.id for row in data["states"] if row.status == "approved"}
    booked = Counter(e.item_id for e in data["entries"] if e.item_id in recorded)
    if set(booked) != approved or any(n != 1 for n in booked.values()):
        problems.append(
            f"approved {len(approved)} items but ledger lines for {len(booked)} ({booked.most_common(3)})"
        )
    # The ledger's totals are the sum of its lines.
    expected: Counter[tuple[int, str, str]] = Counter()
    for e in data["entries"]:
        if e.member_id is None:
            continue
        day = e.day if isinstance(e.day, date) else date.fromisoformat(e.day)
        cats = [e.category, TOTAL] if e.category != INNOVATION else [e.category]
        for p in period_keys(day):
            for c in cats:
                expected[(e.member_id, p, c)] += e.points_x100
    totals = {(t.member_id, t.period, t.category): t.points_x100 for t in data["totals"]}
    wrong = [k for k in set(expected) | set(totals) if expected.get(k, 0) != totals.get(k, 0)]
    if wrong:
        problems.append(f"{len(wrong)} totals differ from the sum of the ledger, e.g. {wrong[:3]}")
    # Every push sent exactly once: every outbox row sent, and the fake API received each once.
    rows = data["outbox"]
    # `superseded`: a card not yet sent when its item was decided is never sent (bot/outbox.py).
    unsent = Counter(r.status for r in rows if r.status not in ("sent", "superseded"))
    if unsent:
        problems.append(f"outbox rows not sent: {dict(unsent)}")
    want = Counter(
        (r.target, r.msgtype, json.loads(r.payload).get("content"))
        for r in rows
        if r.channel == "app" and r.msgtype in ("text", "markdown")
    )
    got = Counter(
        (m.touser, m.msgtype, m.body.get("content"))
        for m in bot.fake.sent()
        if m.msgtype in ("text", "markdown")
    )
    if want != got:
        problems.append(
            f"texts queued vs received differ: {sum((want - got).values())} missing, "
            f"{sum((got - want).values())} extra"
        )
    cards_want = Counter(
        r.target for r in rows if r.channel == "app" and r.msgtype == "template_card" and r.status == "sent"
    )
    cards_got = Counter(m.touser for m in bot.fake.sent(msgtype="template_card"))
    if cards_want != cards_got:
        problems.append(f"cards queued {sum(cards_want.values())} vs received {sum(cards_got.values())}")
    updates_want = sum(1 for r in rows if r.channel == "card_update")
    if updates_want != len(bot.fake.card_updates()):
        problems.append(f"card updates queued {updates_want} vs received {len(bot.fake.card_updates())}")
    calls = bot.fake.calls()
    report.api_calls = len(calls)
    report.api_failures = sum(1 for c in calls if c.status != 200 or c.errcode not in (0, None))
    report.pushes = len(bot.fake.sent()) + len(bot.fake.card_updates())
    if any(s >= 500 for s in report.statuses):
        problems.append(f"5xx answers: {report.statuses}")
    if report.errors_logged:
        problems.append(f"{len(report.errors_logged)} ERROR log records, first: {report.errors_logged[0]}")
    if report.retry_mismatches:
        problems.append(f"retries answered differently: {report.retry_mismatches[:3]}")


async def _main(args: argparse.Namespace) -> int:
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID)
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'soak.db'}"
        async with aiohttp.ClientSession() as http:
            bot = await start_bot(fake, http, url, members=False, **SOAK_OVERRIDES)
            try:
                used = await bot.query(lambda s: s.execute(text("SELECT count(*) FROM inbox")).scalar())
                if used:
                    print(f"{url.split('@')[-1]}: not empty ({used} messages); the audit needs an empty one")
                    return 2
                report = await soak(bot, messages=args.messages, members=args.members, seed=args.seed)
            finally:
                await stop_bot(bot)
    await fake.stop()
    print(f"database: {url.split('://')[0]}")
    print(report.summary())
    for p in report.problems:
        print(f"PROBLEM: {p}")
    return 1 if report.problems else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--members", type=int, default=300)
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument(
        "--database-url", default="", help="an empty, migratable database (default: a temporary SQLite file)"
    )
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
