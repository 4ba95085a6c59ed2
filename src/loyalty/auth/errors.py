"""Expected failures of authentication and credential management."""

from __future__ import annotations

from typing import Any

from loyalty.auth.tokens import InvalidToken
from loyalty.errors import DomainError, NotFoundError

__all__ = [
    "ApiKeyNotFound",
    "InvalidRefreshToken",
    "InvalidToken",
    "WeChatError",
]


class InvalidRefreshToken(DomainError):
    """Unknown, expired, revoked or already used refresh token (the session must log in again)."""

    code = "INVALID_REFRESH_TOKEN"

    def __init__(self, message: str = "Refresh token is invalid, expired or revoked.") -> None:
        super().__init__(message)


class ApiKeyNotFound(NotFoundError):
    code = "API_KEY_NOT_FOUND"

    def __init__(self, key: Any = None) -> None:
        super().__init__("API key", key)


class WeChatError(DomainError):
    """WeChat refused or failed a call. ``code`` says which case the client should handle:
    WECHAT_CODE_INVALID (ask ``wx.login`` for a new code), WECHAT_RATE_LIMITED (retry later),
    WECHAT_UNAVAILABLE (WeChat unreachable or answered something unexpected)."""

    code = "WECHAT_UNAVAILABLE"

    def __init__(self, code: str, message: str, errcode: int | None = None) -> None:
        super().__init__(message, errcode=errcode)
        self.code = code  # type: ignore[misc]
        self.errcode = errcode
