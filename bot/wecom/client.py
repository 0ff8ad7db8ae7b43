"""Async client for the outgoing WeCom APIs: app messages, template card updates, media,
contacts and the group-robot webhook. One instance per app (corp_id + secret); it owns that
app's access token and raises the typed errors from `bot.wecom.errors`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from typing import Any, Protocol

import aiohttp
from yarl import URL

from bot.wecom.errors import (
    InvalidCredentials,
    TokenExpired,
    WeComHTTPError,
    WeComTimeout,
    error_for,
)

log = logging.getLogger(__name__)

# Refresh this long before WeCom's expires_in runs out, so a token never dies mid-request.
_TOKEN_MARGIN = 300.0


def api_root(api_base: str) -> str:
    """The API base without `/cgi-bin` and trailing slashes: `https://qyapi.weixin.qq.com/cgi-bin/`
    (as wechatpy and most WeCom documents write it) and `https://qyapi.weixin.qq.com` both give
    the latter. Every API path is then `/cgi-bin/<api>` under it, so the base written either way
    never yields `/cgi-bin/cgi-bin/gettoken` (which WeCom answers with 41001)."""
    root = api_base.strip().rstrip("/")
    while root.endswith("/cgi-bin"):
        root = root.removesuffix("/cgi-bin").rstrip("/")
    return root


def token_url(api_base: str, corp_id: str) -> str:
    """The gettoken URL the client calls, with the secret left out: for `check` and for logs."""
    return f"{api_root(api_base)}/cgi-bin/gettoken?corpid={corp_id}&corpsecret=…"


class Observer(Protocol):
    """Metrics hook; both methods are called synchronously and must not raise."""

    def token_refreshed(self) -> None: ...

    def request_done(self, api: str, errcode: int | None, ok: bool) -> None: ...


class WeComClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        corp_id: str,
        secret: str,
        agent_id: int | None,
        api_base: str,
        timeout: float = 10.0,
        observer: Observer | None = None,
    ) -> None:
        self._http = http
        self._corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self._base = api_root(api_base)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer
        self._token: str | None = None
        self._token_deadline = 0.0
        self._token_lock = asyncio.Lock()

    # -- app messages -------------------------------------------------------------------------

    async def send_message(
        self, touser: str, msgtype: str, body: dict[str, Any], *, safe: int = 0
    ) -> dict[str, Any]:
        """POST message/send; `touser` is "id1|id2" or "@all". The answer may list `invaliduser`."""
        payload = {
            "touser": touser,
            "msgtype": msgtype,
            "agentid": self._agent(),
            msgtype: body,
            "safe": safe,
        }
        return await self._api("message/send", "POST", payload=payload)

    async def send_text(self, touser: str, content: str) -> dict[str, Any]:
        return await self.send_message(touser, "text", {"content": content})

    async def send_markdown(self, touser: str, content: str) -> dict[str, Any]:
        return await self.send_message(touser, "markdown", {"content": content})

    async def send_textcard(
        self, touser: str, title: str, description: str, url: str, btntxt: str | None = None
    ) -> dict[str, Any]:
        card = {"title": title, "description": description, "url": url}
        if btntxt:
            card["btntxt"] = btntxt
        return await self.send_message(touser, "textcard", card)

    async def send_template_card(self, touser: str, card: dict[str, Any]) -> dict[str, Any]:
        """Interactive cards answer with a `response_code` for `update_template_card`."""
        return await self.send_message(touser, "template_card", card)

    async def send_file(self, touser: str, media_id: str) -> dict[str, Any]:
        return await self.send_message(touser, "file", {"media_id": media_id})

    async def update_template_card(
        self,
        *,
        userids: list[str],
        response_code: str,
        button_replace_name: str | None = None,
        template_card: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Grey out the card's button (`button_replace_name`) or replace the whole card; a
        response_code works once (ResponseCodeInvalid after that)."""
        if (button_replace_name is None) == (template_card is None):
            raise ValueError("give exactly one of button_replace_name and template_card")
        payload: dict[str, Any] = {
            "userids": userids,
            "agentid": self._agent(),
            "response_code": response_code,
        }
        if template_card is None:
            payload["button"] = {"replace_name": button_replace_name}
        else:
            payload["template_card"] = template_card
        return await self._api("message/update_template_card", "POST", payload=payload)

    # -- media and contacts -------------------------------------------------------------------

    async def upload_media(
        self, kind: str, filename: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str:
        """Upload temporary media (kind: image, voice, video, file); the media_id lives 3 days."""
        answer = await self._api(
            "media/upload", "POST", params={"type": kind}, upload=(filename, data, content_type)
        )
        return str(answer["media_id"])

    async def download_media(self, media_id: str) -> tuple[bytes, str | None, str | None]:
        """(bytes, filename from Content-Disposition, content type) of temporary media."""
        return await self._api("media/get", "GET", params={"media_id": media_id}, download=True)

    async def get_user(self, userid: str) -> dict[str, Any]:
        return await self._api("user/get", "GET", params={"userid": userid})

    # -- the address book (通讯录), read only: `python -m bot members sync` ----------------------

    async def department_list(self, root: int = 1) -> list[dict[str, Any]]:
        """department/list: `root` and every department under it, with names where the app may see
        them ({id, name, parentid, order}); WeCom calls it slow and suggests simplelist instead."""
        answer = await self._api("department/list", "GET", params={"id": str(root)})
        return list(answer.get("department") or [])

    async def department_simplelist(self, root: int = 1) -> list[dict[str, Any]]:
        """department/simplelist: ids only ({id, parentid, order}), within the app's visible range."""
        answer = await self._api("department/simplelist", "GET", params={"id": str(root)})
        return list(answer.get("department_id") or [])

    async def user_list(self, department_id: int) -> list[dict[str, Any]]:
        """user/list: the members of one department in detail (userid, name, department,
        main_department, status …). Refused (e.g. 60011, 48002) to apps without the right."""
        answer = await self._api("user/list", "GET", params={"department_id": str(department_id)})
        return list(answer.get("userlist") or [])

    async def user_simplelist(self, department_id: int) -> list[dict[str, Any]]:
        """user/simplelist: userid, name and department of the members of one department."""
        answer = await self._api("user/simplelist", "GET", params={"department_id": str(department_id)})
        return list(answer.get("userlist") or [])

    # -- group robot webhook (the key in the URL is the credential; no access token) ---------

    async def webhook_send(self, webhook_url: str, msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request(
            "webhook/send", "POST", URL(webhook_url), payload={"msgtype": msgtype, msgtype: body}
        )

    async def webhook_markdown(self, webhook_url: str, content: str) -> dict[str, Any]:
        return await self.webhook_send(webhook_url, "markdown", {"content": content})

    async def webhook_image(self, webhook_url: str, data: bytes) -> dict[str, Any]:
        """JPG or PNG, at most 2 MB before base64."""
        body = {"base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()}
        return await self.webhook_send(webhook_url, "image", body)

    async def webhook_file(self, webhook_url: str, media_id: str) -> dict[str, Any]:
        return await self.webhook_send(webhook_url, "file", {"media_id": media_id})

    async def webhook_upload(self, webhook_url: str, filename: str, data: bytes) -> str:
        """Upload a file for `webhook_file`; returns its media_id."""
        url = URL(webhook_url)
        upload_url = (url.parent / "upload_media").with_query(key=url.query.get("key", ""), type="file")
        answer = await self._request(
            "webhook/upload_media", "POST", upload_url, upload=(filename, data, "application/octet-stream")
        )
        return str(answer["media_id"])

    # -- plumbing ---------------------------------------------------------------------------

    def _agent(self) -> int:
        if self.agent_id is None:
            raise ValueError("agent_id is not configured; app messages need it")
        return self.agent_id

    async def _api(self, api: str, method: str, *, params: dict[str, str] | None = None, **kw: Any) -> Any:
        """Call /cgi-bin/<api> with the access token; on a token error refresh once and retry,
        because WeCom may revoke a token before expires_in (40001 included, as wechatpy does)."""
        url = URL(f"{self._base}/cgi-bin/{api}")
        token = await self._access_token()
        try:
            return await self._request(
                api, method, url.with_query({**(params or {}), "access_token": token}), **kw
            )
        except (TokenExpired, InvalidCredentials) as e:
            log.info("WeCom %s answered errcode %s; refreshing the access token once", api, e.errcode)
            token = await self._access_token(stale=token)
        return await self._request(
            api, method, url.with_query({**(params or {}), "access_token": token}), **kw
        )

    async def _access_token(self, stale: str | None = None) -> str:
        """The cached token unless it is near expiry or equals `stale`. Under the lock, so that
        concurrent callers wait for one gettoken instead of each making their own."""
        if self._token and self._token != stale and time.monotonic() < self._token_deadline:
            return self._token
        async with self._token_lock:
            if self._token and self._token != stale and time.monotonic() < self._token_deadline:
                return self._token
            url = URL(f"{self._base}/cgi-bin/gettoken").with_query(
                corpid=self._corp_id, corpsecret=self._secret
            )
            answer = await self._request("gettoken", "GET", url)
            expires_in = float(answer.get("expires_in", 7200))
            self._token = str(answer["access_token"])
            self._token_deadline = time.monotonic() + expires_in - min(_TOKEN_MARGIN, expires_in / 2)
            log.info(
                "WeCom access token refreshed for corp %s (expires in %.0f s)", self._corp_id, expires_in
            )
            if self._observer:
                self._observer.token_refreshed()
            return self._token

    async def _request(
        self,
        api: str,
        method: str,
        url: URL,
        *,
        payload: dict[str, Any] | None = None,
        upload: tuple[str, bytes, str] | None = None,
        download: bool = False,
    ) -> Any:
        """One HTTP round trip → the JSON dict (or, with `download`, the file triple).
        Errors never include the URL: it carries the secret, token or webhook key."""
        data = None
        if upload:
            filename, content, content_type = upload
            # WeCom wants the raw UTF-8 filename, as browsers send it: it shows percent-encoded names
            # as-is (SKIT issue #40) and answers 44001 to RFC 2231 filename* (sbzhu/weworkapi_python#1).
            data = aiohttp.FormData(quote_fields=False)
            data.add_field("media", content, filename=filename, content_type=content_type)
        errcode: int | None = None
        try:
            async with self._http.request(
                method, url, json=payload, data=data, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise WeComHTTPError(
                        resp.status, f"{api}: HTTP {resp.status} {resp.reason or ''}".strip()
                    )
                body = await resp.read()
                disposition = resp.content_disposition
                if download and disposition and disposition.filename is not None:
                    self._done(api, None, True)
                    return body, disposition.filename, resp.content_type
            answer = _parse(api, body)
            errcode = int(answer.get("errcode", 0))
            if errcode:
                raise error_for(errcode, str(answer.get("errmsg", "")))
            if download:
                raise WeComHTTPError(200, f"{api}: expected a file, got JSON without an errcode")
        except (TimeoutError, aiohttp.ClientConnectionError) as e:
            self._done(api, None, False)
            # Only the type: aiohttp puts the full URL, token included, in some of these messages.
            raise WeComTimeout(f"{api}: {type(e).__name__}") from None
        except Exception:
            self._done(api, errcode, False)
            raise
        self._done(api, 0, True)
        return answer

    def _done(self, api: str, errcode: int | None, ok: bool) -> None:
        log.debug("WeCom %s done: errcode=%s ok=%s", api, errcode, ok)
        if self._observer:
            self._observer.request_done(api, errcode, ok)


def _parse(api: str, body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise WeComHTTPError(200, f"{api}: response is not a JSON object")
    return answer
