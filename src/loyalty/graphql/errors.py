"""GraphQL shapes of domain errors, and the top-level error policy.

Expected outcomes are union members of a mutation's result (``code`` + ``message``).
Top-level errors carry ``extensions.code`` (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT,
RATE_LIMITED, INTERNAL) and the request id; unexpected ones are masked outside dev.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import strawberry

from graphql import GraphQLError
from loyalty import errors as domain


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_FOUND = "NOT_FOUND"
    INTERNAL = "INTERNAL"


class ApiError(Exception):
    """A top-level GraphQL error that is safe to show to the caller."""

    def __init__(
        self, message: str, code: ErrorCode, extensions: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = {"code": code.value, **(extensions or {})}


class Unauthenticated(ApiError):
    def __init__(self, message: str = "Authentication required.") -> None:
        super().__init__(message, ErrorCode.UNAUTHENTICATED)


class Forbidden(ApiError):
    def __init__(self, message: str = "Not allowed.") -> None:
        super().__init__(message, ErrorCode.FORBIDDEN)


class BadUserInput(ApiError):
    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, ErrorCode.BAD_USER_INPUT, extensions)


@strawberry.type(description="One invalid input field.")
class FieldError:
    field: str = strawberry.field(description="Input path of the field, e.g. `input.phone`.")
    message: str = strawberry.field(description="What is wrong, for people.")
    code: str = strawberry.field(description="Stable machine code: INVALID, REQUIRED, TOO_LONG.")


@strawberry.type(description="The input was invalid; nothing was written.")
class ValidationError:
    code: str = strawberry.field(description="Always `VALIDATION_ERROR`.")
    message: str = strawberry.field(description="Summary of every field error.")
    fields: list[FieldError] = strawberry.field(description="Each invalid field.")

    @classmethod
    def from_domain(cls, error: domain.ValidationError) -> ValidationError:
        return cls(
            code=error.code,
            message=error.message,
            fields=[
                FieldError(field=e.field, message=e.message, code=e.code) for e in error.errors
            ],
        )


@strawberry.type(description="The referenced object does not exist or is not visible to you.")
class NotFoundError:
    code: str = strawberry.field(description="Stable machine code, e.g. `MEMBER_NOT_FOUND`.")
    message: str = strawberry.field(description="What was not found.")

    @classmethod
    def from_domain(cls, error: domain.NotFoundError) -> NotFoundError:
        return cls(code=error.code, message=error.message)


@strawberry.type(description="A key was reused with different content; nothing was written.")
class ConflictError:
    code: str = strawberry.field(description="Stable machine code, e.g. `IDEMPOTENCY_CONFLICT`.")
    message: str = strawberry.field(description="What conflicts.")

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> ConflictError:
        return cls(code=error.code, message=error.message)


# Errors whose message the caller may see even when masking is on.
USER_FACING: tuple[type[BaseException], ...] = (ApiError, domain.DomainError)


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected errors only; limit and validation errors have no original error."""
    original = error.original_error
    if original is None or error.path is None or isinstance(original, GraphQLError):
        return False  # parse, validation, variable coercion and limit errors are for the caller
    return not isinstance(original, USER_FACING)


def extensions_for(error: GraphQLError) -> dict[str, Any]:
    """``extensions`` of a top-level error: always a ``code``, never internals."""
    original = error.original_error
    if original is None and error.extensions and "code" in error.extensions:
        return dict(error.extensions)  # limit errors carry their own code and details
    if isinstance(original, ApiError):
        return dict(original.extensions)
    if isinstance(original, domain.ValidationError):
        return {
            "code": ErrorCode.BAD_USER_INPUT.value,
            "fields": [{"field": e.field, "message": e.message} for e in original.errors],
        }
    if isinstance(original, domain.NotFoundError):
        return {"code": ErrorCode.NOT_FOUND.value}
    if isinstance(original, domain.DomainError):
        return {"code": original.code}
    if original is None or error.path is None or isinstance(original, GraphQLError):
        return {"code": ErrorCode.BAD_USER_INPUT.value}
    return {"code": ErrorCode.INTERNAL.value}
