"""The callback's signature check: constant-time, and still right for the published vectors."""

from __future__ import annotations

import hmac
import json
import time
from pathlib import Path
from unittest import mock

import pytest
from wechatpy.crypto import BaseWeChatCrypto
from wechatpy.enterprise.crypto import PrpCrypto

from bot.wecom import callback
from tests.kit import BotKit

VECTORS = json.loads((Path(__file__).parent / "data" / "wecom_vectors.json").read_text(encoding="utf-8"))[
    "sets"
]
IDS = [v["name"] for v in VECTORS]


class Spy:
    """Wraps hmac.compare_digest to record what the callback compared."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.real = hmac.compare_digest

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls.append((a, b))
        return self.real(a, b)


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_published_signatures_verify_and_a_changed_one_does_not(v: dict) -> None:  # type: ignore[type-arg]
    q = v["verify_url"]
    ok = callback.signature_matches(v["token"], q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
    assert ok
    flipped = q["msg_signature"][:-1] + ("0" if q["msg_signature"][-1] != "0" else "1")
    assert not callback.signature_matches(v["token"], flipped, q["timestamp"], q["nonce"], q["echostr"])


def test_a_signature_that_is_not_ascii_is_refused_not_an_error() -> None:
    assert not callback.signature_matches("t", "签名" * 20, "1", "2", "x")


def envelope(bot: BotKit, text: str, *, forge: bool = False) -> tuple[str, str]:
    query, body = bot.wecom.envelope(bot.wecom.text("wangfang", text))
    if forge:  # one hex digit changed, the rest right: what a timing attack would try
        sig = query.split("msg_signature=")[1].split("&")[0]
        query = query.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    return query, body


async def post(bot: BotKit, sealed: tuple[str, str]) -> int:
    query, body = sealed
    async with bot.http.post(f"{bot.callback_url}?{query}", data=body.encode()) as resp:
        return resp.status


def verify_params(bot: BotKit, echo: str) -> dict[str, str]:
    w = bot.app.config.wecom
    echostr = PrpCrypto(bot.app.callback.cipher.key).encrypt(echo, w.corp_id).decode()
    timestamp, nonce = str(int(time.time())), "12345"
    sig = callback.signature(w.token, timestamp, nonce, echostr)
    return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}


async def test_post_signature_is_compared_with_compare_digest(bot: BotKit) -> None:
    spy = Spy()
    with mock.patch.object(callback.hmac, "compare_digest", spy):
        good = await post(bot, envelope(bot, "帮助"))
        bad = await post(bot, envelope(bot, "帮助", forge=True))
    assert good == 200
    assert bad == 403
    assert len(spy.calls) == 2
    assert spy.calls[0][0] == spy.calls[0][1]
    assert spy.calls[1][0] != spy.calls[1][1]


async def test_wechatpy_never_compares_a_wrong_signature(bot: BotKit) -> None:
    # wechatpy's own checks compare with `!=`: the callback must not rely on them at all.
    forged, right = envelope(bot, "帮助", forge=True), envelope(bot, "帮助")
    compared = AssertionError("wechatpy compared a signature")
    with (
        mock.patch.object(BaseWeChatCrypto, "_decrypt_message", side_effect=compared),
        mock.patch.object(BaseWeChatCrypto, "_check_signature", side_effect=compared),
    ):
        bad = await post(bot, forged)
        good = await post(bot, right)
    assert bad == 403
    assert good == 200


async def test_url_verification_compares_with_compare_digest(bot: BotKit) -> None:
    spy = Spy()
    params = verify_params(bot, "echo-123")
    with mock.patch.object(callback.hmac, "compare_digest", spy):
        async with bot.http.get(bot.callback_url, params=params) as resp:
            assert resp.status == 200
            assert await resp.text() == "echo-123"
        async with bot.http.get(bot.callback_url, params={**params, "nonce": params["nonce"] + "1"}) as resp:
            assert resp.status == 403
    assert [a == b for a, b in spy.calls] == [True, False]
