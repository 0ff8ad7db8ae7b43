"""Typed exceptions for the WeCom HTTP API.

`error_for` maps a WeCom errcode to the narrowest class; `retryable` tells a caller whether
trying again later can help (rate limits, system busy, HTTP 5xx/429, timeouts); `misconfiguration`
tells whether the deployment, not the message, is at fault, and what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class WeComError(Exception):
    """WeCom answered with errcode != 0. Unknown errcodes get this class itself."""

    codes: ClassVar[tuple[int, ...]] = ()
    _retryable: ClassVar[bool] = False

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def retryable(self) -> bool:
        return self._retryable

    def __str__(self) -> str:
        return f"WeCom errcode {self.errcode}: {self.errmsg}"


class InvalidCredentials(WeComError):
    """40001: corp_id/secret mismatch, secret reset or app disabled; retrying will not help."""

    codes = (40001,)


class TokenExpired(WeComError):
    """The access token is invalid (40014) or expired (42001); the client refreshes once by itself."""

    codes = (40014, 42001)


class RateLimited(WeComError):
    """API frequency (45009) or concurrency (45033) limit; WeCom blocks for up to a minute or an hour."""

    codes = (45009, 45033)
    _retryable = True


class SystemBusy(WeComError):
    """-1: WeCom asks to retry (the docs suggest at most 3 times)."""

    codes = (-1,)
    _retryable = True


class InvalidReceiver(WeComError):
    """Every receiver invalid or out of the app's visible range (81013), bad (40003) or unknown
    (60111) UserID."""

    codes = (81013, 40003, 60111)


class ResponseCodeInvalid(WeComError):
    """60140: the template card response_code is unknown, expired (72 h) or already used."""

    codes = (60140,)


class WebhookInvalid(WeComError):
    """Group robot webhook invalid or robot removed (93000), disabled (93004), not in the chat (93008)."""

    codes = (93000, 93004, 93008)


class WeComHTTPError(WeComError):
    """HTTP status != 200, or a body that is not WeCom JSON. `errcode` holds the HTTP status."""

    def __init__(self, status: int, errmsg: str = "") -> None:
        super().__init__(status, errmsg or f"HTTP {status}")
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class WeComTimeout(WeComError):
    """No answer in time, or the connection failed. `errcode` is -1, as for "system busy"."""

    _retryable = True

    def __init__(self, errmsg: str = "timeout") -> None:
        super().__init__(-1, errmsg)


_BY_CODE: dict[int, type[WeComError]] = {
    code: cls
    for cls in (
        InvalidCredentials,
        TokenExpired,
        RateLimited,
        SystemBusy,
        InvalidReceiver,
        ResponseCodeInvalid,
        WebhookInvalid,
    )
    for code in cls.codes
}


def error_for(errcode: int, errmsg: str = "") -> WeComError:
    """The exception for a WeCom errcode (`WeComError` itself when no subclass claims it)."""
    return _BY_CODE.get(errcode, WeComError)(errcode, errmsg)


@dataclass(frozen=True)
class Misconfiguration:
    """What an errcode that no message could avoid says about the deployment: the setting to fix
    (a config key, or the place in the WeCom admin console) and how, in Chinese and English."""

    errcode: int
    errmsg: str
    setting: str
    hint_zh: str
    hint_en: str


# Errcodes that mean every app message will fail the same way until someone changes a setting
# (WeCom's gettoken page and global errcode list). Retrying cannot help, and the person waiting for
# a card never hears of it, so the outbox reports these to the admins instead.
_APP_MISCONFIGURED: dict[int, tuple[str, str, str]] = {
    40001: (
        "wecom.secret",
        "应用的 Secret 不对（或已重置、应用已停用）：在管理后台 应用管理 → 先锋 → Secret 查看，"
        "更新 WECOM_SECRET 后重启。",
        "the app's Secret is wrong, was reset, or the app is disabled: copy it again from the admin console",
    ),
    40013: (
        "wecom.corp_id",
        "企业ID 不对：在管理后台 我的企业 → 企业信息 底部复制，更新 WECOM_CORP_ID 后重启。",
        "the CorpID is wrong: copy it from My Company → Company Info in the admin console",
    ),
    41001: (
        "wecom.api_base",
        "请求没有带上 access_token，通常是 wecom.api_base 写错了路径：应为 https://qyapi.weixin.qq.com"
        "（可带 /cgi-bin）。用 python -m bot check 查看实际请求的地址。",
        "the request reached WeCom without an access token, usually because wecom.api_base has a wrong "
        "path; `python -m bot check` prints the URL it calls",
    ),
    41002: (
        "wecom.corp_id",
        "没有配置企业ID：设置 WECOM_CORP_ID 后重启。",
        "the CorpID is empty: set WECOM_CORP_ID",
    ),
    41004: (
        "wecom.secret",
        "没有配置应用的 Secret：设置 WECOM_SECRET 后重启。",
        "the app's Secret is empty: set WECOM_SECRET",
    ),
    40056: (
        "wecom.agent_id",
        "AgentId 不对：在管理后台 应用管理 → 先锋 页面查看，更新 WECOM_AGENT_ID 后重启。",
        "the AgentId is wrong: copy it from the app's page in the admin console",
    ),
    60020: (
        "企业可信IP",
        "服务器的出口 IP 不在应用的企业可信IP里：在管理后台 应用管理 → 先锋 → 开发者接口 → 企业可信IP 中添加"
        "（约 1 分钟后生效）。",
        "the server's outgoing IP is not among the app's trusted IPs: add it under the app's developer "
        "settings (takes about a minute)",
    ),
    48002: (
        "应用权限",
        "应用没有调用这个接口的权限：在管理后台检查 先锋 应用的接口权限和可见范围。",
        "the app may not call this API: check its API permissions and visible range in the admin console",
    ),
}
_WEBHOOK_MISCONFIGURED = {
    93000: "群机器人的 webhook 地址无效，或机器人已被移出群",
    93004: "群机器人已被停用",
    93008: "群机器人已不在群里",
}


def misconfiguration(exc: WeComError, *, group: str | None = None) -> Misconfiguration | None:
    """The configuration problem behind `exc`, or None when the message itself (or passing trouble)
    is at fault. `group` names the group robot for webhook calls; its errcodes mean its webhook
    address in `groups.<group>.webhook` needs fixing."""
    if group is not None:
        what = _WEBHOOK_MISCONFIGURED.get(exc.errcode) if not isinstance(exc, WeComHTTPError) else None
        if what is None:
            return None
        return Misconfiguration(
            exc.errcode,
            exc.errmsg,
            f"groups.{group}.webhook",
            f"{what}：在群设置 → 群机器人 中重新复制「{group}」机器人的 webhook 地址，更新配置后重启。",
            f"the webhook of group robot {group!r} is invalid, disabled or removed: copy its address again",
        )
    if isinstance(exc, WeComHTTPError):
        if exc.status != 404:
            return None
        return Misconfiguration(
            404,
            exc.errmsg,
            "wecom.api_base",
            "企业微信接口地址不存在（HTTP 404）：检查 wecom.api_base，应为 https://qyapi.weixin.qq.com。",
            "the WeCom API answered 404: wecom.api_base points at the wrong place",
        )
    known = _APP_MISCONFIGURED.get(exc.errcode)
    if known is None or isinstance(exc, WeComTimeout):
        return None
    setting, hint_zh, hint_en = known
    return Misconfiguration(exc.errcode, exc.errmsg, setting, hint_zh, hint_en)
