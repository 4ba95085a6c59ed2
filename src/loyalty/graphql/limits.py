"""Query limits: depth, aliases, tokens, introspection, applied to every operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)

from loyalty.settings import Settings


def extensions(settings: Settings) -> list[Callable[[], Any]]:
    """Schema extensions enforcing the configured limits (fresh instance per request)."""
    result: list[Callable[[], Any]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
    ]
    if not settings.introspection_enabled:
        result.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return result
