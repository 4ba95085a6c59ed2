"""The per-request context every resolver receives (typed, built in ``get_context``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from loyalty.auth.principal import ANONYMOUS, Principal
from loyalty.jobs import JobQueue
from loyalty.settings import Settings

if TYPE_CHECKING:
    from loyalty.graphql.loaders import Loaders


@dataclass
class Context:
    """Request-scoped state: who calls, the loaders (fresh per request), the job queue."""

    request: Request | WebSocket
    response: Any
    settings: Settings
    principal: Principal
    loaders: Loaders
    jobs: JobQueue
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    redis: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    # A websocket's ``connection_init`` payload (strawberry fills it in; None over HTTP).
    connection_params: dict[str, Any] | None = None


Info = StrawberryInfo[Context, None]


def build_context(
    *,
    request: Request | WebSocket,
    response: Any,
    settings: Settings,
    redis: Any,
    principal: Principal = ANONYMOUS,
    request_id: str | None = None,
) -> Context:
    from loyalty.graphql.loaders import Loaders

    return Context(
        request=request,
        response=response,
        settings=settings,
        principal=principal,
        loaders=Loaders(),
        jobs=JobQueue(redis),
        request_id=request_id or uuid.uuid4().hex,
        redis=redis,
    )
