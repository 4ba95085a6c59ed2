"""Domain errors: expected business outcomes with a stable ``code``.

Services raise these; the GraphQL layer turns them into typed members of a mutation's result
union (never top-level errors). Nothing here knows about GraphQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every expected failure. ``code`` is stable and documented in the schema."""

    code: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: ``field`` is the input path (``input.phone``)."""

    field: str
    message: str
    code: str = "INVALID"


class ValidationError(DomainError):
    """Bad input. Nothing was written."""

    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[FieldError] | FieldError, message: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        super().__init__(message or "; ".join(f"{e.field}: {e.message}" for e in self.errors))


class NotFoundError(DomainError):
    """The thing does not exist (or the caller may not know that it does)."""

    code = "NOT_FOUND"

    def __init__(self, what: str, key: Any = None) -> None:
        super().__init__(f"{what} not found")
        self.what = what
        self.key = key


class ConflictError(DomainError):
    """An idempotency key or natural key was reused with different content."""

    code = "CONFLICT"


@dataclass
class FieldErrors:
    """Collects field errors so a service can report all of them at once."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, message: str, code: str = "INVALID") -> None:
        self.errors.append(FieldError(field_name, message, code))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)
