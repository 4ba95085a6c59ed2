"""The ASGI application: GraphQL, health, readiness and metrics behind one lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from arq.connections import ArqRedis, create_pool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise.contrib.starlette import RegisterTortoise

from loyalty import clock, db, hooks, observability, redis_embedded, request_cache
from loyalty.jobs import QUEUE_NAME
from loyalty.observability import HTTP_REQUESTS, configure_logging
from loyalty.outbox import service as outbox
from loyalty.settings import Settings, get_settings

log = structlog.get_logger(__name__)


@dataclass
class Resources:
    """Connections the app uses; tests may pass their own and keep ownership."""

    redis: ArqRedis


def create_app(
    settings: Settings | None = None, *, resources: Resources | None = None
) -> Starlette:
    """Build the app. With ``resources`` the caller owns the database context and Redis."""
    settings = settings or get_settings()
    hooks.load()
    configure_logging(settings)
    clock.configure(settings.business_timezone)

    from loyalty.graphql.schema import build_schema
    from loyalty.graphql.view import LoyaltyGraphQL

    graphql_app = LoyaltyGraphQL(build_schema(settings), settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        if resources is not None:
            app.state.redis = resources.redis
            yield
            return
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(observability.process_stopped)
            await stack.enter_async_context(
                RegisterTortoise(
                    app, config=db.config_from_settings(settings), _enable_global_fallback=True
                )
            )
            target = redis_embedded.resolve(settings.redis_url, settings.data_dir)
            if not settings.redis_url:
                # The embedded server outlives the process unless stopped (it runs detached).
                stack.callback(redis_embedded.stop, settings.data_dir)
            redis = await create_pool(target.arq_settings(), default_queue_name=QUEUE_NAME)
            stack.push_async_callback(redis.aclose)
            app.state.redis = redis
            if settings.run_worker_in_process:
                from loyalty.worker.settings import run_worker_in_background

                task = run_worker_in_background(redis, settings)
                stack.push_async_callback(_cancel, task)
            log.info("app.started", env=settings.env, database=_redact(settings.database_url))
            yield

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await asyncio.wait_for(request.app.state.redis.ping(), timeout=2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        failing = [name for name, state in checks.items() if state != "ok"]
        body = {"status": "ok" if not failing else "unavailable", "checks": checks}
        if failing:
            body["failing"] = failing
        return JSONResponse(body, status_code=503 if failing else 200)

    async def metrics(request: Request) -> Response:
        if settings.metrics_token is not None and not _bearer_matches(
            request.headers.get("authorization"), settings.metrics_token.get_secret_value()
        ):
            return PlainTextResponse(
                "Metrics need `Authorization: Bearer <LOYALTY_METRICS_TOKEN>`.",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        try:
            await asyncio.wait_for(outbox.refresh_metrics(), timeout=2)
        except Exception as exc:  # a scrape still answers with what the process counted
            log.warning("metrics.outbox_unavailable", error=type(exc).__name__)
        return Response(observability.scrape(), media_type=observability.METRICS_CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if settings.env == "dev":
        # WeChat's login endpoints stand-in, so mini-program login can be tried locally.
        from loyalty import dev_wechat

        routes.append(Mount(dev_wechat.MOUNT_PATH, app=dev_wechat.create_app(settings)))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
    return app


class RequestGuard:
    """Request ids (accept or create ``X-Request-ID``), body size limit, request counter.

    Oversized bodies are refused with 413 before anything parses them, whether announced by
    ``Content-Length`` or streamed.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        request_id = _clean_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        route = scope.get("path", "")
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        status_holder: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _too_large(send_with_id, self.max_body_bytes)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _BodyTooLarge()
                return message

            try:
                with request_cache.scope():
                    await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                await _too_large(send_with_id, self.max_body_bytes)
            except Exception as exc:
                # Logged here, where the request id is still known, as one event with the
                # stack; the caller gets a 500 in GraphQL's error shape, never the details.
                log.error(
                    "http.unhandled_error",
                    method=scope.get("method"),
                    route=route,
                    error=str(exc),
                    exc_info=exc,
                )
                if not status_holder["started"]:
                    await _internal_error(send_with_id, request_id)
                # else the server closes the half-sent response (and logs that in one line)
        finally:
            HTTP_REQUESTS.labels(route=route, status=str(status_holder["status"])).inc()
            structlog.contextvars.unbind_contextvars("request_id")


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    response = JSONResponse(
        {
            "errors": [
                {
                    "message": f"Request body larger than {limit} bytes.",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        },
        status_code=413,
    )
    await response({"type": "http"}, _empty_receive, send)


async def _internal_error(send: Send, request_id: str) -> None:
    response = JSONResponse(
        {
            "errors": [
                {
                    "message": "Internal server error.",
                    "extensions": {"code": "INTERNAL", "requestId": request_id},
                }
            ]
        },
        status_code=500,
    )
    await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def _clean_request_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if 0 < len(value) <= 128 and all(c.isalnum() or c in "-_.:" for c in value):
        return value
    return None


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, supplied = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(supplied.strip().encode(), token.encode())


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
