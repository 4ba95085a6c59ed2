"""The root schema, assembled from per-domain Query and Mutation classes.

``schema`` (module level) is what ``loyalty export-schema`` prints; the app builds its own with
:func:`build_schema` so limits and masking follow the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry import relay
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from loyalty.graphql import permissions, text
from loyalty.graphql.auth.mutations import AuthMutation
from loyalty.graphql.auth.queries import AuthQuery
from loyalty.graphql.benefits.mutations import BenefitMutation
from loyalty.graphql.benefits.queries import BenefitQuery
from loyalty.graphql.context import Info
from loyalty.graphql.errors import log_errors, should_mask
from loyalty.graphql.jobs.mutations import JobMutation
from loyalty.graphql.jobs.queries import JobQuery
from loyalty.graphql.members.mutations import MemberMutation
from loyalty.graphql.members.queries import MemberQuery
from loyalty.graphql.metrics import OperationMetrics
from loyalty.graphql.orders.mutations import OrderMutation
from loyalty.graphql.outbox.mutations import OutboxMutation
from loyalty.graphql.outbox.queries import OutboxQuery
from loyalty.graphql.points.mutations import PointsMutation
from loyalty.graphql.points.queries import PointsQuery
from loyalty.graphql.points.subscriptions import PointsSubscription
from loyalty.graphql.scalars import SCALAR_MAP
from loyalty.graphql.suggestions import CachedValidation, HiddenSuggestionsExecutor
from loyalty.graphql.tiers.mutations import TierMutation
from loyalty.graphql.tiers.queries import TierQuery
from loyalty.graphql.webhooks.mutations import WebhookMutation
from loyalty.graphql.webhooks.queries import WebhookQuery
from loyalty.settings import Settings

permissions.register({"Query.node": permissions.AUTHENTICATED})

# Order matters only for the printed schema: keep it stable.
QUERIES: tuple[type, ...] = (
    MemberQuery,
    AuthQuery,
    TierQuery,
    BenefitQuery,
    PointsQuery,
    JobQuery,
    WebhookQuery,
    OutboxQuery,
)
MUTATIONS: tuple[type, ...] = (
    MemberMutation,
    AuthMutation,
    TierMutation,
    BenefitMutation,
    OrderMutation,
    PointsMutation,
    JobMutation,
    WebhookMutation,
    OutboxMutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (PointsSubscription,)


@strawberry.type(description="Fetch any object by its global id.")
class NodeQuery:
    @strawberry.field(
        description="The object with this global id, or null if it does not exist or is not "
        "visible to you (both answer the same)."
    )
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node | None:
        try:
            return await id.resolve_node(info, required=False)  # type: ignore[no-any-return]
        except (ValueError, KeyError):
            return None


Query = merge_types("Query", (NodeQuery, *QUERIES))
Mutation = merge_types("Mutation", MUTATIONS)
Subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None

for _root, _name in ((Query, "Query"), (Mutation, "Mutation"), (Subscription, "Subscription")):
    if _root is not None:
        permissions.gate_root_fields(_name, _root.__strawberry_definition__.fields)
        text.guard_root_fields(_root.__strawberry_definition__.fields)


def _extensions(settings: Settings) -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    from loyalty.graphql import limits

    extensions: list[Any] = [
        OperationMetrics,
        lambda: ParserCache(maxsize=512),
        lambda: CachedValidation(hide_suggestions=settings.env == "prod"),
        *limits.extensions(settings),
    ]
    if settings.env != "dev":
        extensions.append(lambda: MaskErrors(should_mask_error=should_mask))
    return extensions


class LoyaltySchema(strawberry.Schema):
    """The executable schema: errors are logged as structured events (see ``log_errors``)
    instead of strawberry's multi-line tracebacks."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


def build_schema(settings: Settings) -> strawberry.Schema:
    """The executable schema for ``settings`` (limits, masking, introspection; no name
    suggestions in any error message in prod)."""
    prod = settings.env == "prod"
    return LoyaltySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=_extensions(settings),
        execution_context_class=HiddenSuggestionsExecutor if prod else None,
        config=StrawberryConfig(
            auto_camel_case=True,
            disable_field_suggestions=prod,
            scalar_map=SCALAR_MAP,
            batching_config={"max_operations": settings.max_batch_operations},
        ),
    )


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
)


def schema_sdl() -> str:
    """The schema as committed in ``schema.graphql``."""
    return schema.as_str().rstrip() + "\n"
