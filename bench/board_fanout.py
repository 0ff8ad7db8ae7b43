"""The 党建看板's fan-out: open boards must not slow the callbacks down.

The bot runs as its own process (`python -m bot serve`, SQLite, a fake WeCom API, 200 members, a board
token); the load process (`bench/load.py`) sends encrypted callbacks at 300 a second (帮助, 我的, 排行,
and one in ten a secretary's 加分, which books a ledger line) three times: with no board open, with 50
boards open, and with none again (so that noise on the machine shows as a difference between the
first and the last). The boards run in a third process (this module with `--serve-boards`): each opens
the page's event stream with its cookie and, on every `changed` event, fetches the panels it names, as
the page does. The ledger moves all the time, so the boards are told of changes at every check: the
worst case for the fan-out.

The figures replace the "Board fan-out" section of docs/PERFORMANCE.md; they mean something only on an
otherwise idle machine (the load average is written beside them).

    python -m bench.board_fanout [--seconds 10] [--boards 50]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.run import (
    AGENT,
    CORP,
    PERFORMANCE,
    PY,
    ROOT,
    SECRET,
    bot_config,
    cli,
    load,
    machine,
    say,
    spec,
    start_bot,
    stop,
    wait_healthy,
    write_members,
    write_report,
)
from bot.simulator.fake_api import FakeWeCom
from bot.simulator.local import free_port

BEGIN, END = "<!-- bench:board-fanout -->", "<!-- /bench:board-fanout -->"
BOARD_TOKEN = "bench-board-token-0000000001"
RATE = 300.0
SECRETARY = "m000"  # bench.run.write_members: the secretary of 第一党支部 (even-numbered members)
# 帮助, 我的 and 排行 from anyone, and a tenth of the messages a 加分 by the secretary: each one books a
# ledger line, so the ranking and the rolling line change at every check the boards make.
MIX = {"帮助": 0.3, "我的": 0.3, "排行": 0.3, "form": 0.1}


# -- the boards process ---------------------------------------------------------------------------------


async def one_board(url: str, tally: dict[str, int], ready: asyncio.Event, count: int) -> None:
    """A screen: open the page once with the token (a cookie), then follow the event stream."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{url}/board/?token={BOARD_TOKEN}") as resp:
            resp.raise_for_status()
        async with http.get(f"{url}/board/data") as resp:
            resp.raise_for_status()
            await resp.read()
        async with http.get(f"{url}/board/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            tally["open"] += 1
            if tally["open"] == count:
                ready.set()
            event = ""
            async for raw in stream.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "changed":
                    tally["events"] += 1
                    for panel in json.loads(line[6:])["panels"]:
                        t0 = time.perf_counter()
                        async with http.get(f"{url}/board/data/{panel}") as resp:
                            await resp.read()
                            tally["fetches"] += 1
                            tally["errors"] += resp.status != 200
                        tally["fetch_us"] += int((time.perf_counter() - t0) * 1e6)


async def boards_main(url: str, count: int) -> None:
    """Open `count` boards, say "ready" on stdout, follow them until stdin closes, print the tally."""
    tally = {"open": 0, "events": 0, "fetches": 0, "errors": 0, "fetch_us": 0}
    ready = asyncio.Event()
    tasks = [asyncio.create_task(one_board(url, tally, ready, count)) for _ in range(count)]
    await asyncio.wait_for(ready.wait(), 30)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(tally), flush=True)


# -- the driver -----------------------------------------------------------------------------------------


async def run(seconds: float, boards: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="pioneer-board-bench-"))
    fake = FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT)
    await fake.start()
    bot = None
    try:
        users, party = write_members(workdir / "members.csv")
        port = free_port()
        config = bot_config(
            workdir, "board", f"sqlite:///{workdir / 'bot.db'}", port, fake.base_url or "", []
        )
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        raw["board"] = {"token": BOARD_TOKEN}
        config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        cli(config, "members", "import", str(workdir / "members.csv"))
        url = f"http://127.0.0.1:{port}"
        cb = url + "/wecom/callback"
        async with aiohttp.ClientSession() as http:
            bot = start_bot(config)
            await wait_healthy(http, url, bot)

            # A party member of the secretary's branch: the one the 加分 go to.
            awarded = next(u for u in party if int(u[1:]) % 2 == 0 and u != SECRETARY)
            award = f"加分 {awarded} A04 1 看板压测 {{name}}"

            def flow(tag: str) -> dict[str, Any]:
                return spec(
                    [cb], users, [SECRETARY], "rate", seconds, tag, rate=RATE, mix=MIX, form_template=award
                )

            say("warm-up")
            await load(spec([cb], users, party, "saturate", 2, "warm"))
            say(f"{RATE:.0f}/s, no board open")
            before = await load(flow("none"))
            say(f"{RATE:.0f}/s, {boards} boards open")
            screens = await asyncio.create_subprocess_exec(
                PY,
                "-m",
                "bench.board_fanout",
                "--serve-boards",
                url,
                "--boards",
                str(boards),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert screens.stdout is not None and screens.stdin is not None
            line = await asyncio.wait_for(screens.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"the boards did not open: {line!r}")
            with_boards = await load(flow("boards"))
            screens.stdin.close()
            tally = json.loads(await asyncio.wait_for(screens.stdout.readline(), 60))
            await screens.wait()
            say(f"{RATE:.0f}/s, no board open again")
            after = await load(flow("again"))
    finally:
        if bot is not None:
            stop(bot)
        await fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for r in (before, with_boards, after):
        r.pop("forms_ok", None)
    return {
        "seconds": seconds,
        "boards": boards,
        "none": before,
        "open": with_boards,
        "again": after,
        "tally": tally,
    }


def report(result: dict[str, Any], load_average: float, command: str) -> str:
    tally, boards = result["tally"], result["boards"]
    rows = []
    for key, label in (
        ("none", "no board open"),
        ("open", f"{boards} boards open"),
        ("again", "no board open, again"),
    ):
        r = result[key]
        rows.append(
            f"| {label} | {r['sent']} | {r['errors']} | {r['per_second']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} |"
        )
    fetch_ms = tally["fetch_us"] / 1000 / tally["fetches"] if tally["fetches"] else 0.0
    busy = (
        " (other processes were busy on its cores: the figures are not comparable)"
        if load_average > 1
        else ""
    )
    paragraphs = [
        f"Encrypted callbacks at {RATE:.0f} a second from a separate load process, for "
        f"{result['seconds']:.0f} s each: with no 党建看板 open, with {boards} open, and with none again. "
        "Nine messages in ten are 帮助, 我的 or 排行 from any of 200 members; one in ten is a secretary's "
        "加分, which books a ledger line, so the ranking and the rolling line change at every check the "
        "board makes (at most two a second): the worst case for the fan-out. The boards run in a third "
        "process and behave as the page does: each follows the event stream and fetches the panels "
        "every `changed` event names.",
        f"The {boards} boards received {tally['events']} `changed` events and made {tally['fetches']} "
        f"panel fetches ({tally['errors']} failed, {fetch_ms:.1f} ms each on average); a panel is "
        "computed once per change and served to every board from the cache.",
        f"Measured {datetime.now():%Y-%m-%d} on {machine()} with `{command}`; load average "
        f"{load_average:.1f} when the run began{busy}.",
    ]
    table = [
        "| run | requests | errors | per s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    wrap = functools.partial(textwrap.fill, width=100, break_long_words=False, break_on_hyphens=False)
    return "\n".join(
        [
            BEGIN,
            "## Board fan-out (`python -m bench.board_fanout`)",
            "",
            wrap(paragraphs[0]),
            "",
            *table,
            "",
            wrap(paragraphs[1]),
            "",
            wrap(paragraphs[2]),
            END,
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    p.add_argument("--boards", type=int, default=50, help="boards open in the middle run (default 50)")
    p.add_argument("--serve-boards", metavar="URL", help=argparse.SUPPRESS)  # the boards process
    args = p.parse_args()
    if args.serve_boards:
        asyncio.run(boards_main(args.serve_boards, args.boards))
        return
    load_average = os.getloadavg()[0]
    result = asyncio.run(run(args.seconds, args.boards))
    print(json.dumps(result, ensure_ascii=False, indent=1))
    command = "python -m bench.board_fanout" + (
        f" --seconds {args.seconds:g} --boards {args.boards}"
        if (args.seconds, args.boards) != (10.0, 50)
        else ""
    )
    write_report(report(result, load_average, command), BEGIN, END)
    print(f"wrote {PERFORMANCE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
