"""Query limits and rate limiting, applied to every operation before any resolver runs.

- query text length and token count: before parsing;
- depth and aliases: validation rules (cached with the document);
- ``first`` ≤ max page size and the cost limit: after validation, with the variables, by
  setting the operation's result so execution never starts;
- operations per minute per principal (per IP for anonymous callers), counted in Redis for
  every operation, batched or not.

Every refusal is a top-level error with ``extensions.code`` (BAD_USER_INPUT or RATE_LIMITED)
whose message the caller sees even when errors are masked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import structlog
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from loyalty.auth import ratelimit
from loyalty.auth.principal import Principal
from loyalty.graphql.errors import ErrorCode
from loyalty.graphql.masking import PiiReadAudit
from loyalty.graphql.permissions import RejectInvalidCredentials
from loyalty.settings import Settings

log = structlog.get_logger(__name__)

PAGE_SIZE_ARGUMENT = "first"


class LimitError(GraphQLError):
    """A refused operation; the message and extensions are meant for the caller."""

    def __init__(self, message: str, code: ErrorCode, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code.value, **extensions})


def extensions(settings: Settings) -> list[Callable[[], Any]]:
    """Schema extensions of access control, limits and the personal data read audit
    (classes or factories: a fresh instance per operation)."""
    result: list[Callable[[], Any]] = [
        RejectInvalidCredentials,
        PiiReadAudit,
        lambda: RateLimiter(settings),
        lambda: QueryTextLimiter(settings.max_query_chars),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: CostLimiter(max_cost=settings.max_query_cost, max_page=settings.max_page_size),
    ]
    # Validation rules are built once: the validation cache keys on the rule classes, so a
    # limiter that made a new rule class per operation would re-validate every request.
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    frozen_rules = tuple(rules)
    result.append(lambda: AddValidationRules(list(frozen_rules)))
    return result


# --- text length ------------------------------------------------------------------------


class QueryTextLimiter(SchemaExtension):
    """Refuses query texts longer than ``max_chars`` before they are parsed."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    def on_operation(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and len(query) > self.max_chars:
            raise LimitError(
                f"Query text longer than {self.max_chars} characters.",
                ErrorCode.BAD_USER_INPUT,
                limit="queryLength",
                maximum=self.max_chars,
            )
        yield


# --- page size and cost -------------------------------------------------------------------


class CostLimiter(SchemaExtension):
    """Refuses operations whose estimated cost exceeds ``max_cost`` or that ask for pages
    larger than ``max_page``.

    Cost: every selected field costs the product of the ``first`` arguments on its path
    (itself included), so ``members(first: 100) { edges { node { id } } }`` costs
    100 + 100 + 100 + 100 = 400. Lists without ``first`` count as one. Introspection is free.
    """

    def __init__(self, *, max_cost: int, max_page: int) -> None:
        self.max_cost = max_cost
        self.max_page = max_page

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.result is None and document is not None:
            try:
                cost = operation_cost(
                    context.schema._schema,
                    document.definitions,
                    context.operation_name,
                    context.variables or {},
                    max_page=self.max_page,
                )
            except LimitError as error:
                context.result = ExecutionResult(data=None, errors=[error])
            else:
                if cost > self.max_cost:
                    context.result = ExecutionResult(
                        data=None,
                        errors=[
                            LimitError(
                                f"Query cost {cost} exceeds the limit of {self.max_cost}; "
                                "ask for smaller pages or fewer fields.",
                                ErrorCode.BAD_USER_INPUT,
                                limit="cost",
                                cost=cost,
                                maximum=self.max_cost,
                            )
                        ],
                    )
        yield


def operation_cost(
    schema: GraphQLSchema,
    definitions: Any,
    operation_name: str | None,
    variables: Mapping[str, Any],
    *,
    max_page: int,
) -> int:
    """Cost of the selected operation (see :class:`CostLimiter`); raises :class:`LimitError`
    for a ``first`` outside 0..max_page."""
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if not operations:
        return 0
    operation = operations[0]
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    walker = _CostWalker(schema, fragments, variables, max_page)
    return walker.selection_cost(operation.selection_set, root, 1, frozenset())


class _CostWalker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        max_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.max_page = max_page

    def selection_cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        multiplier: int,
        seen_fragments: frozenset[str],
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, multiplier, seen_fragments)
            elif isinstance(selection, InlineFragmentNode):
                target = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += self.selection_cost(
                    selection.selection_set, target or parent, multiplier, seen_fragments
                )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen_fragments:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selection_cost(
                    fragment.selection_set, target or parent, multiplier, seen_fragments | {name}
                )
        return total

    def field_cost(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        multiplier: int,
        seen_fragments: frozenset[str],
    ) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return multiplier
        definition = parent.fields.get(name)
        if definition is None:
            return multiplier
        page = self.page_size(node, definition)
        if page is not None:
            multiplier *= max(page, 1)
        child = get_named_type(definition.type)
        return multiplier + self.selection_cost(
            node.selection_set, child, multiplier, seen_fragments
        )

    def page_size(self, node: FieldNode, definition: Any) -> int | None:
        argument = definition.args.get(PAGE_SIZE_ARGUMENT)
        if argument is None:
            return None
        value: Any = argument.default_value
        for given in node.arguments or ():
            if given.name.value != PAGE_SIZE_ARGUMENT:
                continue
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value, value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        if value < 0 or value > self.max_page:
            raise LimitError(
                "`first` must be at least 0."
                if value < 0
                else f"`first` must be at most {self.max_page}.",
                ErrorCode.BAD_USER_INPUT,
                argument=PAGE_SIZE_ARGUMENT,
                maximum=self.max_page,
            )
        return value


# --- rate limiting --------------------------------------------------------------------------


class RateLimiter(SchemaExtension):
    """Counts every operation against the caller's per-minute budget before it is parsed.

    Callers are told ``retryAfter`` (seconds) in the error and the ``Retry-After`` header.
    When Redis cannot be reached the operation is let through (and logged): an outage of the
    limiter must not take the API down.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        redis = getattr(context, "redis", None)
        principal: Principal | None = getattr(context, "principal", None)
        if redis is not None and principal is not None:
            if principal.is_anonymous:
                bucket = f"ip:{_client_ip(context)}"
                limit = self.settings.anonymous_rate_limit_per_minute
            else:
                bucket = f"{principal.role.value}:{principal.subject}"
                limit = self.settings.rate_limit_per_minute
            try:
                decision = await ratelimit.hit(redis, bucket=bucket, limit=limit)
            except Exception as exc:  # the limiter failing open is deliberate
                log.warning("ratelimit.unavailable", error=type(exc).__name__)
            else:
                if not decision.allowed:
                    _set_retry_after(context, decision.retry_after)
                    raise LimitError(
                        f"Rate limit of {limit} operations per minute reached; "
                        f"retry in {decision.retry_after} s.",
                        ErrorCode.RATE_LIMITED,
                        retryAfter=decision.retry_after,
                        limit=limit,
                    )
        yield


def _client_ip(context: Any) -> str:
    request = getattr(context, "request", None)
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def _set_retry_after(context: Any, seconds: int) -> None:
    response = getattr(context, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        headers["Retry-After"] = str(seconds)
