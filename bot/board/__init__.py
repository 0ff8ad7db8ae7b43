"""The live 党建看板: a page for the workshop's big screen, served by the bot itself under `board.path`.

Routes (under the path, `/board/` by default): the page, `data` (every panel) and `data/{panel}` as
JSON, `events` (server-sent events: `changed` with the panels to fetch again, a comment every 15 s so
that proxies keep the stream open) and `static/…`. Every route but `static/` needs a board's token: in
the URL once (`/board/?token=…`, which sets an HttpOnly, SameSite=Strict cookie limited to the path and
redirects to the bare path) or in that cookie; without it the answer is 403.

What changed is found by a watcher task (`Board._watch`): the dispatcher pokes it after each
committed message (a sign-in reaches the screens at once), and it also looks every
`board.check_seconds`, so that commits by other bot processes, jobs and the command line reach them
too. It reads the cheap signals of `storage.board.signals` only while a board is open, at most twice a
second however busy the bot.
Panel data is cached per board and panel until a signal the panel watches moves, so fifty open boards
cost one computation per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from bot.board.panels import CLOCK, Panel, Scope, changed_panels, ordered
from storage import board as store

if TYPE_CHECKING:
    from bot.config import BoardScreen, Config
    from storage.database import Database

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
COOKIE = "pioneer_board"
COOKIE_DAYS = 400  # browsers cap cookie lifetimes at about 400 days
KEEPALIVE_SECONDS = 15.0
MIN_GAP_SECONDS = 0.5  # between two checks, however often the dispatcher pokes: at most two a second
_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

REFUSED = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>党建看板</title>
<body style="font:32px sans-serif;background:#8f0d1f;color:#fff;display:grid;place-items:center;height:95vh">
<div><h1>党建看板需要令牌</h1><p>请用管理员给出的完整地址打开（…/board/?token=…）。</p></div></body></html>"""


class UnknownBranch(LookupError):
    """A board's `branch` is not a branch of the member list (a typo, or a branch renamed)."""

    def __init__(self, screen: BoardScreen):
        super().__init__(
            f"看板「{screen.name}」的支部「{screen.branch}」不在成员名单里，"
            "请管理员检查 board.boards 的 branch。"
        )


@dataclass
class _Cached:
    version: int
    made: float  # time.monotonic()
    data: asyncio.Task[dict[str, Any]]


class Board:
    """The board's routes, its watcher and its cache; built by `Application` when a board is configured."""

    def __init__(self, config: Config, db: Database):
        self.config = config
        self.settings = config.board
        self.db = db
        self.path = self.settings.path
        self._screens = self.settings.screens
        self._streams: set[asyncio.Queue[list[str] | None]] = set()
        self._versions: dict[str, int] = {}
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.checks = 0  # readings of the signals so far (tests, the benchmark)

    # -- lifecycle --------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        p = self.path
        if p != "/":
            app.router.add_get(p.rstrip("/"), self._to_page)
        app.add_routes(
            [
                web.get(p, self._page),
                web.get(p + "data", self._all_data),
                web.get(p + "data/{panel}", self._one_panel),
                web.get(p + "events", self._events),
                web.static(p + "static", STATIC),
            ]
        )
        app.on_shutdown.append(self._close_streams)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="board-watcher")

    async def stop(self) -> None:
        await self._close_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """After a message was committed: look for changes now rather than at the next tick (when a
        board is open; otherwise there is nobody to tell)."""
        if self._streams:
            self._poked.set()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # -- who may look -----------------------------------------------------------------------------

    def _screen_for(self, token: str) -> BoardScreen | None:
        found = None
        for screen in self._screens:  # every token compared, in constant time, whatever matches
            if hmac.compare_digest(screen.token.encode(), token.encode()):
                found = screen
        return found

    def _screen(self, request: web.Request) -> BoardScreen:
        screen = self._screen_for(request.cookies.get(COOKIE, ""))
        if screen is None:
            raise web.HTTPForbidden(text="党建看板需要令牌（board token）。")
        return screen

    # -- the page ---------------------------------------------------------------------------------

    async def _to_page(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(self.path + (f"?{request.query_string}" if request.query_string else ""))

    async def _page(self, request: web.Request) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            screen = self._screen_for(given)
            if screen is None:
                return web.Response(status=403, text=REFUSED, content_type="text/html")
            # Keep the token in a cookie and take it out of the address bar (and the history).
            rest = urlencode([(k, v) for k, v in request.query.items() if k != "token"])
            found = web.HTTPSeeOther(self.path + (f"?{rest}" if rest else ""))
            found.set_cookie(
                COOKIE,
                screen.token,
                path=self.path,
                max_age=COOKIE_DAYS * 86400,
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
            raise found
        if self._screen_for(request.cookies.get(COOKIE, "")) is None:
            return web.Response(status=403, text=REFUSED, content_type="text/html")
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        for name in ("board.css", "board.js"):
            html = html.replace(f"static/{name}", f"static/{name}?v={int((STATIC / name).stat().st_mtime)}")
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    # -- data -------------------------------------------------------------------------------------

    async def _all_data(self, request: web.Request) -> web.Response:
        screen = self._screen(request)
        try:
            panels = [await self._panel_json(screen, p) for p in ordered()]
        except UnknownBranch as problem:
            raise web.HTTPConflict(text=str(problem)) from None
        body = {
            "board": screen.name,
            "scope": screen.branch or "全车间",
            "rotate_seconds": self.settings.rotate_seconds,
            "timezone": self.config.timezone,
            "panels": panels,
        }
        return _json(body)

    async def _one_panel(self, request: web.Request) -> web.Response:
        screen = self._screen(request)
        panel = next((p for p in ordered() if p.key == request.match_info["panel"]), None)
        if panel is None:
            raise web.HTTPNotFound(text="没有这个看板栏目。")
        try:
            return _json(await self._panel_json(screen, panel))
        except UnknownBranch as problem:
            raise web.HTTPConflict(text=str(problem)) from None

    async def _panel_json(self, screen: BoardScreen, panel: Panel) -> dict[str, Any]:
        return {"key": panel.key, "title": panel.title, "data": await self.panel_data(screen, panel)}

    async def panel_data(self, screen: BoardScreen, panel: Panel) -> dict[str, Any]:
        """The panel's data for this board: cached until a signal it watches moves (while the watcher
        reads them, i.e. while a board is open), else for `check_seconds`; computed once for everyone
        asking at the same time."""
        key = (screen.name, panel.key)
        version = self._versions.get(panel.key, 0)
        cached = self._cache.get(key)
        fresh_for = float("inf") if self._streams else self.settings.check_seconds
        if (
            cached is None
            or cached.version != version
            or time.monotonic() - cached.made > fresh_for
            or (cached.data.done() and (cached.data.cancelled() or cached.data.exception() is not None))
        ):
            # A task of its own: a screen that goes away while it runs does not leave the others waiting.
            task = asyncio.create_task(self._build(screen, panel))
            task.add_done_callback(_retrieved)
            cached = self._cache[key] = _Cached(version, time.monotonic(), task)
        return await asyncio.shield(cached.data)

    async def _build(self, screen: BoardScreen, panel: Panel) -> dict[str, Any]:
        now = datetime.now(self.config.tz)
        config = self.config

        def build(session: Any) -> dict[str, Any]:
            branch_id = store.branch_id(session, screen.branch) if screen.branch else None
            if screen.branch and branch_id is None:
                raise UnknownBranch(screen)  # never the workshop's data on a branch's screen
            return panel.build(session, config, Scope(screen.name, screen.branch, branch_id), now)

        return await self.db.run(build)

    # -- live -------------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self._screen(request)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._streams.add(queue)
        self.poke()  # the watcher may have slept while no board was open: look now
        try:
            await resp.write(b"retry: 3000\nevent: hello\ndata: {}\n\n")
            while True:
                try:
                    panels = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if panels is None:
                    break
                await resp.write(f"event: changed\ndata: {_dumps({'panels': panels})}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the screen was closed, or the bot is stopping
        finally:
            self._streams.discard(queue)
        return resp

    async def _close_streams(self, _app: web.Application | None = None) -> None:
        for queue in self._streams:
            queue.put_nowait(None)

    async def _watch(self) -> None:
        # The first reading is taken at once, so a board opened later hears of what changed since.
        last: dict[str, str] | None = None
        while True:
            if last is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), self.settings.check_seconds)
                self._poked.clear()
                if not self._streams:
                    continue  # nobody looks: read nothing (the next reading compares with the last)
            try:
                now = await self.db.run(store.signals)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the board
                log.exception("board: reading the change signals failed")
                await asyncio.sleep(self.settings.check_seconds)
                continue
            self.checks += 1
            now[CLOCK] = datetime.now(self.config.tz).strftime("%Y-%m-%d %H:%M")
            if last is not None:
                self.changed(changed_panels(last, now))
            last = now
            await asyncio.sleep(MIN_GAP_SECONDS)

    def changed(self, panels: list[str]) -> None:
        """Tell every open board to fetch `panels` again (their cached data is stale from now)."""
        if not panels:
            return
        for key in panels:
            self._versions[key] = self._versions.get(key, 0) + 1
        for queue in self._streams:
            queue.put_nowait(panels)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a failed computation's error as seen: the screens that asked got it (or went away)."""
    if not task.cancelled():
        task.exception()


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(
        text=_dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


__all__ = ["Board"]
