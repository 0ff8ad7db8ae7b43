"""Typed exceptions for the WeCom HTTP API.

`error_for` maps a WeCom errcode to the narrowest class; `retryable` tells a caller whether
trying again later can help (rate limits, system busy, HTTP 5xx/429, timeouts).
"""

from __future__ import annotations

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
