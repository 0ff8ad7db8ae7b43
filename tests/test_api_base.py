"""`wecom.api_base` written with or without `/cgi-bin`, with or without a trailing slash: every
spelling reaches the same API, and `check` shows the URL it will call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, parse_config
from bot.simulator.fake_api import FakeWeCom
from tests.conftest import MakeBot
from tests.kit import CORP_ID, ROOT, SECRET, BotKit, make_config, shipped_config

SPELLINGS = ["{base}", "{base}/", "{base}/cgi-bin", "{base}/cgi-bin/"]


async def claim(bot: BotKit, userid: str) -> str:
    reply = await bot.say(userid, "尽责\n指标：A01\n说明：参加切丝机停产技改突击队")
    assert "已提交尽责申报" in reply, reply
    return reply


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_every_spelling_of_the_api_base_delivers_the_approvers_card(
    make_bot: MakeBot, fake: FakeWeCom, spelling: str
) -> None:
    bot = await make_bot(wecom={"api_base": spelling.format(base=fake.base_url)})
    assert bot.app.config.wecom.api_base == fake.base_url
    await claim(bot, "wangfang")
    await bot.drain()
    [card] = bot.sent_to("zhangwei", "template_card")
    assert card.body["main_title"]["title"].startswith("尽责申报 #")
    calls = bot.fake.calls()
    assert [c.api for c in calls][:2] == ["gettoken", "message/send"]
    assert all(c.status == 200 and c.errcode == 0 for c in calls)


@pytest.mark.parametrize(
    ("written", "root"),
    [
        ("https://qyapi.weixin.qq.com", "https://qyapi.weixin.qq.com"),
        ("https://qyapi.weixin.qq.com/", "https://qyapi.weixin.qq.com"),
        ("https://qyapi.weixin.qq.com/cgi-bin", "https://qyapi.weixin.qq.com"),
        ("https://qyapi.weixin.qq.com/cgi-bin/", "https://qyapi.weixin.qq.com"),
        (" http://127.0.0.1:8080/sim/cgi-bin// ", "http://127.0.0.1:8080/sim"),
    ],
)
def test_the_base_is_normalised_once_at_validation(written: str, root: str) -> None:
    config = parse_config({**shipped_config(), "wecom": {"api_base": written}}, env={})
    assert config.wecom.api_base == root


def test_a_base_that_is_not_a_url_is_a_config_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**shipped_config(), "wecom": {"api_base": "qyapi.weixin.qq.com/cgi-bin"}}, env={})
    assert any(p.startswith("wecom.api_base: must be an http(s) URL") for p in caught.value.problems)


def test_check_prints_the_token_url_it_will_call_without_the_secret(tmp_path: Path) -> None:
    config = make_config(f"sqlite:///{tmp_path}/p.db", "https://qyapi.weixin.qq.com/cgi-bin/")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(path), "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    assert f"GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid={CORP_ID}&corpsecret=…" in out.stdout
    assert "POST https://qyapi.weixin.qq.com/cgi-bin/message/send (agentid 1000002)" in out.stdout
    assert SECRET not in out.stdout + out.stderr
