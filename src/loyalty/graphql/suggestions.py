"""Error messages without "Did you mean …?" in production.

graphql-core suggests known names when a document or its variables name an unknown
argument, enum value, input field, type or field. With introspection off that would let a
caller map the schema by guessing, so in production validation and variable coercion run with
``hide_suggestions``: the message still names what is wrong, never what exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql.validation import ASTValidationRule, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from graphql import DocumentNode, GraphQLError, GraphQLSchema

# strawberry's own rules, which its default validation adds to every operation.
STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)
VALIDATION_CACHE_SIZE = 512


@lru_cache(maxsize=VALIDATION_CACHE_SIZE)
def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    return validate(
        schema, document, (*rules, *STRAWBERRY_RULES), hide_suggestions=hide_suggestions
    )


class CachedValidation(SchemaExtension):
    """Validates each document once (bounded LRU, keyed by document, rules and whether
    suggestions are hidden), in place of strawberry's validation step."""

    def __init__(self, *, hide_suggestions: bool) -> None:
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        context.pre_execution_errors = _validate(
            context.schema._schema,
            context.graphql_document,
            tuple(context.validation_rules),
            self.hide_suggestions,
        )
        yield


class HiddenSuggestionsExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, coercing variables without suggestions (queries, mutations
    and subscriptions alike)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)
