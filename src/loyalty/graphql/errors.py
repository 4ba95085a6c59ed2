"""GraphQL shapes of domain errors, and the top-level error policy.

Expected outcomes are union members of a mutation's result (``code`` + ``message``).
Top-level errors carry ``extensions.code`` (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT,
RATE_LIMITED, INTERNAL) and the request id; unexpected ones are masked outside dev.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import strawberry
import structlog
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from loyalty import errors as domain

log = structlog.get_logger(__name__)


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


def _callers_mistake(error: GraphQLError) -> bool:
    """Parse, validation, variable coercion and limit errors: the caller's to read.

    They carry no original error, or one tied to a place in the document (a variable whose
    value a scalar refused). An exception with neither a path nor a place in the document was
    raised by the server around execution (an extension), which is not the caller's fault."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return True
    return error.path is None and bool(error.nodes)


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected errors only; limit and validation errors have no original error."""
    if _callers_mistake(error):
        return False
    return not isinstance(error.original_error, USER_FACING)


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
    if _callers_mistake(error):
        return {"code": ErrorCode.BAD_USER_INPUT.value}
    return {"code": ErrorCode.INTERNAL.value}


def log_errors(errors: Iterable[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """One log event per top-level error, before masking (the log keeps what callers do not
    see): the caller's mistakes at info without a stack, unexpected failures at error with
    the stack. The request id comes from the request's logging context."""
    context = execution_context.context if execution_context is not None else None
    principal = getattr(context, "principal", None)
    common: dict[str, Any] = {
        "operation": (execution_context.operation_name if execution_context else None)
        or "anonymous",
        "principal": principal.role.value if principal is not None else None,
    }
    request_id = getattr(context, "request_id", None)
    if request_id:
        common["request_id"] = request_id
    for error in errors:
        code = extensions_for(error).get("code")
        original = error.original_error
        fields = {
            **common,
            "code": code,
            "exception_type": type(original or error).__name__,
            "path": ".".join(str(p) for p in error.path) if error.path else None,
        }
        if code == ErrorCode.INTERNAL.value:
            log.error("graphql.unexpected_error", error=str(original), exc_info=original, **fields)
        else:
            log.info("graphql.client_error", message=error.message, **fields)
