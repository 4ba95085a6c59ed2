"""A development stand-in for the three WeChat server endpoints the login flow calls.

Served at ``/dev/wechat`` by an app whose env is ``dev`` (never in test or prod), and used by
the WeChat client in dev unless ``LOYALTY_WECHAT_API_BASE`` is set. It answers as WeChat does
(JSON labelled ``text/plain`` for ``jscode2session``, ``errcode`` refusals), for codes that
say what they stand for:

* login code ``demo:<openid>`` → that openid (letters, digits, ``-`` and ``_``, up to 64);
* phone code ``phone:<digits>`` → that mainland number, as WeChat returns it
  (``phoneNumber`` without and ``countryCode`` ``86`` beside it: the client makes ``+86…``);
* anything else → errcode 40029 (invalid code).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loyalty.settings import Settings

#: Where a dev app serves the stand-in.
MOUNT_PATH = "/dev/wechat"

LOGIN_CODE = re.compile(r"demo:([A-Za-z0-9_-]{1,64})")
PHONE_CODE = re.compile(r"phone:([0-9]{5,15})")
ACCESS_TOKEN_TTL_SECONDS = 7200


def _refusal(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def create_app(settings: Settings) -> Starlette:
    """The stand-in, checking the app id and secret against ``settings`` as WeChat would."""
    app_id = settings.wechat_app_id
    secret = settings.wechat_app_secret.get_secret_value()
    # Stateless: the one access token this app id and secret can hold.
    access_token = "dev-" + hashlib.sha256(f"{app_id}:{secret}".encode()).hexdigest()[:40]

    def credentials_refused(request: Request) -> JSONResponse | None:
        if request.query_params.get("appid") != app_id:
            return _refusal(40013, "invalid appid")
        if request.query_params.get("secret") != secret:
            return _refusal(40125, "invalid appsecret")
        return None

    async def jscode2session(request: Request) -> Response:
        refused = credentials_refused(request)
        if refused is not None:
            return refused
        match = LOGIN_CODE.fullmatch(request.query_params.get("js_code", ""))
        if match is None:
            return _refusal(40029, "invalid code")
        body = {"openid": match.group(1), "session_key": secrets.token_urlsafe(16)}
        return Response(orjson.dumps(body), media_type="text/plain")

    async def token(request: Request) -> Response:
        if request.query_params.get("grant_type") != "client_credential":
            return _refusal(40002, "invalid grant_type")
        refused = credentials_refused(request)
        if refused is not None:
            return refused
        return JSONResponse({"access_token": access_token, "expires_in": ACCESS_TOKEN_TTL_SECONDS})

    async def getuserphonenumber(request: Request) -> Response:
        if request.query_params.get("access_token") != access_token:
            return _refusal(40001, "invalid credential, access_token is invalid")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _refusal(47001, "data format error")
        code = body.get("code") if isinstance(body, dict) else None
        match = PHONE_CODE.fullmatch(code) if isinstance(code, str) else None
        if match is None:
            return _refusal(40029, "invalid code")
        number = match.group(1)
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": number,
                    "purePhoneNumber": number,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(time.time()), "appid": app_id},
                },
            }
        )

    return Starlette(
        routes=[
            Route("/sns/jscode2session", jscode2session),
            Route("/cgi-bin/token", token),
            Route("/wxa/business/getuserphonenumber", getuserphonenumber, methods=["POST"]),
        ]
    )
