"""The callback's front process: HTTP, verifying, decrypting and parsing in a process of its own.

One Python process runs on one core at a time (its threads share one interpreter lock), and under
load the bot's was full while the machine's second core was mostly idle. With `server.callback_process`
on, `serve` splits the work in two:

- the **front** (this module's `main`, a child process) accepts every HTTP connection on the public
  port. It answers the WeCom callback itself: it checks the signature, decrypts and parses the
  message (`bot.wecom.callback`, the same code as in one process), hands the parsed `Incoming` to the
  main process over a private socket pair, and encrypts the passive reply that comes back. Every
  other request (/healthz, /metrics, the 党建看板 and its event stream) is passed on unchanged to the
  main process's own HTTP server on a Unix socket, and its answer streamed back.
- the **main process** (the parent) runs everything else as before: the dispatcher with its per-person
  order and reply budget, the database, the outbox, the scheduler and the AI bot.

Nothing about exactly-once changes: the front answers WeCom only with what the main process returns
after the message's transaction committed; when the main process cannot be reached the front answers
503, WeCom retries, and the retry finds the stored answer if the first one had committed. The main
process binds the port and the sockets before its own slow start-up and starts the front at once, so
the two start side by side; it starts the front again if it dies, and stops it before itself. The
front exits when the main process's end of the socket pair closes.

The pair carries frames of a 4-byte length and a pickle (both ends are this code, parent and child):
the settings once (main → front), then ("m", id, Incoming) and ("x", reason) for a refusal
(front → main), and ("r", id, reply or None) or ("e", id) (main → front).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the front imports only what it needs, so that it is up before the main process
    from aiohttp import web

    from bot.config import Config, DatabaseConfig, ServerConfig, WeComConfig
    from bot.wecom.callback import CallbackObserver
    from bot.wecom.messages import Incoming, PassiveReply

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
Submit = Callable[["Incoming", Callable[["PassiveReply | None"], None]], None]  # Dispatcher.submit
# A refusal the callback reports after it parsed the message: the front saw a callback then.
UNKNOWN_TYPE = "unknown type"
# How long the front waits for the main process's answer beyond the reply budget (the dispatcher
# answers within the budget; past this the main process is stuck, and WeCom should try again).
ANSWER_MARGIN_SECONDS = 5.0
RESTART_PAUSE_SECONDS = 1.0  # between two starts of a front that keeps dying


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class Frames(asyncio.Protocol):
    """Both ends of the pair: cut the byte stream into frames and hand each to `received`."""

    def __init__(self, received: Callable[[Any], None], lost: Callable[[], None]):
        self._received = received
        self._lost = lost
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        at = 0
        while len(buffer) - at >= 4:
            (size,) = _LENGTH.unpack_from(buffer, at)
            if len(buffer) - at - 4 < size:
                break
            message = pickle.loads(memoryview(buffer)[at + 4 : at + 4 + size])
            at += 4 + size
            self._received(message)
        del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._lost()

    def send(self, message: Any) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(frame(message))
        return True


# -- the main process's side ------------------------------------------------------------------------


def wanted(
    server: ServerConfig, wecom: WeComConfig, database: DatabaseConfig, channels: list[str] | None = None
) -> bool:
    """Whether `serve` runs the callback in a front process: `on`; or `auto` on SQLite on a machine
    with more than one core. Only for the self-built app's callback (the local simulator and the AI
    bot alone have none). `channels`: the configured ones, once the whole configuration is known.

    On PostgreSQL `auto` keeps one process: there a message costs the main process ~2 ms of CPU in
    round trips, the front would save a tenth of it and cost ~0.3 ms of its own, and instances scale
    out on their own (docs/operations.md)."""
    setting = server.callback_process
    if setting == "off" or not wecom.encoding_aes_key or channels == [] or sys.platform == "win32":
        return False  # (Windows: no Unix sockets to pass on to the main process's server)
    if setting == "on":
        return True
    return (os.cpu_count() or 1) > 1 and database.url.startswith("sqlite")


def start_early(path: str | None) -> Front | None:
    """The front for `serve`, started from the configuration's `server`, `wecom` and `database`
    sections before the rest is loaded (importing the practices takes most of a start): the two
    processes start side by side. None when it is not wanted, or those sections have problems
    (reported with the rest), or the port cannot be bound (the server reports it as it starts)."""
    from bot.config import ConfigError, read_sections

    try:
        early = read_sections(path)
        return Front(early.server.host, early.server.port) if wanted(*early) else None
    except (ConfigError, OSError):
        return None


def keep_if_wanted(front: Front | None, config: Config) -> Front | None:
    """The early front once the whole configuration is known: given its settings, or closed when the
    configuration does not want one after all (local mode)."""
    if front is None:
        return None
    if not wanted(config.server, config.wecom, config.database, config.channels):
        front.close()
        return None
    front.configure(config)
    return front


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    link: socket.socket  # the main process's end of the pair


class Front:
    """The main process's handle on its front: the sockets it binds, the child it starts, supervises
    and stops, and the link that dispatches the child's messages (`attach`)."""

    def __init__(self, host: str, port: int):
        self.config: Config | None = None  # given by `configure`, sent to each child
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, port), family=family, backlog=1024)
        self.url = f"http://{host}:{self.listener.getsockname()[1]}"
        self._dir = tempfile.mkdtemp(prefix="pioneer-front-")
        self.upstream_path = os.path.join(self._dir, "http.sock")
        self.upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.upstream.bind(self.upstream_path)
        self.upstream.listen(1024)
        self._submit: Submit | None = None
        self._observer: CallbackObserver | None = None
        self._seen: Callable[[], None] = lambda: None
        self._stopping = False
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        self._frames: Frames | None = None
        self.starts = 0
        self._child = self._spawn()

    def configure(self, config: Config) -> None:
        """Send the child its settings (it waits for them, its imports done) and keep them for the
        children started later."""
        self.config = config
        self._child.link.sendall(frame(self._settings(config)))

    def _settings(self, config: Config) -> dict[str, Any]:
        w, s = config.wecom, config.server
        return {
            "token": w.token,
            "encoding_aes_key": w.encoding_aes_key,
            "corp_id": w.corp_id,
            "callback_path": s.callback_path,
            "max_clock_skew": s.max_clock_skew,
            "max_body_bytes": s.max_body_bytes,
            "answer_within": config.handlers.budget_seconds + ANSWER_MARGIN_SECONDS,
            "upstream": self.upstream_path,
            "log_level": config.logging.level,
        }

    def _spawn(self) -> _Child:
        ours, theirs = socket.socketpair()
        if self.config is not None:  # read by the child first; the pair buffers it
            ours.sendall(frame(self._settings(self.config)))
        fds = (self.listener.fileno(), theirs.fileno())
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.front", str(fds[0]), str(fds[1])], pass_fds=fds, close_fds=True
        )
        theirs.close()
        self.starts += 1
        return _Child(process, ours)

    async def attach(
        self,
        submit: Submit,
        *,
        observer: CallbackObserver,
        seen: Callable[[], None],
    ) -> None:
        """Take the child's messages from now on, handled by `submit` (`Dispatcher.submit`; `observer`
        counts them as the callback would, `seen` notes that a callback arrived); keep a child running
        until `stop`."""
        self._submit, self._observer, self._seen = submit, observer, seen
        await self._connect()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _connect(self) -> None:
        frames = Frames(lambda message: self._received(frames, message), lambda: None)
        self._child.link.setblocking(False)
        await asyncio.get_running_loop().create_connection(lambda: frames, sock=self._child.link)
        self._frames = frames

    def _received(self, frames: Frames, message: Any) -> None:
        kind, observer = message[0], self._observer
        assert observer is not None
        if kind == "m":
            self._seen()
            observer.accepted()
            ident, incoming = message[1], message[2]
            assert self._submit is not None
            try:
                self._submit(incoming, lambda reply: self._reply(frames, incoming, ("r", ident, reply)))
            except Exception:  # noqa: BLE001 - the dispatcher answers its own failures; this is a last resort
                log.exception("dispatching %s from the front failed", incoming.key)
                self._reply(frames, incoming, ("e", ident))
        elif kind == "x":
            if message[1] == UNKNOWN_TYPE:
                self._seen()
            observer.refused(message[1])

    @staticmethod
    def _reply(frames: Frames, incoming: Incoming, answer: tuple[Any, ...]) -> None:
        if not frames.send(answer):
            # The front that asked has gone: WeCom retries, and the retry gets the stored answer.
            log.warning("the front went away before %s was answered", incoming.key)

    async def _supervise(self) -> None:
        while not self._stopping:
            code = await asyncio.to_thread(self._child.process.wait)
            if self._stopping:
                return
            log.error("the callback's front process exited (%s); starting it again", code)
            if self._frames is not None and self._frames.transport is not None:
                self._frames.transport.close()  # (it owns the link's socket)
            await asyncio.sleep(RESTART_PAUSE_SECONDS)
            if self._stopping:
                return
            self._child = self._spawn()
            await self._connect()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the front: it finishes the callbacks it holds, whose answers still come from here. The
        sockets stay open until `close` (the main process's HTTP server still serves one of them)."""
        self._stopping = True
        process = self._child.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
            except TimeoutError:
                log.warning("the callback's front process did not stop within %s s; killing it", timeout)
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._supervisor is not None:
            await self._supervisor
        if self._frames is not None and self._frames.transport is not None:
            self._frames.transport.close()

    def close(self) -> None:
        """Free what the main process holds for the front, killing a child still running (a start-up
        that failed before `attach`, or after `stop`: nothing is left to do)."""
        if self._closed:
            return
        self._closed = self._stopping = True
        if self._child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.process.kill()
            self._child.process.wait()
        self._child.link.close()
        self.listener.close()
        self.upstream.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# -- the front process ------------------------------------------------------------------------------


class FrontUnavailable(RuntimeError):
    """The main process cannot be asked (gone, or not answering in time)."""


class Link:
    """The front's end of the pair: send a message, wait for its answer."""

    def __init__(self, answer_within: float):
        self.answer_within = answer_within
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.frames = Frames(self._received, self._lost)
        self.closed = asyncio.Event()

    def _received(self, message: Any) -> None:
        future = self._waiting.pop(message[1], None)
        if future is None or future.done():
            return
        if message[0] == "r":
            future.set_result(message[2])
        else:
            future.set_exception(FrontUnavailable("the main process failed to answer"))

    def _lost(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(FrontUnavailable("the main process is gone"))
        self._waiting.clear()
        self.closed.set()

    async def dispatch(self, incoming: Incoming) -> PassiveReply | None:
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        if not self.frames.send(("m", ident, incoming)):
            raise FrontUnavailable("the main process is gone")
        self._waiting[ident] = future
        try:
            return await asyncio.wait_for(future, self.answer_within)  # type: ignore[no-any-return]
        except TimeoutError:
            self._waiting.pop(ident, None)
            raise FrontUnavailable("the main process did not answer in time") from None

    # the callback's observer: what it refuses is counted by the main process's metrics
    def refused(self, reason: str) -> None:
        self.frames.send(("x", reason))

    def accepted(self) -> None:
        pass  # counted by the main process as the message arrives


_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
    )
)


def _passed(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def front_app(settings: dict[str, Any], link: Link) -> web.Application:
    """The front's aiohttp application: the callback, and everything else passed to the main process."""
    import aiohttp
    from aiohttp import web

    from bot.wecom.callback import WeComCallback

    callback = WeComCallback(
        token=settings["token"],
        encoding_aes_key=settings["encoding_aes_key"],
        corp_id=settings["corp_id"],
        dispatch=link.dispatch,
        max_clock_skew=settings["max_clock_skew"],
        max_body_bytes=settings["max_body_bytes"],
        observer=link,
    )

    async def receive(request: web.Request) -> web.StreamResponse:
        try:
            return await callback.receive(request)
        except FrontUnavailable as exc:
            log.warning("callback not taken: %s", exc)
            return web.Response(status=503, text="unavailable")

    upstream: dict[str, aiohttp.ClientSession] = {}

    async def opened(app: web.Application) -> Any:
        upstream["session"] = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=settings["upstream"]),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=settings["answer_within"]),
        )
        yield
        await upstream["session"].close()

    async def passed_on(request: web.Request) -> web.StreamResponse:
        """Any other request, to the main process's HTTP server and back, streamed (the 党建看板's
        event stream stays open)."""
        headers = _passed(request.headers)
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Host"] = request.host
        body = await request.read() if request.body_exists else None
        response: web.StreamResponse | None = None
        try:
            async with upstream["session"].request(
                request.method,
                f"http://pioneer{request.rel_url}",
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as answer:
                response = web.StreamResponse(status=answer.status, reason=answer.reason)
                response.headers.update(_passed(answer.headers))
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            if response is not None:  # cut off mid-answer (the main process stopping): end it here
                return response
            log.warning("%s %s not passed on: %r", request.method, request.rel_url, exc)
            return web.Response(status=503, text="the bot is starting or stopping")

    app = web.Application(client_max_size=settings["max_body_bytes"] + 1024)
    app.cleanup_ctx.append(opened)
    path = settings["callback_path"]
    app.add_routes([web.get(path, callback.verify_url), web.post(path, receive)])
    app.router.add_route("*", "/{tail:.*}", passed_on)
    return app


def _read_settings(link: socket.socket) -> dict[str, Any]:
    head = b""
    while len(head) < 4:
        chunk = link.recv(4 - len(head))
        if not chunk:
            raise SystemExit("the main process closed the link before the settings")
        head += chunk
    (size,) = _LENGTH.unpack(head)
    data = b""
    while len(data) < size:
        chunk = link.recv(size - len(data))
        if not chunk:
            raise SystemExit("the main process closed the link before the settings")
        data += chunk
    settings: dict[str, Any] = pickle.loads(data)
    return settings


async def _run(listener: socket.socket, link_sock: socket.socket, settings: dict[str, Any]) -> None:
    from aiohttp import web

    link = Link(settings["answer_within"])
    loop = asyncio.get_running_loop()
    link_sock.setblocking(False)
    await loop.create_connection(lambda: link.frames, sock=link_sock)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl+C in a terminal reaches both processes: the main one stops this one when it is ready to.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = web.AppRunner(
        front_app(settings, link),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=settings["answer_within"],
    )
    await runner.setup()
    await web.SockSite(runner, listener).start()
    done = asyncio.ensure_future(stop.wait())
    gone = asyncio.ensure_future(link.closed.wait())
    await asyncio.wait({done, gone}, return_when=asyncio.FIRST_COMPLETED)
    if gone.done() and not done.done():
        log.error("the main process closed the link: the front stops")
    # Stop taking connections; the callbacks under way get their answers (the link is still open
    # when the main process asked us to stop) within aiohttp's shutdown timeout.
    await runner.cleanup()
    done.cancel()
    gone.cancel()


def main(argv: list[str]) -> None:
    started = time.monotonic()
    listener = socket.socket(fileno=int(argv[0]))
    link_sock = socket.socket(fileno=int(argv[1]))
    import aiohttp.web  # noqa: F401 - imported while the main process loads its configuration

    import bot.wecom.callback  # noqa: F401

    settings = _read_settings(link_sock)
    logging.basicConfig(
        level=settings["log_level"], format="%(asctime)s %(levelname)s front %(name)s: %(message)s"
    )
    try:
        import uvloop

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:  # Windows
        run = asyncio.run
    log.debug("front ready to start after %.3f s", time.monotonic() - started)
    run(_run(listener, link_sock, settings))


if __name__ == "__main__":
    main(sys.argv[1:])
