"""The 党建看板's fan-out: open boards must not slow the callbacks down.

The bot runs as its own process (`python -m bot serve`, SQLite, a fake WeCom API, 200 members, a board
token); the load process (`bench/load.py`) sends encrypted callbacks at 300 a second (帮助, 我的, 排行
and a 创新 form, as `make bench` does) three times: with no board open, with 50 boards open, and with
none again (so that noise on the machine shows as a difference between the first and the last). The
boards run in a third process (this module with `--boards`): each opens the page's event stream with
its cookie and, on every `changed` event, fetches the panels it names, as the page does. Every form
makes an item, so the boards are told of changes all the time: the worst case for the fan-out.

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
            say("warm-up")
            await load(spec([cb], users, party, "saturate", 2, "warm"))
            say(f"{RATE:.0f}/s, no board open")
            before = await load(spec([cb], users, party, "rate", seconds, "none", rate=RATE))
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
            with_boards = await load(spec([cb], users, party, "rate", seconds, "boards", rate=RATE))
            screens.stdin.close()
            tally = json.loads(await asyncio.wait_for(screens.stdout.readline(), 60))
            await screens.wait()
            say(f"{RATE:.0f}/s, no board open again")
            after = await load(spec([cb], users, party, "rate", seconds, "again", rate=RATE))
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
        f"Encrypted callbacks at {RATE:.0f} a second (帮助, 我的, 排行, a 创新 form) from a separate load "
        f"process, for {result['seconds']:.0f} s each: with no 党建看板 open, with {boards} open, and with "
        "none again. The boards run in a third process and behave as the page does: each follows the "
        "event stream and fetches the panels every `changed` event names. Every form makes an item, so "
        "the boards are told of a change at every check (at most two a second): the worst case.",
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
