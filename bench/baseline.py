"""The baseline: only what no WeCom bot can avoid, to measure the bot against the physical limit.

Verify, decrypt and parse the callback, insert one row into SQLite in WAL mode, and answer an empty
200. No routing, no members, no reply. The verifying, decrypting and parsing are the bot's own
(`bot.wecom`: ElementTree for the XML, wechatpy's cipher kept for the process), so that the ratio
compares the work the bot adds and not how either reads a callback; before 2026-12-01 14:40 they
were wechatpy's `decrypt_message` and `parse_message` (xmltodict), ~65 µs a message slower.

    python -m bench.baseline --port 18081 --db /tmp/baseline.db --token T --key K --corp C
"""

from __future__ import annotations

import argparse
import sqlite3

from aiohttp import web

from bot.cli import new_event_loop
from bot.wecom.callback import MessageCipher, read_envelope, signature_matches
from bot.wecom.messages import parse_incoming


def make_app(db_path: str, token: str, key: str, corp: str) -> web.Application:
    cipher = MessageCipher(key)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, msgid TEXT, userid TEXT, content TEXT)"
    )

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        encrypted = read_envelope(body)
        if not signature_matches(token, q["msg_signature"], q["timestamp"], q["nonce"], encrypted):
            return web.Response(status=403, text="bad signature")
        msg = parse_incoming(cipher.decrypt(encrypted, corp))
        db.execute(
            "INSERT INTO inbox (msgid, userid, content) VALUES (?, ?, ?)",
            (msg.msg_id, msg.sender, msg.content),
        )
        return web.Response(status=200, text="")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/wecom/callback", callback), web.get("/healthz", healthz)])
    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--corp", required=True)
    a = p.parse_args()
    # The bot's own event loop (uvloop where installed): the ratio compares the work, not the loop.
    web.run_app(
        make_app(a.db, a.token, a.key, a.corp),
        host="127.0.0.1",
        port=a.port,
        access_log=None,
        print=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
