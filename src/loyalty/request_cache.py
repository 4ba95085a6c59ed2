"""A per-request memo for reference data read several times while answering one request.

The HTTP middleware opens a scope per request; outside a scope (jobs, CLI, tests calling
services) nothing is cached. Only reads made outside a transaction may use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_scope: ContextVar[dict[Hashable, Any] | None] = ContextVar("request_cache", default=None)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Memoise within the block (one HTTP request)."""
    token = _scope.set({})
    try:
        yield
    finally:
        _scope.reset(token)


async def memo(key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """``load()`` once per request scope; a plain call outside any scope."""
    cache = _scope.get()
    if cache is None:
        return await load()
    if key not in cache:
        cache[key] = await load()
    return cache[key]  # type: ignore[no-any-return]


def forget(key: Hashable) -> None:
    """Drop ``key`` from the current scope (after a write in the same request)."""
    cache = _scope.get()
    if cache is not None:
        cache.pop(key, None)
