"""Fixtures of the access-control tests: apps with their own settings, a WeChat stand-in."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from loyalty.app import Resources, create_app
from loyalty.settings import Settings


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one operation; returns the decoded body (errors included)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
    )
    assert response.status_code < 500, response.text
    return response.json()


AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def app_factory(settings: Settings, redis: Any) -> AppFactory:
    """``async with factory(env="prod", max_aliases=3) as http:`` — an app built from
    ``settings`` with these fields changed, sharing the test database and Redis."""

    @contextlib.asynccontextmanager
    async def factory(**updates: Any) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(settings.model_copy(update=updates), resources=Resources(redis))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield http

    return factory


@pytest.fixture
def app_with(orm: Any, redis: Any, settings: Settings) -> AppFactory:
    return app_factory(settings, redis)


# --- a local HTTP server playing WeChat's API ------------------------------------------------


@dataclass
class WeChatStandIn:
    """What the stand-in answers and what it saw.

    ``wx.login`` codes: ``ok:<openid>`` or ``ok:<openid>:<unionid>``; ``invalid`` answers
    errcode 40029, ``busy`` 45011, ``garbage`` a non-JSON body. Phone codes:
    ``phone:<number>``; ``invalid`` answers 40029.
    """

    base_url: str
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    token_requests: int = 0
    expire_next_access_token: bool = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wechat_app(state: WeChatStandIn, app_id: str, secret: str) -> Starlette:
    async def jscode2session(request: Request) -> Any:
        params = dict(request.query_params)
        state.calls.append(("jscode2session", params))
        if params.get("appid") != app_id or params.get("secret") != secret:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        code = params.get("js_code", "")
        if code == "invalid":
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        if code == "busy":
            return JSONResponse({"errcode": 45011, "errmsg": "api minute-quota reach limit"})
        if code == "garbage":
            return PlainTextResponse("<html>bad gateway</html>")
        parts = code.split(":")
        if parts[0] != "ok" or len(parts) < 2:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        body = {"openid": parts[1], "session_key": "SESSION-KEY-" + parts[1]}
        if len(parts) > 2:
            body["unionid"] = parts[2]
        # WeChat labels this JSON as text/plain.
        return PlainTextResponse(json.dumps(body))

    async def token(request: Request) -> Any:
        state.token_requests += 1
        state.calls.append(("token", dict(request.query_params)))
        if request.query_params.get("secret") != secret:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        return JSONResponse({"access_token": f"ACCESS-{state.token_requests}", "expires_in": 7200})

    async def phone(request: Request) -> Any:
        body = await request.json()
        params = dict(request.query_params)
        state.calls.append(("getuserphonenumber", {**params, **body}))
        if state.expire_next_access_token:
            state.expire_next_access_token = False
            return JSONResponse({"errcode": 40001, "errmsg": "access_token expired"})
        if not params.get("access_token", "").startswith("ACCESS-"):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        code = body.get("code", "")
        if not code.startswith("phone:"):
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        number = code.split(":", 1)[1]
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
            Route("/wxa/business/getuserphonenumber", phone, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="session")
def wechat_server(settings: Settings) -> Iterator[WeChatStandIn]:
    port = _free_port()
    state = WeChatStandIn(base_url=f"http://127.0.0.1:{port}")
    app = _wechat_app(state, settings.wechat_app_id, settings.wechat_app_secret.get_secret_value())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("WeChat stand-in did not start")
        time.sleep(0.02)
    yield state
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def wechat(wechat_server: WeChatStandIn) -> WeChatStandIn:
    wechat_server.calls.clear()
    wechat_server.token_requests = 0
    wechat_server.expire_next_access_token = False
    return wechat_server


@pytest.fixture
async def wechat_client(
    app_with: AppFactory, wechat: WeChatStandIn
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_with(wechat_api_base=wechat.base_url) as http:
        yield http


__all__ = ["post"]
