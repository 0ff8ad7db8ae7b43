"""`python -m bot …`: serve, check, db upgrade/backup/restore, members, jobs, and the commands practices add
(`skills import`, `export`) with `@practice_command`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.config import Config, ConfigError, config_path, load_config, load_practices

T = TypeVar("T")


def _load(args: argparse.Namespace) -> Config:
    from bot.simulator.local import local_database

    try:
        return local_database(load_config(args.config))
    except ConfigError as exc:
        print(f"{config_path(args.config)}: configuration has problems:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        raise SystemExit(1) from None


CommandFunc = Callable[[argparse.Namespace, Config], int]


@dataclass(frozen=True)
class PracticeCommand:
    """A command a practice adds to `python -m bot`, e.g. ("skills", "import") or ("export",)."""

    words: tuple[str, ...]
    func: CommandFunc
    help: str
    arguments: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]


PRACTICE_COMMANDS: list[PracticeCommand] = []


def practice_command(
    *words: str, help: str, arguments: Sequence[tuple[tuple[str, ...], dict[str, Any]]] = ()
) -> Callable[[CommandFunc], CommandFunc]:
    """Register `python -m bot WORDS…`; the function gets the parsed arguments and the loaded config."""

    def register(
        func: Callable[[argparse.Namespace, Config], int],
    ) -> Callable[[argparse.Namespace, Config], int]:
        PRACTICE_COMMANDS.append(PracticeCommand(tuple(words), func, help, tuple(arguments)))
        return func

    return register


def with_database(config: Config, work: Callable[[Any], T]) -> T:
    """Migrate, run `work` in one transaction, close: for commands that touch the database."""
    return _with_db(config, work)


def _with_db(config: Config, work: Callable[[Any], T]) -> T:
    """Migrate, run one transaction, close: for the commands that touch the database."""
    from storage.database import Database
    from storage.migrate import upgrade

    async def main() -> T:
        await asyncio.to_thread(upgrade, config.database.url)
        db = Database(config.database.url, busy_timeout_ms=config.database.busy_timeout_ms)
        db.start()
        try:
            return await db.run(work)
        finally:
            await db.close()

    return asyncio.run(main())


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    load_practices()  # registers their jobs
    from bot.scheduler import JOBS

    problems = [
        f"schedules[{i}].job: no job named {s.job!r} (known: {', '.join(sorted(JOBS)) or 'none'})"
        for i, s in enumerate(config.schedules)
        if s.job not in JOBS
    ]
    if problems:
        print(f"{config_path(args.config)}: configuration has problems:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    names = {"app": "WeCom", "aibot": "AI bot"}  # "WeCom" alone still means the self-built app
    mode = (
        " + ".join(names[c] for c in config.channels)
        if config.channels
        else "local simulator (no WeCom credentials)"
    )
    print(
        f"{config_path(args.config)}: OK ({mode}; database {config.database.url.split('://')[0]}; "
        f"{len(config.schedules)} schedules, {len(config.groups)} groups)"
    )
    if config.wecom.configured:
        from bot.wecom.client import token_url

        # The URL itself, so that a base the client would misread shows before the first push fails.
        print(f"access token from: GET {token_url(config.wecom.api_base, config.wecom.corp_id)}")
        agent = config.wecom.agent_id
        print(
            f"app messages to: POST {config.wecom.api_base}/cgi-bin/message/send "
            + (f"(agentid {agent})" if agent is not None else "(wecom.agent_id is not set: none can be sent)")
        )
    if config.aibot.configured:
        pushes = "pushes to members" if config.personal_channel == "aibot" else "group-chat answers"
        print(f"AI bot (bot id {config.aibot.bot_id}): long connection to {config.aibot.ws_url}; {pushes}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot import front as fronts

    # The callback's front process starts first, so that it comes up while this process loads the rest.
    front = fronts.start_early(args.config)
    try:
        config = _load(args)
        front = fronts.keep_if_wanted(front, config)
        from bot import logs
        from bot.serve import serve

        logs.setup(config.logging.level, config.logging.json_lines)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await serve(config, stop, front=front)

        with event_loop_runner() as runner:
            runner.run(main())
    finally:
        if front is not None:
            front.close()
    return 0


def event_loop_runner() -> asyncio.Runner:
    """The server's event loop: uvloop's where it is installed (a dependency on Linux and macOS),
    else asyncio's own. Measured under `make bench`'s load on SQLite (docs/PERFORMANCE.md): 12 % more
    messages a second at 11 % less CPU a message, the HTTP server's and the database driver's socket
    work being most of a message's cost outside its handler."""
    return asyncio.Runner(loop_factory=new_event_loop)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not build there
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = _load(args)
    from storage.migrate import upgrade

    upgrade(config.database.url)
    print("database is at the latest revision")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    config = _load(args)
    from bot import backup

    try:
        result = backup.backup(config.database.url, Path(args.file))
    except backup.BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up to {result.detail}")
    return 0


def cmd_db_restore(args: argparse.Namespace) -> int:
    config = _load(args)
    from bot import backup
    from storage.database import normalise_url

    url = normalise_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        command = backup.shown(backup.pg_restore_command(url, Path(args.file)), url)
        print(f"PostgreSQL: stop the bot, then run: {command}", file=sys.stderr)
        return 1
    try:
        print(backup.restore_sqlite(Path(args.file), backup.sqlite_path(url)))
    except backup.BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    return 0


def import_csv(args: argparse.Namespace, config: Config, importer: Callable[[Any, str], Any]) -> int:
    """Read `args.file`, run `importer(session, text)` in one transaction and print its report; a
    report with problems imports nothing (all rows or none)."""
    try:
        return _import(args, config, importer)
    except _Rejected as r:
        return _print_rejected(args, r)


def _import(args: argparse.Namespace, config: Config, importer: Callable[[Any, str], Any]) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        print(f"{args.file}: cannot read ({exc.strerror})", file=sys.stderr)
        return 1
    report = _with_db(config, lambda s: _checked(importer(s, text)))
    if report.problems:
        print(f"{args.file}: nothing imported:", file=sys.stderr)
        for p in report.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{args.file}: {report.summary()}")
    return 0


def _checked(report: Any) -> Any:
    """Roll the transaction back when the import found problems: all rows or none."""
    if report.problems:
        raise _Rejected(report)
    return report


class _Rejected(Exception):
    def __init__(self, report: Any):
        self.report = report


def cmd_members_import(args: argparse.Namespace) -> int:
    from bot import members

    return import_csv(args, _load(args), members.import_members)


def _print_rejected(args: argparse.Namespace, rejected: _Rejected) -> int:
    print(f"{args.file}: nothing imported:", file=sys.stderr)
    for p in rejected.report.problems:
        print(f"  {p}", file=sys.stderr)
    return 1


def cmd_members_list(args: argparse.Namespace) -> int:
    config = _load(args)
    from bot import members
    from bot.router import ROLE_NAMES

    people = _with_db(config, members.list_members)
    print("userid\tname\tbranch\tteam\tparty_group\tmodule\tpolitical_status\troles")
    for p in people:
        roles = ";".join(r for r in ROLE_NAMES if r in p.roles)
        print(
            f"{p.userid}\t{p.name}\t{p.branch}\t{p.team}\t{p.party_group}\t{p.module}\t{p.political_status}\t{roles}"
        )
    print(f"({len(people)} members)", file=sys.stderr)
    return 0


def cmd_members_sync(args: argparse.Namespace) -> int:
    """Follow WeCom's address book (bot/directory.py); in local mode, the running simulator's."""
    config = _load(args)
    if not config.wecom.configured:
        from bot.simulator.local import local_config

        config = local_config(config)
    from bot.wecom.errors import WeComError

    try:
        report = asyncio.run(_members_sync(config, args.dry_run))
    except WeComError as exc:
        print(f"members sync: nothing changed: {exc}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 1 if report.problems else 0


async def _members_sync(config: Config, dry_run: bool) -> Any:
    import aiohttp

    from bot.directory import fetch_directory, sync_members
    from bot.wecom.client import WeComClient
    from storage.database import Database
    from storage.migrate import upgrade

    async with aiohttp.ClientSession() as http:
        client = WeComClient(
            http,
            corp_id=config.wecom.corp_id,
            secret=config.wecom.secret,
            agent_id=config.wecom.agent_id,
            api_base=config.wecom.api_base,
            timeout=config.outbox.request_timeout_seconds,
        )
        directory = await fetch_directory(config, client)
    await asyncio.to_thread(upgrade, config.database.url)
    db = Database(config.database.url, busy_timeout_ms=config.database.busy_timeout_ms)
    db.start()
    try:
        return await db.run(lambda s: sync_members(s, config, directory, dry_run=dry_run))
    finally:
        await db.close()


def cmd_jobs_list(args: argparse.Namespace) -> int:
    config = _load(args)
    from datetime import datetime

    load_practices()  # registers their jobs
    from bot.scheduler import JOBS, trigger_for

    now = datetime.now(config.tz)
    print("name\tcron\tjob\tnext run\targuments")
    for s in config.schedules:
        nxt = trigger_for(s, config).get_next_fire_time(None, now)
        known = "" if s.job in JOBS else " (unknown job!)"
        print(f"{s.name}\t{s.cron}\t{s.job}{known}\t{nxt:%Y-%m-%d %H:%M}\t{s.arguments or ''}")
    return 0


def cmd_jobs_run(args: argparse.Namespace) -> int:
    config = _load(args)
    from bot.serve import run_job

    if args.name not in {s.name for s in config.schedules}:
        print(f"no schedule named {args.name!r}; see `python -m bot jobs list`", file=sys.stderr)
        return 1
    result = asyncio.run(run_job(config, args.name))
    print(f"{result.name}: {result.status} {result.detail}".rstrip())
    return 0 if result.status == "done" else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description="先锋 Pioneer, a WeCom bot")
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], parent: Any = sub, **kw: Any
    ) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, **kw)
        sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.set_defaults(func=func)
        return sp

    add("serve", cmd_serve, help="run the bot (local simulator when no WeCom credentials)")
    add("check", cmd_check, help="validate the configuration")
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    add("upgrade", cmd_db_upgrade, parent=db, help="apply migrations")
    add("backup", cmd_db_backup, parent=db, help="copy the database while the bot runs").add_argument("file")
    add(
        "restore", cmd_db_restore, parent=db, help="replace the database with a backup (bot stopped)"
    ).add_argument("file")
    m = sub.add_parser("members", help="members").add_subparsers(dest="members_command", required=True)
    add("import", cmd_members_import, parent=m, help="import members from CSV").add_argument("file")
    add("list", cmd_members_list, parent=m, help="list members")
    add(
        "sync", cmd_members_sync, parent=m, help="follow WeCom's address book (new, left, renamed, moved)"
    ).add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    j = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs_command", required=True)
    add("list", cmd_jobs_list, parent=j, help="list scheduled jobs")
    add("run", cmd_jobs_run, parent=j, help="run one job now").add_argument("name")
    load_practices()
    groups: dict[str, Any] = {}
    for c in PRACTICE_COMMANDS:
        parent = sub
        for word in c.words[:-1]:
            if word not in groups:
                groups[word] = sub.add_parser(word, help=word).add_subparsers(
                    dest=f"{word}_command", required=True
                )
            parent = groups[word]
        sp = add(c.words[-1], _practice(c), parent=parent, help=c.help)
        for flags, options in c.arguments:
            sp.add_argument(*flags, **options)
    return p


def _practice(c: PracticeCommand) -> Callable[[argparse.Namespace], int]:
    return lambda args: c.func(args, _load(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
