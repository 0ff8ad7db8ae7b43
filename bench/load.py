"""Load generator: encrypted WeCom callbacks over raw HTTP/1.1 keep-alive connections.

Run as its own process so that it does not share the bot's core. Requests are built (and encrypted)
before the clock starts, so the generator spends its time on the wire, not on AES. Two modes:
`saturate` (closed loop: each connection sends its next request as soon as the last is answered) and
`rate` (open loop at a fixed rate; latency counts from the intended send time, so a stalled server
cannot hide its queueing). Prints one JSON object with the results.

    python -m bench.load --spec spec.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.simulator.wecom_side import WeComSide


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far, all cores together (Linux /proc/stat: all
    but idle and iowait). Over a run, divided by its length: how many cores were in use."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Spec:
    urls: list[str]  # callback URLs; several are used in turn (two bot processes behind "one address")
    token: str
    encoding_aes_key: str
    corp_id: str
    agent_id: int
    users: list[str]
    form_users: list[str]
    mode: str = "saturate"
    seconds: float = 8.0
    connections: int = 32
    rate: float = 300.0
    mix: dict[str, float] = field(
        default_factory=lambda: {"帮助": 0.25, "我的": 0.25, "排行": 0.25, "form": 0.25}
    )
    form_template: str = "创新\n类型：小改小革\n名称：{name}\n级别：班组\n等次：一等"
    duplicates: float = 0.05  # share of form messages delivered twice, as WeCom retries do
    tag: str = "bench"
    max_requests: int = 60000


@dataclass(frozen=True)
class Request:
    url_index: int
    data: bytes
    kind: str
    form_name: str = ""


def build_requests(spec: Spec, count: int) -> list[Request]:
    side = WeComSide(
        token=spec.token, encoding_aes_key=spec.encoding_aes_key, corp_id=spec.corp_id, agent_id=spec.agent_id
    )
    rng = random.Random(42)
    kinds = list(spec.mix)
    weights = [spec.mix[k] for k in kinds]
    out: list[Request] = []
    seq = 0
    while len(out) < count:
        kind = rng.choices(kinds, weights)[0]
        if kind == "form":
            seq += 1
            name = f"{spec.tag}-{seq}"
            user = spec.form_users[seq % len(spec.form_users)]
            text = spec.form_template.format(name=name)
        else:
            name, user, text = "", rng.choice(spec.users), kind
        plain = side.text(user, text)
        url_index = len(out) % len(spec.urls)
        path = urlsplit(spec.urls[url_index]).path
        query, body = side.envelope(plain)
        raw = body.encode()
        head = (
            f"POST {path}?{query} HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        ).encode()
        req = Request(url_index, head + raw, kind, name)
        out.append(req)
        if kind == "form" and rng.random() < spec.duplicates and len(out) < count:
            out.append(req)  # the same message again: must be answered but recorded once
    return out


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def call(self, data: bytes) -> int:
        self.writer.write(data)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def connect(url: str) -> Conn:
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    return Conn(reader, writer)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    forms_ok: set[str] = field(default_factory=set)
    sent: int = 0

    def record(self, req: Request, status: int | None, latency: float) -> None:
        self.sent += 1
        if status is None or status != 200:
            self.errors += 1
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(latency)
            if status == 200 and req.form_name:
                self.forms_ok.add(req.form_name)


async def saturate(spec: Spec, requests: list[Request], tally: Tally) -> float:
    it = iter(requests)
    stop_at = time.perf_counter() + spec.seconds

    async def worker(i: int) -> None:
        conns: dict[int, Conn] = {}
        for req in it:
            if time.perf_counter() >= stop_at:
                return
            try:
                conn = conns.get(req.url_index) or await connect(spec.urls[req.url_index])
                conns[req.url_index] = conn
                t0 = time.perf_counter()
                status = await conn.call(req.data)
                tally.record(req, status, time.perf_counter() - t0)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                conns.pop(req.url_index, None)
                tally.record(req, None, 0.0)
        for c in conns.values():
            c.writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(spec.connections)))
    return time.perf_counter() - start


async def fixed_rate(spec: Spec, requests: list[Request], tally: Tally) -> float:
    idle: dict[int, list[Conn]] = {i: [] for i in range(len(spec.urls))}
    interval = 1.0 / spec.rate
    total = min(len(requests), int(spec.rate * spec.seconds))
    start = time.perf_counter()

    async def one(req: Request, due: float) -> None:
        pool = idle[req.url_index]
        try:
            conn = pool.pop() if pool else await connect(spec.urls[req.url_index])
            status = await conn.call(req.data)
            tally.record(req, status, time.perf_counter() - due)
            pool.append(conn)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            tally.record(req, None, 0.0)

    tasks = []
    for i in range(total):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i], due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


async def main_async(spec: Spec) -> dict[str, object]:
    count = (
        min(spec.max_requests, int(spec.rate * spec.seconds) + 10)
        if spec.mode == "rate"
        else spec.max_requests
    )
    t0 = time.perf_counter()
    requests = build_requests(spec, count)
    built = time.perf_counter() - t0
    tally = Tally()
    busy = busy_seconds()
    elapsed = await (saturate if spec.mode == "saturate" else fixed_rate)(spec, requests, tally)
    # Cores busy while sending (the bots, a database server, this generator and the kernel together):
    # whether a second bot process had any left.
    cores_busy = (busy_seconds() - busy) / elapsed if elapsed else 0.0
    ok = len(tally.latencies) - sum(v for k, v in tally.statuses.items() if k != 200)
    return {
        "mode": spec.mode,
        "seconds": round(elapsed, 2),
        "sent": tally.sent,
        "ok": ok,
        "errors": tally.errors,
        "statuses": tally.statuses,
        "per_second": round(ok / elapsed, 1) if elapsed else 0,
        "p50_ms": round(percentile(tally.latencies, 50) * 1000, 2),
        "p95_ms": round(percentile(tally.latencies, 95) * 1000, 2),
        "p99_ms": round(percentile(tally.latencies, 99) * 1000, 2),
        "forms_ok": sorted(tally.forms_ok),
        "build_seconds": round(built, 1),
        "cores_busy": round(cores_busy, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="JSON file with the Spec fields")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        spec = Spec(**json.load(f))
    result = asyncio.run(main_async(spec))
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
