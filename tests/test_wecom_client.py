"""WeComClient against FakeWeCom on loopback: sends, token caching and refresh, typed errors,
template card updates, media, webhook and contacts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.simulator.fake_api import FakeWeCom, SentMessage
from bot.wecom import client as client_module
from bot.wecom.client import WeComClient
from bot.wecom.errors import (
    InvalidCredentials,
    InvalidReceiver,
    RateLimited,
    ResponseCodeInvalid,
    SystemBusy,
    TokenExpired,
    WebhookInvalid,
    WeComError,
    WeComHTTPError,
    WeComTimeout,
    error_for,
)

BUTTON_CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "周五支部学习", "desc": "请确认是否参加"},
    "task_id": "meeting-42",
    "button_list": [{"text": "参加", "style": 1, "key": "yes"}, {"text": "请假", "style": 2, "key": "no"}],
}


class Counting:
    def __init__(self) -> None:
        self.refreshes = 0
        self.requests: list[tuple[str, int | None, bool]] = []

    def token_refreshed(self) -> None:
        self.refreshes += 1

    def request_done(self, api: str, errcode: int | None, ok: bool) -> None:
        self.requests.append((api, errcode, ok))


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    fake = FakeWeCom()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, base: str, **kw: Any) -> WeComClient:
    options: dict[str, Any] = {
        "corp_id": "wwfake",
        "secret": "fake-secret",
        "agent_id": 1000002,
        "api_base": base,
    }
    return WeComClient(http, **{**options, **kw})


@pytest.fixture
def base(fake: FakeWeCom) -> str:
    assert fake.base_url
    return fake.base_url


@pytest.fixture
def client(base: str, http: aiohttp.ClientSession) -> WeComClient:
    return make_client(http, base)


async def test_each_message_type_is_recorded(fake: FakeWeCom, client: WeComClient) -> None:
    media_id = await client.upload_media("file", "minutes.txt", b"meeting minutes")
    await client.send_text("zhangsan", "你好")
    await client.send_markdown("zhangsan|lisi", "**重要** 通知")
    await client.send_textcard("lisi", "学习通知", "周五 14:00", "https://example.com/m", btntxt="详情")
    answer = await client.send_template_card("lisi", BUTTON_CARD)
    await client.send_file("wangwu", media_id)

    assert [m.msgtype for m in fake.sent()] == ["text", "markdown", "textcard", "template_card", "file"]
    assert fake.sent(msgtype="text")[0].body == {"content": "你好"}
    assert [m.msgtype for m in fake.sent(touser="lisi")] == ["markdown", "textcard", "template_card"]
    assert fake.sent(msgtype="textcard")[0].body["btntxt"] == "详情"
    assert fake.sent(msgtype="file")[0].body == {"media_id": media_id}
    assert answer["response_code"] == fake.sent(msgtype="template_card")[0].response_code
    assert answer["msgid"]


async def test_token_is_cached(fake: FakeWeCom, client: WeComClient) -> None:
    for i in range(5):
        await client.send_text("zhangsan", f"n{i}")
    assert fake.token_requests == 1
    assert len(fake.calls("message/send")) == 5


async def test_concurrent_sends_after_expiry_refresh_once(
    fake: FakeWeCom, base: str, http: aiohttp.ClientSession
) -> None:
    observer = Counting()
    client = make_client(http, base, observer=observer)
    await client.send_text("zhangsan", "warm up")
    fake.expire_tokens()

    await asyncio.gather(*(client.send_text("zhangsan", f"m{i}") for i in range(50)))

    assert fake.token_requests == 2
    assert observer.refreshes == 2
    assert len(fake.sent()) == 51
    assert sum(1 for c in fake.calls("message/send") if c.errcode == 42001) == 50


async def test_token_refreshed_five_minutes_before_expiry(
    fake: FakeWeCom, client: WeComClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.send_text("zhangsan", "fresh token")
    start = time.monotonic()
    # Shift only the client's clock; the fake's tokens stay valid, so any refresh is the client's choice.
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=lambda: start + 7200 - 301))
    await client.send_text("zhangsan", "still cached")
    assert fake.token_requests == 1
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=lambda: start + 7200 - 299))
    await client.send_text("zhangsan", "refreshed early")
    assert fake.token_requests == 2
    assert all(c.errcode == 0 for c in fake.calls("message/send"))


async def test_first_calls_share_one_gettoken(fake: FakeWeCom, client: WeComClient) -> None:
    await asyncio.gather(*(client.send_text("zhangsan", f"m{i}") for i in range(20)))
    assert fake.token_requests == 1


@pytest.mark.parametrize("errcode", [42001, 40014, 40001])
async def test_token_error_refreshes_and_retries_once(
    fake: FakeWeCom, client: WeComClient, errcode: int
) -> None:
    await client.send_text("zhangsan", "warm up")
    fake.fail_next(1, errcode, api="message/send")

    await client.send_text("zhangsan", "after refresh")

    assert fake.token_requests == 2
    assert [m.body["content"] for m in fake.sent()] == ["warm up", "after refresh"]


async def test_persistent_token_error_is_raised_after_one_retry(fake: FakeWeCom, client: WeComClient) -> None:
    fake.fail_always(40014, api="message/send")
    with pytest.raises(TokenExpired) as info:
        await client.send_text("zhangsan", "x")
    assert info.value.errcode == 40014
    assert len(fake.calls("message/send")) == 2
    fake.heal()
    await client.send_text("zhangsan", "healed")
    assert len(fake.sent()) == 1


async def test_wrong_secret_is_invalid_credentials(
    fake: FakeWeCom, base: str, http: aiohttp.ClientSession
) -> None:
    client = make_client(http, base, secret="wrong")
    with pytest.raises(InvalidCredentials) as info:
        await client.send_text("zhangsan", "x")
    assert info.value.errcode == 40001
    assert not info.value.retryable
    assert fake.token_requests == 1
    assert fake.calls("message/send") == []


@pytest.mark.parametrize(
    ("errcode", "error", "retryable"),
    [
        (-1, SystemBusy, True),
        (45009, RateLimited, True),
        (45033, RateLimited, True),
        (81013, InvalidReceiver, False),
    ],
)
async def test_errcodes_raise_typed_errors(
    fake: FakeWeCom, client: WeComClient, errcode: int, error: type[WeComError], retryable: bool
) -> None:
    fake.fail_next(1, errcode, api="message/send")
    with pytest.raises(error) as info:
        await client.send_text("zhangsan", "x")
    assert info.value.errcode == errcode
    assert info.value.errmsg
    assert info.value.retryable is retryable
    await client.send_text("zhangsan", "the fault was used up")


async def test_all_receivers_unknown_is_invalid_receiver(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_user("zhangsan", "张三")
    answer = await client.send_text("zhangsan|ghost", "partly delivered")
    assert answer["invaliduser"] == "ghost"
    with pytest.raises(InvalidReceiver) as info:
        await client.send_text("ghost", "nobody")
    assert info.value.errcode == 81013


async def test_http_500_raises_http_error(fake: FakeWeCom, base: str, http: aiohttp.ClientSession) -> None:
    observer = Counting()
    client = make_client(http, base, observer=observer)
    fake.fail_http(1, 500, api="message/send")
    with pytest.raises(WeComHTTPError) as info:
        await client.send_text("zhangsan", "x")
    assert info.value.status == 500
    assert info.value.retryable
    assert observer.requests[-1] == ("message/send", None, False)
    assert fake.sent() == []


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (502, True), (404, False)])
def test_http_error_retryable(status: int, retryable: bool) -> None:
    assert WeComHTTPError(status).retryable is retryable


async def test_slow_answer_raises_timeout(fake: FakeWeCom, base: str, http: aiohttp.ClientSession) -> None:
    # A group robot needs no access token: the slow request is the only one under the short timeout,
    # and the delay is four times the timeout, so no warm-up call has to beat the clock first.
    client = make_client(http, base, timeout=0.1)
    fake.set_delay(0.4, api="webhook/send")
    with pytest.raises(WeComTimeout) as info:
        await client.webhook_markdown(f"{base}/cgi-bin/webhook/send?key=SLOW", "too slow")
    assert info.value.retryable
    assert fake.token_requests == 0


async def test_a_slow_token_request_raises_timeout(
    fake: FakeWeCom, base: str, http: aiohttp.ClientSession
) -> None:
    client = make_client(http, base, timeout=0.1)
    fake.set_delay(0.4, api="gettoken")
    with pytest.raises(WeComTimeout):
        await client.send_text("zhangsan", "never sent")
    assert fake.calls("message/send") == []


async def test_connection_refused_raises_timeout(http: aiohttp.ClientSession) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(http, f"http://127.0.0.1:{port}")
    with pytest.raises(WeComTimeout):
        await client.get_user("zhangsan")


async def test_response_code_is_single_use(fake: FakeWeCom, client: WeComClient) -> None:
    code = (await client.send_template_card("lisi", BUTTON_CARD))["response_code"]

    await client.update_template_card(userids=["lisi"], response_code=code, button_replace_name="已确认")
    with pytest.raises(ResponseCodeInvalid) as info:
        await client.update_template_card(userids=["lisi"], response_code=code, button_replace_name="再次")

    assert info.value.errcode == 60140
    [update] = fake.card_updates()
    assert (update.userids, update.button_replace_name, update.response_code) == (["lisi"], "已确认", code)


async def test_update_with_full_card(fake: FakeWeCom, client: WeComClient) -> None:
    code = (await client.send_template_card("lisi", BUTTON_CARD))["response_code"]
    card = {**BUTTON_CARD, "replace_text": "已处理"}
    await client.update_template_card(userids=["lisi"], response_code=code, template_card=card)
    assert fake.card_updates()[0].template_card == card
    with pytest.raises(ValueError):
        await client.update_template_card(userids=["lisi"], response_code=code)


async def test_text_notice_card_has_no_response_code(fake: FakeWeCom, client: WeComClient) -> None:
    card = {
        "card_type": "text_notice",
        "main_title": {"title": "t"},
        "card_action": {"type": 1, "url": "https://e.x"},
    }
    answer = await client.send_template_card("lisi", card)
    assert "response_code" not in answer


async def test_media_round_trip(fake: FakeWeCom, client: WeComClient) -> None:
    data = bytes(range(256)) * 40
    media_id = await client.upload_media("file", '党课 "记录" 2024.pdf', data, content_type="application/pdf")

    body, filename, content_type = await client.download_media(media_id)

    assert body == data
    assert filename == '党课 "记录" 2024.pdf'
    assert content_type == "application/pdf"


async def test_unknown_media_raises(client: WeComClient) -> None:
    with pytest.raises(WeComError) as info:
        await client.download_media("media-404")
    assert info.value.errcode == 40007


async def test_webhook_messages_recorded_per_key(fake: FakeWeCom, base: str, client: WeComClient) -> None:
    url_a = f"{base}/cgi-bin/webhook/send?key=AAA"
    url_b = f"{base}/cgi-bin/webhook/send?key=BBB"
    png = b"\x89PNG\r\n\x1a\n fake image"

    await client.webhook_markdown(url_a, '# 通知\n<font color="info">今晚学习</font>')
    await client.webhook_markdown(url_b, "other group")
    await client.webhook_image(url_a, png)
    media_id = await client.webhook_upload(url_a, "名单.xlsx", b"spreadsheet bytes")
    await client.webhook_file(url_a, media_id)

    assert [m.msgtype for m in fake.webhooks("AAA")] == ["markdown", "image", "file"]
    assert [m.body["content"] for m in fake.webhooks("BBB")] == ["other group"]
    image = fake.webhooks("AAA")[1].body
    assert base64.b64decode(image["base64"]) == png
    assert image["md5"] == hashlib.md5(png).hexdigest()
    assert fake.webhooks("AAA")[2].body == {"media_id": media_id}
    assert fake.token_requests == 0


async def test_invalid_webhook(fake: FakeWeCom, base: str, client: WeComClient) -> None:
    fake.invalid_webhook("GONE")
    with pytest.raises(WebhookInvalid) as info:
        await client.webhook_markdown(f"{base}/cgi-bin/webhook/send?key=GONE", "hello?")
    assert info.value.errcode == 93000
    assert fake.webhooks() == []


async def test_get_user(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_user("zhangsan", "张三", department=[2])
    user = await client.get_user("zhangsan")
    assert (user["userid"], user["name"], user["department"]) == ("zhangsan", "张三", [2])
    with pytest.raises(InvalidReceiver) as info:
        await client.get_user("nobody")
    assert info.value.errcode == 60111


async def test_observer_sees_every_request(fake: FakeWeCom, base: str, http: aiohttp.ClientSession) -> None:
    observer = Counting()
    client = make_client(http, base, observer=observer)
    fake.fail_next(1, 45009, api="message/send")
    with pytest.raises(RateLimited):
        await client.send_text("zhangsan", "x")
    await client.send_text("zhangsan", "y")
    assert observer.requests == [
        ("gettoken", 0, True),
        ("message/send", 45009, False),
        ("message/send", 0, True),
    ]
    assert observer.refreshes == 1


async def test_secret_and_token_never_logged(
    fake: FakeWeCom, client: WeComClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.send_text("zhangsan", "x")
    fake.expire_tokens()
    await client.send_text("zhangsan", "y")
    fake.fail_http(1, 503)
    with pytest.raises(WeComHTTPError) as info:
        await client.send_text("zhangsan", "z")
    assert "refreshing" in caplog.text
    for secret in ("fake-secret", "tok-1", "tok-2"):
        assert secret not in caplog.text
        assert secret not in str(info.value)


def test_error_for_picks_class() -> None:
    assert type(error_for(42001, "expired")) is TokenExpired
    assert type(error_for(40001)) is InvalidCredentials
    assert type(error_for(93008)) is WebhookInvalid
    unknown = error_for(48002, "api forbidden")
    assert type(unknown) is WeComError
    assert (unknown.errcode, unknown.errmsg, unknown.retryable) == (48002, "api forbidden", False)


async def test_fake_mounts_as_subapp(http: aiohttp.ClientSession) -> None:
    fake = FakeWeCom()
    parent = web.Application()
    parent.add_subapp("/sim", fake.app())
    runner = web.AppRunner(parent)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        client = make_client(http, f"http://127.0.0.1:{runner.addresses[0][1]}/sim")
        await client.send_text("zhangsan", "via subapp")
        assert fake.sent()[0].body == {"content": "via subapp"}
    finally:
        await runner.cleanup()


async def test_fake_wait_for_and_subscribe(fake: FakeWeCom, client: WeComClient) -> None:
    events: list[tuple[str, Any]] = []
    unsubscribe = fake.subscribe(lambda kind, item: events.append((kind, item)))

    task = asyncio.create_task(client.send_text("zhangsan", "later"))
    await fake.wait_for(lambda: len(fake.sent()) == 1, timeout=2)
    await task

    assert events[0][0] == "app"
    assert isinstance(events[0][1], SentMessage)
    unsubscribe()
    await client.send_text("zhangsan", "unheard")
    assert len(events) == 1
    with pytest.raises(TimeoutError):
        await fake.wait_for(lambda: len(fake.sent()) == 5, timeout=0.05)
