"""Local mode: Pioneer without a WeCom corporation, for a newcomer's first ten minutes.

When no WeCom credentials are configured, `serve` runs the bot against the built-in simulator: a
token and EncodingAESKey made up for the session, the API client pointed at the fake WeCom API under
`/sim/`, the demo cast and their skill levels imported, a few weeks of their history replayed into a
fresh database (`bot/simulator/demo.py`), and a chat page to play the members.
"""

from __future__ import annotations

import logging
import secrets
import socket
import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy.orm import Session

from bot.config import Config, DatabaseConfig
from bot.members import ImportReport, import_members
from bot.simulator import demo
from bot.simulator.demo import DEMO_FILES, DemoImporter, SeedReport

if TYPE_CHECKING:
    from bot.app import Application
    from bot.simulator.page import Simulator

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CAST = HERE / "cast.csv"
LOCAL_CORP_ID = "wwlocal"
LOCAL_AGENT_ID = 1000002
# Local mode keeps its own SQLite file unless a database was chosen explicitly, so the demo cast
# (userids like `zhangwei`, an admin among them) never lands in the database a real deployment uses.
LOCAL_DATABASE_URL = "sqlite:///data/local.db"


def local_config(config: Config) -> Config:
    """`config` turned to local mode: made-up credentials, the API and group robots on the simulator."""
    host = config.server.host
    port = config.server.port or free_port(host)
    loopback = "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    api_base = f"http://{loopback}:{port}/sim"
    alphabet = string.ascii_letters + string.digits
    wecom = config.wecom.model_copy(
        update={
            "corp_id": LOCAL_CORP_ID,
            "secret": secrets.token_urlsafe(24),
            "agent_id": LOCAL_AGENT_ID,
            "token": secrets.token_urlsafe(12),
            "encoding_aes_key": "".join(secrets.choice(alphabet) for _ in range(43)),
            "api_base": api_base,
        }
    )
    groups = {
        name: g.model_copy(update={"webhook": f"{api_base}/cgi-bin/webhook/send?key={quote(name)}"})
        for name, g in config.groups.items()
    }
    update = {
        "wecom": wecom,
        "server": config.server.model_copy(update={"port": port}),
        "groups": groups,
        # Whoever tries the simulator at night sees the approval card at once, not at 07:30.
        "quiet_hours": "",
    }
    if not config.board.token:  # the simulator links to the workshop's board with this one
        update["board"] = config.board.model_copy(update={"token": secrets.token_urlsafe(16)})
    return local_database(config).model_copy(update=update)


def local_database(config: Config) -> Config:
    """In local mode, the default database is `data/local.db`: for `serve` and every other command."""
    if config.wecom.configured or config.database.url != DatabaseConfig().url:
        return config
    return config.model_copy(
        update={"database": config.database.model_copy(update={"url": LOCAL_DATABASE_URL})}
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (for `server.port: 0`, whose URLs must be known before start)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host or "127.0.0.1", 0))
        return int(s.getsockname()[1])


def _importing(importer: DemoImporter, config: Config, path: Path) -> Callable[[Session], ImportReport]:
    text = path.read_text(encoding="utf-8")
    return lambda session: importer(session, config, text)


async def load_demo(app: Application) -> None:
    """Import the demo cast, then each practice's demo file; importing again updates, never duplicates."""
    cast = CAST.read_text(encoding="utf-8")
    reports: list[tuple[str, ImportReport]] = [
        ("cast.csv", await app.db.run(lambda s: import_members(s, cast, actor="local-mode")))
    ]
    for name, importer in DEMO_FILES.items():
        reports.append((name, await app.db.run(_importing(importer, app.config, HERE / name))))
    for name, report in reports:
        if report.problems:  # e.g. a config.yaml whose skills no longer match the demo file
            log.warning("demo %s not imported: %s", name, "; ".join(report.problems))
        else:
            log.info("demo %s: %s", name, report.summary())


async def seed_history(app: Application) -> SeedReport | None:
    """Replay every practice's demo history, once: only into a database nobody has written to yet.

    Returns None when the database was not fresh (a restart of `make run`, or a chosen database in use).
    """
    import handlers

    if not await demo.is_fresh(app):
        return None
    try:
        report = await demo.seed(app, demo.histories(handlers.MODULES))
    except Exception:  # noqa: BLE001 - the demo must still open, if with less to show
        log.exception("demo history not (fully) replayed")
        return None
    for problem in report.problems:  # a handler changed under the script: the rest still plays
        log.warning("demo history: %s", problem)
    log.info("demo history: %s", report.summary())
    return report


async def open_simulator(app: Application, *, history: bool = True) -> Simulator:
    """After `app.initialize()`, before `app.start()`: the demo cast, its history (into a fresh
    database, unless `history` is off), and the simulator, mounted."""
    await load_demo(app)
    if history:
        await seed_history(app)
    from bot.simulator.page import Simulator  # here: serving WeCom never needs the page (or its cipher)

    simulator = Simulator(app)
    simulator.mount()
    return simulator


__all__ = [
    "free_port",
    "load_demo",
    "local_config",
    "local_database",
    "open_simulator",
    "seed_history",
]
