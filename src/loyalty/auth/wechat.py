"""WeChat mini-program server API: ``jscode2session`` and the one-time phone number code.

Calls go to ``settings.wechat_api_url`` with a real HTTP client; in dev with no host set they
go to the stand-in of :mod:`loyalty.dev_wechat` in process. ``session_key`` is read only to be
dropped: it is never returned, logged or stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from loyalty.auth.errors import WeChatError
from loyalty.settings import Settings

log = structlog.get_logger(__name__)

# errcodes the client can act on; anything else is WECHAT_UNAVAILABLE.
INVALID_CODE_ERRCODES = frozenset({40029, 40163, 40226})  # invalid, already used, risky user
RATE_LIMITED_ERRCODES = frozenset({45011, 45009})
ACCESS_TOKEN_ERRCODES = frozenset({40001, 42001, 40014})  # invalid or expired access_token
ACCESS_TOKEN_CACHE_KEY = "wechat:access_token:{app_id}"


@dataclass(frozen=True)
class WeChatSession:
    """Who ``wx.login`` identified: ``unionid`` only when the app is bound to an Open
    Platform account."""

    openid: str
    unionid: str | None


async def code_to_session(settings: Settings, code: str) -> WeChatSession:
    """Exchange a ``wx.login`` code (valid once, five minutes). Raises :class:`WeChatError`."""
    body = await _call(
        settings,
        "GET",
        "/sns/jscode2session",
        params={
            "appid": settings.wechat_app_id,
            "secret": settings.wechat_app_secret.get_secret_value(),
            "js_code": code,
            "grant_type": "authorization_code",
        },
    )
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat returned no openid.")
    unionid = body.get("unionid")
    return WeChatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else None)


async def phone_number(settings: Settings, code: str, *, redis: Any = None) -> str:
    """The phone number behind a ``getPhoneNumber`` code, as WeChat formats it
    (``+86 13812345678`` style is normalised by the caller). Raises :class:`WeChatError`."""
    for attempt in range(2):
        token = await _access_token(settings, redis, refresh=attempt > 0)
        try:
            body = await _call(
                settings,
                "POST",
                "/wxa/business/getuserphonenumber",
                params={"access_token": token},
                json={"code": code},
            )
        except _StaleAccessToken:
            continue
        info = body.get("phone_info") or {}
        watermark = info.get("watermark") or {}
        if watermark.get("appid") not in (None, settings.wechat_app_id):
            raise WeChatError("WECHAT_CODE_INVALID", "The phone code belongs to another app.")
        number = info.get("phoneNumber") or info.get("purePhoneNumber")
        if not isinstance(number, str) or not number:
            raise WeChatError("WECHAT_UNAVAILABLE", "WeChat returned no phone number.")
        country = info.get("countryCode")
        if not number.startswith("+") and isinstance(country, str) and country:
            number = f"+{country}{info.get('purePhoneNumber') or number}"
        return number
    raise WeChatError("WECHAT_UNAVAILABLE", "WeChat refused the access token.")


class _StaleAccessToken(Exception):
    pass


async def _access_token(settings: Settings, redis: Any, *, refresh: bool) -> str:
    """The app's server access token, cached in Redis until shortly before it expires."""
    key = ACCESS_TOKEN_CACHE_KEY.format(app_id=settings.wechat_app_id)
    if redis is not None and not refresh:
        cached = await redis.get(key)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
    body = await _call(
        settings,
        "GET",
        "/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": settings.wechat_app_id,
            "secret": settings.wechat_app_secret.get_secret_value(),
        },
    )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat returned no access token.")
    expires_in = int(body.get("expires_in") or 7200)
    if redis is not None:
        await redis.set(key, token, ex=max(60, expires_in - 300))
    return token


def _client(settings: Settings) -> httpx.AsyncClient:
    if settings.wechat_dev_standin:
        from loyalty import dev_wechat  # dev only: never imported in test or prod

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dev_wechat.create_app(settings)),
            base_url="http://dev-wechat",
            timeout=settings.wechat_timeout_seconds,
        )
    return httpx.AsyncClient(
        base_url=settings.wechat_api_url, timeout=settings.wechat_timeout_seconds
    )


async def _call(
    settings: Settings,
    method: str,
    path: str,
    *,
    params: dict[str, str],
    json: dict[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        async with _client(settings) as client:
            response = await client.request(method, path, params=params, json=json)
    except httpx.HTTPError as exc:
        log.warning("wechat.unreachable", path=path, error=type(exc).__name__)
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat could not be reached.") from exc
    try:
        # WeChat answers JSON, sometimes labelled text/plain.
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        log.warning("wechat.bad_response", path=path, status=response.status_code)
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat answered something unexpected.") from exc
    if not isinstance(body, dict):
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat answered something unexpected.")
    errcode = body.get("errcode") or 0
    if response.status_code >= 400 and not errcode:
        log.warning("wechat.http_error", path=path, status=response.status_code)
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat answered with an error.")
    if errcode:
        log.info("wechat.refused", path=path, errcode=errcode)
        if errcode in ACCESS_TOKEN_ERRCODES and "access_token" in params:
            raise _StaleAccessToken()
        if errcode in INVALID_CODE_ERRCODES:
            raise WeChatError(
                "WECHAT_CODE_INVALID", "The WeChat code is invalid or was already used.", errcode
            )
        if errcode in RATE_LIMITED_ERRCODES:
            raise WeChatError(
                "WECHAT_RATE_LIMITED", "WeChat is rate limiting; retry later.", errcode
            )
        raise WeChatError("WECHAT_UNAVAILABLE", "WeChat refused the request.", errcode)
    body.pop("session_key", None)
    return body
