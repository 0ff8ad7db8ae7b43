"""CPU a message costs past the callback: the dispatcher, the handler, the inbox row and the group
commit, by command, in one process and without HTTP.

    .venv/bin/python -m bench.handler_cost [--messages 2000] [--rounds 3] [--database URL]

`make bench` measures the whole bot over HTTP from a separate load process, and on these shared
2-core machines its throughput moves by ±15 % from run to run. This measures only what a change to
the Python behind `Dispatcher` moves, with much less noise: the bench's 200 members and its commands
(帮助, 我的, 排行 and a one-message 创新 form) are parsed once, then fed to the application's dispatcher
from 32 concurrent senders, as the callback would, against the SQLite writer thread; the process's CPU
time (user + system) over each command's messages, divided by their number. The outbox worker and
the scheduler do not run (the pushes are queued, not sent); a message answered with an apology stops
the run, since a failing handler costs little. The lowest of `--rounds` runs is printed,
so an A/B of two trees is `python -m bench.handler_cost` in each, alternately. Nothing is written to
docs/: docs/PERFORMANCE.md quotes the figures with the date.

`--database postgresql+asyncpg://…` runs the same against an empty PostgreSQL database (the schema is
created, the members imported); its figure is the bot's CPU only, not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.run import AES_KEY, AGENT, CORP, TOKEN, bot_config, cli, write_members  # noqa: E402
from bot.app import Application  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.dispatcher import NOT_SAVED, SORRY  # noqa: E402
from bot.simulator.wecom_side import WeComSide  # noqa: E402
from bot.wecom.messages import Incoming, parse_incoming  # noqa: E402

COMMANDS = ("帮助", "我的", "排行", "form")
FORM = "创新\n类型：小改小革\n名称：cost-{n}\n级别：班组\n等次：一等"
SENDERS = 32


async def measure(messages: int, rounds: int, database: str | None) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="handler-cost-"))
    users, party = write_members(work / "members.csv")
    # The API base is never dialled: the outbox worker does not run here.
    config = bot_config(work, "cost", database or f"sqlite:///{work / 'bot.db'}", 0, "http://127.0.0.1:9")
    cli(config, "members", "import", str(work / "members.csv"))
    app = Application(load_config(config))
    await app.initialize()
    side = WeComSide(token=TOKEN, encoding_aes_key=AES_KEY, corp_id=CORP, agent_id=AGENT)
    forms = 0

    def batch(command: str, count: int) -> list[Incoming]:
        nonlocal forms
        out = []
        for i in range(count):
            if command == "form":
                forms += 1
                user, text = party[forms % len(party)], FORM.format(n=forms)
            else:
                user, text = users[i % len(users)], command
            out.append(parse_incoming(side.text(user, text)))
        return out

    async def feed(command: str, incoming: list[Incoming]) -> None:
        pending = iter(incoming)
        failed = 0

        async def sender() -> None:
            nonlocal failed
            for one in pending:
                reply = await app.dispatcher(one)
                failed += reply is not None and reply.text in (SORRY, NOT_SAVED)

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        if failed:  # a failing handler is cheap: its figure would flatter
            raise SystemExit(f"{failed} of {len(incoming)} {command} messages failed (the log says why)")

    best: dict[str, float] = {}
    try:
        for command in COMMANDS:
            await feed(command, batch(command, 200))  # warm: plans compiled, caches filled
            if not app.db.is_sqlite:  # the planner's statistics, as on a database in use (bench.run.analyze)
                await app.db.run(lambda s: s.execute(text("ANALYZE")))
            for _ in range(rounds):
                incoming = batch(command, messages)
                started = time.process_time()
                await feed(command, incoming)
                ms = (time.process_time() - started) * 1000 / messages
                best[command] = min(best.get(command, ms), ms)
    finally:
        await app.shutdown()
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=2000, help="messages of each command a round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each command; the lowest is shown")
    p.add_argument("--database", help="a PostgreSQL URL to run against instead of a new SQLite file")
    a = p.parse_args()
    best = asyncio.run(measure(a.messages, a.rounds, a.database))
    for command, ms in best.items():
        print(f"{command:4s}\t{ms:.3f} ms of CPU a message")
    print(f"mean\t{sum(best.values()) / len(best):.3f} ms (the bench's equal shares)")


if __name__ == "__main__":
    main()
