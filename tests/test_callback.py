"""The callback endpoint through HTTP: the published vectors, every refusal, and message parsing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select
from wechatpy.crypto.base import BasePrpCrypto
from wechatpy.enterprise import WeChatCrypto

from bot.simulator.wecom_side import WeComSide
from bot.wecom.callback import MessageCipher, WeComCallback
from bot.wecom.messages import MalformedMessage, PassiveReply, parse_incoming
from storage.models import InboxEntry
from tests.kit import BotKit

# The published vectors, copied from shared/wecom/vectors.json so that a clone tests on its own.
VECTOR_FILE = Path(__file__).resolve().parent / "data" / "wecom_vectors.json"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "wecom" / "vectors.json"
VECTORS = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))["sets"]
VECTOR_IDS = [v["name"] for v in VECTORS]


async def vector_bot(make_bot, v: dict) -> BotKit:  # type: ignore[no-untyped-def]
    # max_clock_skew 0 turns the freshness check off so that the 2014/2016 vectors replay.
    return await make_bot(
        wecom={"token": v["token"], "encoding_aes_key": v["encoding_aes_key"], "corp_id": v["corp_id"]},
        server={"max_clock_skew": 0},
    )


@pytest.mark.parametrize("v", VECTORS, ids=VECTOR_IDS)
async def test_url_verification_vector_echoes_plaintext(make_bot, http, v):  # type: ignore[no-untyped-def]
    bot = await vector_bot(make_bot, v)
    async with http.get(bot.callback_url, params=v["verify_url"]) as resp:
        assert resp.status == 200
        assert await resp.read() == v["verify_url"]["expected_reply"].encode()


@pytest.mark.parametrize("v", VECTORS, ids=VECTOR_IDS)
async def test_post_vector_is_decrypted_recorded_and_answered(make_bot, http, v):  # type: ignore[no-untyped-def]
    bot = await vector_bot(make_bot, v)
    p = v["post"]
    query = {k: p[k] for k in ("msg_signature", "timestamp", "nonce")}
    async with http.post(bot.callback_url, params=query, data=p["body"].encode()) as resp:
        assert resp.status == 200
        body = await resp.text()
    # The sender is not a member: a polite refusal comes back, encrypted with the vector's key.
    side = WeComSide(
        token=v["token"], encoding_aes_key=v["encoding_aes_key"], corp_id=v["corp_id"], agent_id=1
    )
    reply = side.read_reply(body)
    assert reply is not None and "还不是" in reply.text
    entry = await bot.query(lambda s: s.execute(select(InboxEntry)).scalar_one())
    assert entry.key == f"m:{p['expected']['MsgId']}"
    assert entry.userid == p["expected"]["FromUserName"]


@pytest.mark.skipif(not SHARED_VECTORS.exists(), reason="shared/ is not beside this checkout")
def test_vectors_are_the_published_ones():
    assert json.loads(VECTOR_FILE.read_text(encoding="utf-8")) == json.loads(
        SHARED_VECTORS.read_text(encoding="utf-8")
    )


def test_plaintext_vectors_parse_to_expected_fields():
    for v in VECTORS:
        m = parse_incoming(v["post"]["expected_plaintext"])
        e = v["post"]["expected"]
        assert (m.sender, m.kind, m.content, m.msg_id, m.agent_id) == (
            e["FromUserName"],
            e["MsgType"],
            e["Content"],
            e["MsgId"],
            e["AgentID"],
        )


def test_deterministic_encrypt_vector_matches():
    """The bot's own sealing of a passive reply (bot.wecom.callback.MessageCipher) and wechatpy's both
    give the published ciphertext and signature for the vector's random prefix."""
    v = next(s for s in VECTORS if "deterministic_encrypt" in s)
    d = v["deterministic_encrypt"]
    crypto = WeChatCrypto(v["token"], v["encoding_aes_key"], v["corp_id"])
    ours = WeComCallback(
        token=v["token"],
        encoding_aes_key=v["encoding_aes_key"],
        corp_id=v["corp_id"],
        dispatch=mock.AsyncMock(),
    )
    with mock.patch.object(BasePrpCrypto, "get_random_string", return_value=d["random_prefix"]):
        theirs = crypto.encrypt_message(d["plaintext"], d["nonce"], d["timestamp"])
    with mock.patch.object(MessageCipher, "get_random_string", return_value=d["random_prefix"]):
        sealed = ours.seal(d["plaintext"], d["nonce"], d["timestamp"])
    for out in (theirs, sealed):
        assert f"<Encrypt><![CDATA[{d['expected_encrypt']}]]></Encrypt>" in out
        assert f"<MsgSignature><![CDATA[{d['expected_msg_signature']}]]></MsgSignature>" in out
    assert sealed == theirs


def test_each_reply_opens_with_new_random_characters():
    ours = WeComCallback(token="t", encoding_aes_key="a" * 43, corp_id="ww1", dispatch=mock.AsyncMock())
    prefixes = {ours.cipher.get_random_string() for _ in range(100)}
    assert len(prefixes) == 100 and all(len(p) == 16 for p in prefixes)
    sealed = {ours.seal("<xml/>", "n", "1") for _ in range(2)}
    assert len(sealed) == 2  # the same reply twice is two different ciphertexts


async def test_verification_with_wrong_nonce_is_refused(make_bot, http):  # type: ignore[no-untyped-def]
    v = next(s for s in VECTORS if "verify_url_bad_nonce" in s)
    bot = await vector_bot(make_bot, v)
    params = {k: v["verify_url_bad_nonce"][k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}
    async with http.get(bot.callback_url, params=params) as resp:
        assert resp.status == 403


async def post_raw(bot: BotKit, query: str, body: bytes | str) -> tuple[int, str]:
    data = body.encode() if isinstance(body, str) else body
    async with bot.http.post(f"{bot.callback_url}?{query}", data=data) as resp:
        return resp.status, await resp.text()


async def test_bad_signature_is_403(bot: BotKit):
    query, body = bot.wecom.envelope(bot.wecom.text("zhangwei", "帮助"))
    forged = query.replace("msg_signature=", "msg_signature=0")
    assert (await post_raw(bot, forged, body))[0] == 403
    assert await bot.query(lambda s: s.execute(select(InboxEntry)).all()) == []


async def test_corp_id_mismatch_is_403_not_500(bot: BotKit):
    w = bot.app.config.wecom
    other = WeComSide(
        token=w.token, encoding_aes_key=w.encoding_aes_key, corp_id="wwsomebodyelse", agent_id=1
    )
    query, body = other.envelope(other.text("zhangwei", "帮助"))
    assert (await post_raw(bot, query, body))[0] == 403


# A second late the past stays past; a future stamp gets nearer while the request travels (a loaded
# machine took over a second, and +301 was accepted as 300): a margin.
@pytest.mark.parametrize("offset", [-301, 330])
async def test_timestamp_more_than_five_minutes_away_is_403(bot: BotKit, offset: int):
    query, body = bot.wecom.envelope(
        bot.wecom.text("zhangwei", "帮助"), timestamp=str(int(time.time()) + offset)
    )
    status, text = await post_raw(bot, query, body)
    assert (status, text) == (403, "stale timestamp")


async def test_timestamp_within_skew_is_accepted(bot: BotKit):
    query, body = bot.wecom.envelope(
        bot.wecom.text("zhangwei", "帮助"), timestamp=str(int(time.time()) - 250)
    )
    assert (await post_raw(bot, query, body))[0] == 200


async def test_malformed_xml_is_400(bot: BotKit):
    query, _ = bot.wecom.envelope(bot.wecom.text("zhangwei", "帮助"))
    assert (await post_raw(bot, query, "<xml><Encrypt>unterminated"))[0] == 400
    assert (await post_raw(bot, query, "not xml at all"))[0] == 400


@pytest.mark.parametrize(
    "evil",
    [
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "boom">]><xml><Encrypt>&x;</Encrypt></xml>',
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1/evil.dtd"><xml><Encrypt>a</Encrypt></xml>',
        '<xml><!ENTITY lol "lol"><Encrypt>a</Encrypt></xml>',
    ],
)
async def test_doctype_or_entity_is_400(bot: BotKit, evil: str):
    query, _ = bot.wecom.envelope(bot.wecom.text("zhangwei", "帮助"))
    assert (await post_raw(bot, query, evil))[0] == 400


async def test_doctype_inside_the_encrypted_plaintext_is_400(bot: BotKit):
    plain = '<!DOCTYPE xml [<!ENTITY x "y">]>' + bot.wecom.text("zhangwei", "帮助")
    query, body = bot.wecom.envelope(plain)
    assert (await post_raw(bot, query, body))[0] == 400


async def test_body_over_64_kib_is_413(bot: BotKit):
    query, body = bot.wecom.envelope(bot.wecom.text("zhangwei", "长" * 30000))
    assert len(body.encode()) > 64 * 1024
    assert (await post_raw(bot, query, body))[0] == 413


async def test_missing_signature_is_refused(bot: BotKit):
    _, body = bot.wecom.envelope(bot.wecom.text("zhangwei", "帮助"))
    assert (await post_raw(bot, "timestamp=1&nonce=2", body))[0] == 403


async def test_unknown_message_type_gets_empty_200(bot: BotKit):
    plain = bot.wecom.text("zhangwei", "x").replace("<![CDATA[text]]>", "<![CDATA[hologram]]>")
    d = await bot.deliver(plain)
    assert (d.status, d.body) == (200, "")


async def test_unknown_event_gets_empty_200(bot: BotKit):
    d = await bot.deliver(bot.wecom.event("zhangwei", "some_future_event"))
    assert (d.status, d.body) == (200, "")


async def test_voice_gets_a_polite_text_answer(bot: BotKit):
    plain = (
        bot.wecom.text("zhangwei", "x")
        .replace("<![CDATA[text]]>", "<![CDATA[voice]]>")
        .replace("<Content><![CDATA[x]]></Content>", "<MediaId><![CDATA[m1]]></MediaId><Format>amr</Format>")
    )
    d = await bot.deliver(plain)
    assert d.status == 200 and d.reply is not None and "文字、图片和文件" in d.reply.text


async def test_string_msgid_is_kept_as_text_and_deduplicated(bot: BotKit):
    msg_id = "CAIQg/PKxgYY2sC9tpuAgAMg9/zKaw=="
    first = await bot.say("zhangwei", "我的", msg_id=msg_id)
    again = await bot.say("zhangwei", "我的", msg_id=msg_id)
    assert first.startswith("张伟（党员）") and again == first
    keys = await bot.query(lambda s: s.execute(select(InboxEntry.key)).scalars().all())
    assert keys == [f"m:{msg_id}"]


def test_template_card_event_fields_and_both_option_spellings():
    base = (
        "<xml><ToUserName>ww</ToUserName><FromUserName>zhangwei</FromUserName><CreateTime>123456789</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event>"
        "<EventKey><![CDATA[approve:12]]></EventKey><TaskId><![CDATA[t-12-zhangwei]]></TaskId>"
        "<CardType><![CDATA[vote_interaction]]></CardType><ResponseCode><![CDATA[rc1]]></ResponseCode>"
        "<AgentID>1</AgentID><SelectedItems><SelectedItem><QuestionKey><![CDATA[q1]]></QuestionKey>"
        "<{ids}><{id}><![CDATA[o1]]></{id}><{id}><![CDATA[o2]]></{id}></{ids}></SelectedItem></SelectedItems></xml>"
    )
    for ids, one in (("OptionIds", "OptionId"), ("OpitonIds", "OpitonId")):
        m = parse_incoming(base.format(ids=ids, id=one))
        assert (m.kind, m.event, m.event_key, m.task_id, m.card_type, m.response_code) == (
            "event",
            "template_card_event",
            "approve:12",
            "t-12-zhangwei",
            "vote_interaction",
            "rc1",
        )
        assert m.selected == {"q1": ("o1", "o2")}
        assert m.key == "e:zhangwei:123456789:template_card_event:approve:12:t-12-zhangwei"


HEAD = "<FromUserName>zhangwei</FromUserName><CreateTime>123456789</CreateTime>"


@pytest.mark.parametrize(
    ("plaintext", "why"),
    [
        ("", "empty message"),
        ("<xml>" + HEAD + "<MsgType>text</MsgType>", "no element found"),  # never closed
        ("<msg>" + HEAD + "<MsgType>text</MsgType></msg>", "no <xml> root"),
        ("<xml>" + HEAD + "<Content>x</Content></xml>", "MsgType is required"),
        ("<xml>" + HEAD + "<MsgType> </MsgType></xml>", "MsgType is required"),
        ("<xml>" + HEAD + "<MsgType>event</MsgType></xml>", "an event needs its Event"),
        ("<xml><FromUserName>zhangwei</FromUserName><MsgType>text</MsgType></xml>", "CreateTime"),
        ("<xml><a:b>1</a:b>" + HEAD + "<MsgType>text</MsgType></xml>", "unbound prefix"),
    ],
)
def test_what_is_not_a_message_is_refused_with_the_reason(plaintext: str, why: str):
    with pytest.raises(MalformedMessage, match=why):
        parse_incoming(plaintext)


def test_fields_are_stripped_and_a_field_given_twice_counts_once():
    m = parse_incoming(
        "<xml>" + HEAD + "<MsgType> Text </MsgType><Content><![CDATA[  我的 ]]></Content>"
        "<Content>second</Content><MsgId>7</MsgId><AgentID x='1'> 1000002 </AgentID></xml>"
    )
    assert (m.kind, m.content, m.msg_id, m.agent_id, m.key) == ("text", "我的", "7", "1000002", "m:7")


def test_passive_reply_escapes_cdata_terminator():
    xml = PassiveReply(text="a]]>b").render("u", "c", now=1)
    assert parse_incoming(xml.replace("<MsgType>", "<MsgId>1</MsgId><MsgType>")).content == "a]]>b"


def verification_query(bot: BotKit, *, timestamp: str | None = None) -> dict[str, str]:
    """The signed GET WeCom sends when the callback URL is saved: its echostr is an encrypted text."""
    query, body = bot.wecom.envelope("echo-1234", timestamp=timestamp)
    params = dict(parse_qsl(query))
    params["echostr"] = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", body).group(1)  # type: ignore[union-attr]
    return params


async def test_url_verification_answers_the_plaintext(bot: BotKit):
    async with bot.http.get(bot.callback_url, params=verification_query(bot)) as resp:
        assert (resp.status, await resp.text()) == (200, "echo-1234")


@pytest.mark.parametrize("offset", [-301, 301])
async def test_url_verification_with_a_stale_timestamp_is_403(bot: BotKit, offset: int):
    params = verification_query(bot, timestamp=str(int(time.time()) + offset))
    async with bot.http.get(bot.callback_url, params=params) as resp:
        assert (resp.status, await resp.text()) == (403, "stale timestamp")


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce", "echostr"])
async def test_url_verification_without_a_parameter_is_400(bot: BotKit, missing: str):
    params = verification_query(bot)
    del params[missing]
    async with bot.http.get(bot.callback_url, params=params) as resp:
        assert (resp.status, await resp.text()) == (400, "missing query parameters")


async def test_a_body_over_the_limit_without_content_length_is_413(bot: BotKit):
    query, body = bot.wecom.envelope(bot.wecom.text("zhangwei", "长" * 30000))
    data = body.encode()
    assert len(data) > bot.app.config.server.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:  # sent chunked: no Content-Length to refuse up front
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    async with bot.http.post(f"{bot.callback_url}?{query}", data=chunks()) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in resp.request_info.headers
        assert resp.status == 413
    assert await bot.query(lambda s: s.execute(select(InboxEntry)).all()) == []


@pytest.mark.parametrize(
    "broken",
    [
        "<xml><ToUserName>ww</ToUserName><FromUserName>zhangwei",  # cut off
        "<xml><MsgType><![CDATA[text]]></MsgType></xml>",  # no sender
        "just some words",
    ],
)
async def test_decrypted_xml_that_is_broken_is_400_and_records_nothing(bot: BotKit, broken: str):
    query, body = bot.wecom.envelope(broken)
    status, _ = await post_raw(bot, query, body)
    assert status == 400
    assert await bot.query(lambda s: s.execute(select(InboxEntry)).all()) == []
