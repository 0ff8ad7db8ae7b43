"""`python -m bot …` as an operator runs it, and the bot killed with messages queued.

These run the real command in a subprocess against a config file written for the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import create_engine, text

from bench.load import busy_seconds
from bench.run import bot_config, wait_healthy
from bot.cli import event_loop_runner
from bot.config import load_config
from bot.simulator.fake_api import FakeWeCom
from bot.simulator.local import free_port
from bot.simulator.wecom_side import WeComSide
from tests.conftest import PG_URL
from tests.kit import CAST, ROOT, make_config, wait_until

PY = sys.executable


def write_config(path: Path, database_url: str, api_base: str, **overrides: Any) -> Path:
    config = make_config(database_url, api_base, **overrides)
    path.write_text(
        yaml.safe_dump(config.model_dump(mode="json", by_alias=True), allow_unicode=True), encoding="utf-8"
    )
    return path


def bot_cli(
    *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [PY, "-m", "bot", *(["--config", str(config)] if config else []), *args]
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def cfg(tmp_path: Path, database_url: str, fake: FakeWeCom) -> Path:
    assert fake.base_url
    return write_config(tmp_path / "config.yaml", database_url, fake.base_url)


def test_check_accepts_the_shipped_config():
    out = bot_cli("check", config=ROOT / "config.yaml")
    assert out.returncode == 0, out.stderr
    assert "OK (local simulator" in out.stdout


def test_the_benchmark_bot_has_no_quiet_hours_so_its_work_does_not_depend_on_the_hour(tmp_path: Path):
    # With the shipped window, a run in the evening (China time) held every approval card.
    shipped = load_config(ROOT / "config.yaml")
    bench = load_config(bot_config(tmp_path, "b", f"sqlite:///{tmp_path / 'b.db'}", 1, "http://127.0.0.1:9"))
    assert shipped.quiet_hours != ""
    assert bench.quiet_hours == ""


def test_the_benchmark_counts_the_whole_machines_busy_time_not_one_process():
    # The bench reports how many cores were busy, to say whether a second process had any left. With
    # one spinning child per core, the machine (not this process) is busy for as long as they spin.
    cores = os.cpu_count() or 1
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    before = busy_seconds()
    children = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores)]
    assert all(child.wait() == 0 for child in children)
    assert busy_seconds() - before >= 0.8 * 0.4 * cores


def test_check_reports_every_problem_with_its_key_path(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw["points"]["categories"][2]["indicators"][0]["points"] = "many"
    raw["server"]["port"] = "eighty"
    raw["timezone"] = "Mars/Olympus"
    raw["schedules"][0]["cron"] = "every day"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = bot_cli("check", config=bad)
    assert out.returncode == 1
    assert "points.categories[2].indicators[0].points: must be a number" in out.stderr
    assert "server.port: must be a whole number" in out.stderr
    assert "timezone: unknown time zone 'Mars/Olympus'" in out.stderr
    assert "schedules[0].cron: not a cron expression" in out.stderr


def test_config_path_may_come_from_bot_config(tmp_path: Path):
    missing = tmp_path / "nowhere.yaml"
    out = bot_cli("check", env={"BOT_CONFIG": str(missing)})
    assert out.returncode == 1 and f"{missing}: cannot read" in out.stderr


def test_members_import_twice_updates_and_never_duplicates(cfg: Path, tmp_path: Path):
    first = bot_cli("members", "import", str(CAST), config=cfg)
    assert first.returncode == 0, first.stderr
    assert "新增 13，更新 0，未变 0" in first.stdout
    changed = tmp_path / "changed.csv"
    changed.write_text(
        CAST.read_text(encoding="utf-8").replace(
            "刘洋,第一党支部,甲班,,,群众,", "刘洋,第一党支部,乙班,,,团员,coach"
        ),
        encoding="utf-8",
    )
    second = bot_cli("members", "import", str(changed), config=cfg)
    assert "新增 0，更新 1，未变 12" in second.stdout, second.stderr
    listing = bot_cli("members", "list", config=cfg)
    rows = [line.split("\t") for line in listing.stdout.splitlines()[1:]]
    assert len(rows) == 13
    assert ["liuyang", "刘洋", "第一党支部", "乙班", "", "", "团员", "member;coach"] in rows


def test_a_bad_members_file_imports_nothing_and_says_where(cfg: Path, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "userid,name,branch,team,party_group,module,political_status,roles\n"
        "a1,甲,第一党支部,甲班,,,党员,secretary\n"
        "a2,乙,第一党支部,甲班,,,路人,\n"
        "a3,丙,第一党支部,甲班,,,党员,boss\n",
        encoding="utf-8",
    )
    out = bot_cli("members", "import", str(bad), config=cfg)
    assert out.returncode == 1
    assert "line 3: political_status must be one of" in out.stderr
    assert "line 4: unknown role boss" in out.stderr
    assert "(0 members)" in bot_cli("members", "list", config=cfg).stderr
    wrong_header = tmp_path / "header.csv"
    wrong_header.write_text("id,name\n1,x\n", encoding="utf-8")
    assert (
        "line 1: header must be userid,name,branch"
        in bot_cli("members", "import", str(wrong_header), config=cfg).stderr
    )


def test_skills_import_sets_levels_and_refuses_unknowns(cfg: Path, tmp_path: Path):
    assert bot_cli("members", "import", str(CAST), config=cfg).returncode == 0
    skills = tmp_path / "skills.csv"
    skills.write_text("userid,skill,level\nzhaolei,切叶丝岗,O\nchenjing,切叶丝岗,i\n", encoding="utf-8")
    ok = bot_cli("skills", "import", str(skills), config=cfg)
    assert ok.returncode == 0 and "新增 2" in ok.stdout, ok.stderr
    again = bot_cli("skills", "import", str(skills), config=cfg)
    assert "新增 0，更新 0，未变 2" in again.stdout
    bad = tmp_path / "bad-skills.csv"
    bad.write_text(
        "userid,skill,level\nnobody,切叶丝岗,U\nzhaolei,开飞机,U\nzhaolei,切叶丝岗,X\n", encoding="utf-8"
    )
    out = bot_cli("skills", "import", str(bad), config=cfg)
    assert out.returncode == 1
    assert "line 2: no member with userid 'nobody'" in out.stderr
    assert "line 3: unknown skill '开飞机'" in out.stderr
    assert "line 4: level must be one of 0/I/L/U/O" in out.stderr


def test_db_upgrade_and_jobs_list(cfg: Path):
    assert bot_cli("db", "upgrade", config=cfg).returncode == 0
    listing = bot_cli("jobs", "list", config=cfg)
    assert listing.returncode == 0
    assert "pending_digest\t17 8 * * 1-5\tpending_digest" in listing.stdout
    unknown = bot_cli("jobs", "run", "no_such_job", config=cfg)
    assert unknown.returncode == 1 and "no schedule named 'no_such_job'" in unknown.stderr


def sqlite_outbox_statuses(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status FROM outbox ORDER BY id")).scalars().all()
    engine.dispose()
    return list(rows)


def served_config(tmp_path: Path, database_url: str, fake: FakeWeCom) -> tuple[Path, WeComSide, str]:
    """A config file for `python -m bot serve` on a free port with the cast imported, the WeCom side
    that signs callbacks for it, and its base URL."""
    assert fake.base_url
    port = free_port()
    cfg = write_config(tmp_path / "config.yaml", database_url, fake.base_url, server={"port": port})
    assert bot_cli("members", "import", str(CAST), config=cfg).returncode == 0
    config = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    side = WeComSide(
        token=config["wecom"]["token"],
        encoding_aes_key=config["wecom"]["encoding_aes_key"],
        corp_id=config["wecom"]["corp_id"],
        agent_id=config["wecom"]["agent_id"],
    )
    return cfg, side, f"http://127.0.0.1:{port}"


async def test_killed_with_messages_queued_each_is_delivered_once_after_restart(
    tmp_path: Path, database_url: str, fake: FakeWeCom, http: aiohttp.ClientSession
):
    cfg, side, url = served_config(tmp_path, database_url, fake)
    fake.fail_always(-1, api="message/send")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [PY, "-m", "bot", "--config", str(cfg), "serve"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    proc = start()
    try:
        await wait_healthy(http, url, proc)
        # Five strangers write: each makes a notice for the admin (liqiang), queued in the outbox.
        for i in range(5):
            d = await side.deliver(http, url + "/wecom/callback", side.text(f"stranger{i}", "你好"))
            assert d.status == 200
        await fake.wait_for(lambda: len(fake.calls("message/send")) >= 5, timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if database_url.startswith("sqlite"):
            statuses = sqlite_outbox_statuses(database_url)
            assert len(statuses) == 5 and "sent" not in statuses
        assert fake.sent(touser="liqiang") == []

        fake.heal()
        proc = start()
        await wait_healthy(http, url, proc)
        await fake.wait_for(lambda: len(fake.sent(touser="liqiang")) >= 5, timeout=20)

        async def nothing_left_to_send() -> bool:
            async with http.get(url + "/healthz") as resp:
                return (await resp.json())["outbox"]["depth"] == 0

        # Once nothing is queued or being sent, no stale lease can send anything again.
        await wait_until(nothing_left_to_send, timeout=20, what="the outbox emptying")
        notices = [m.body["content"] for m in fake.sent(touser="liqiang")]
        assert len(notices) == 5
        assert sorted(n.split("「")[1].split("」")[0] for n in notices) == [f"stranger{i}" for i in range(5)]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0


FIRST_CLAIM = """
import asyncio, sys
from bot.app import Application
from bot.config import load_config
from bot.simulator.wecom_side import WeComSide
from bot.wecom.messages import parse_incoming

async def main():
    app = Application(load_config(sys.argv[1]))
    await app.initialize()  # no workers: nothing but this message touches the database
    side = WeComSide(token="t", encoding_aes_key="k" * 43, corp_id="c", agent_id=1)
    claim = "创新\\n类型：QC\\n名称：提高梗丝填充值\\n级别：车间\\n等次：二等"
    reply = await app.dispatcher(parse_incoming(side.text("wangfang", claim)))
    print(reply.text if reply else "")
    await app.shutdown()

asyncio.run(main())
"""


def test_a_claim_can_be_the_first_thing_a_process_does(cfg: Path):
    """A claim builds its `Item` without pydantic's validation (`model_construct`), which needs
    SQLAlchemy's mappers configured. The test process always has them configured by then, and `serve`
    usually too (its scheduler queries first), but a process whose first work was a claim failed it."""
    assert bot_cli("members", "import", str(CAST), config=cfg).returncode == 0
    out = subprocess.run(
        [PY, "-c", FIRST_CLAIM, str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.startswith("已提交创新申报 #1"), out.stdout + out.stderr


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_the_served_bot_draws_pictures_in_one_spawned_process_not_a_second_bot(
    tmp_path: Path, database_url: str, fake: FakeWeCom, http: aiohttp.ClientSession
):
    cfg, side, url = served_config(tmp_path, database_url, fake)
    proc = subprocess.Popen(
        [PY, "-m", "bot", "--config", str(cfg), "serve"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_healthy(http, url, proc)
        for n in (1, 2):
            d = await side.deliver(http, url + "/wecom/callback", side.text("zhoujie", "技能 班组"))
            assert d.status == 200 and d.reply is not None and "多能工训练表" in d.reply.text
            await fake.wait_for(
                lambda n=n: len(fake.sent(touser="zhoujie", msgtype="image")) >= n, timeout=20
            )
        # One process drew both pictures and is still there, beside multiprocessing's resource tracker
        # (and the callback's front, server.callback_process: auto, on SQLite with more than one core).
        started = {
            c: Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for c in children(proc.pid)
        }
        fronts = [c for c, cmd in started.items() if "-m bot.front " in cmd]
        assert len(fronts) == (1 if (os.cpu_count() or 1) > 1 and not PG_URL else 0), started
        started = {c: cmd for c, cmd in started.items() if c not in fronts}
        assert len(started) == 2, started
        assert all("multiprocessing" in c and " serve" not in c for c in started.values()), started
        assert sum("spawn_main" in c for c in started.values()) == 1, started
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None and "died" not in proc.stderr.read().decode()


@pytest.mark.skipif(bool(PG_URL), reason="checks the SQLite file directly")
def test_sqlite_database_file_is_in_wal_mode(cfg: Path, database_url: str):
    assert bot_cli("db", "upgrade", config=cfg).returncode == 0
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_jobs_run_runs_a_job_now(cfg: Path):
    assert bot_cli("members", "import", str(CAST), config=cfg).returncode == 0
    out = bot_cli("jobs", "run", "pending_digest", config=cfg)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("pending_digest: done")


def test_jobs_run_in_local_mode_needs_no_credentials(tmp_path: Path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "WECOM_CORP_ID": "", "WECOM_SECRET": ""}
    out = bot_cli("jobs", "run", "pending_digest", config=ROOT / "config.yaml", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("pending_digest: done")


def test_the_server_runs_on_uvloop_where_it_is_installed() -> None:
    with event_loop_runner() as runner:
        assert type(runner.get_loop()).__module__.startswith("uvloop")
        assert runner.run(asyncio.sleep(0, "ran")) == "ran"
