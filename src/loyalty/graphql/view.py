"""The GraphQL HTTP/WebSocket view: context per request, error extensions, metrics."""

from __future__ import annotations

import time
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from graphql import GraphQLError
from loyalty.auth.principal import ANONYMOUS, Principal
from loyalty.auth.service import authenticate
from loyalty.auth.tokens import InvalidToken
from loyalty.graphql.context import Context, build_context
from loyalty.graphql.errors import ErrorCode, extensions_for, should_mask
from loyalty.observability import GRAPHQL_ERRORS
from loyalty.settings import Settings


class LoyaltyGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view with our context, error policy and metrics."""

    def __init__(self, schema: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            **kwargs,
        )
        self.settings = settings

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET
    ) -> Any:
        """Requests refused before execution (bad JSON, GET mutation, too many operations in
        a batch) answer in GraphQL's error shape with a code and the request id."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            if isinstance(request, WebSocket):
                raise
            return _http_error(exc, getattr(request.state, "request_id", None))

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        principal: Principal = ANONYMOUS
        auth_error: InvalidToken | None = None
        headers: dict[str, str] = dict(request.headers)
        if isinstance(request, WebSocket):
            headers = {**headers, **_ws_auth(request)}
        try:
            principal = await authenticate(headers=headers, settings=self.settings)
        except InvalidToken as exc:
            auth_error = exc
        context = build_context(
            request=request,
            response=response,
            settings=self.settings,
            redis=getattr(request.app.state, "redis", None),
            principal=principal,
            request_id=getattr(request.state, "request_id", None),
        )
        context.state["started"] = time.perf_counter()
        if auth_error is not None:
            context.state["auth_error"] = auth_error
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """``connection_init`` may carry the credentials as ``payload.Authorization``
        (``Bearer <token>``, ``ApiKey <key>`` or a bare token), as most clients send them; they
        replace those of the ``token`` query parameter. Invalid ones close the socket (4403)."""
        params = context.connection_params or {}
        credential = params.get("Authorization", params.get("authorization"))
        if credential is None:
            return UNSET
        if not isinstance(credential, str) or not credential.strip():
            raise ConnectionRejectionError({"message": "Invalid credentials."})
        credential = credential.strip()
        if " " not in credential:
            credential = f"Bearer {credential}"
        try:
            context.principal = await authenticate(
                headers={"authorization": credential}, settings=self.settings
            )
        except InvalidToken as exc:
            raise ConnectionRejectionError({"message": "Invalid credentials."}) from exc
        context.state.pop("auth_error", None)
        return UNSET

    async def process_result(
        self, request: Request | WebSocket, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        request_id = getattr(request.state, "request_id", None)
        if result.errors:
            data["errors"] = [self._format_error(error, request_id) for error in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        return data

    def _format_error(self, error: GraphQLError, request_id: str | None) -> dict[str, Any]:
        formatted = error.formatted
        if self.settings.env != "dev" and should_mask(error):
            # What escaped MaskErrors (an extension's own crash): masked here all the same.
            formatted = {**formatted, "message": "Unexpected error."}
        extensions = {**(formatted.get("extensions") or {}), **extensions_for(error)}
        if formatted.get("message") == "Unexpected error.":
            extensions["code"] = ErrorCode.INTERNAL.value
        if request_id:
            extensions["requestId"] = request_id
        GRAPHQL_ERRORS.labels(code=extensions.get("code", "UNKNOWN")).inc()
        return {**formatted, "extensions": extensions}


def _http_error(exc: HTTPException, request_id: str | None) -> Response:
    extensions: dict[str, Any] = {"code": ErrorCode.BAD_USER_INPUT.value}
    if request_id:
        extensions["requestId"] = request_id
    GRAPHQL_ERRORS.labels(code=extensions["code"]).inc()
    return JSONResponse(
        {"data": None, "errors": [{"message": exc.reason, "extensions": extensions}]},
        status_code=exc.status_code,
    )


def _ws_auth(websocket: WebSocket) -> dict[str, str]:
    token = websocket.query_params.get("token")
    return {"authorization": f"Bearer {token}"} if token else {}
