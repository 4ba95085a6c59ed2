"""Role × operation table: every root query, mutation and subscription field has an entry.

Domain GraphQL packages declare ``ACCESS`` dicts (``"Query.member": {roles}``); this module
merges them and attaches a gate to every root field when the schema is built. A root field
without an entry is refused at build time, and a test enumerates the schema against the table.
Field-level rules (a member sees only its own data) live in the resolvers through
:func:`ensure_member_access`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from loyalty.auth.principal import Principal, Role
from loyalty.graphql.errors import Forbidden, Unauthenticated

ADMIN = frozenset({Role.ADMIN})
STAFF = frozenset({Role.ADMIN, Role.STAFF})
STAFF_OR_SERVICE = frozenset({Role.ADMIN, Role.STAFF, Role.SERVICE})
MEMBER_OR_STAFF = frozenset({Role.ADMIN, Role.STAFF, Role.MEMBER})
AUTHENTICATED = frozenset({Role.ADMIN, Role.STAFF, Role.SERVICE, Role.MEMBER})
EVERYONE = frozenset(Role)

ACCESS: dict[str, frozenset[Role]] = {}


def register(entries: Mapping[str, Iterable[Role]]) -> None:
    """Add a domain's entries to the table (each key once)."""
    for key, roles in entries.items():
        if key in ACCESS and ACCESS[key] != frozenset(roles):
            raise RuntimeError(f"conflicting access entries for {key}")
        ACCESS[key] = frozenset(roles)


def check(principal: Principal, key: str, auth_error: Exception | None = None) -> None:
    """Raise UNAUTHENTICATED / FORBIDDEN unless ``principal`` may call ``key``."""
    if auth_error is not None:
        raise Unauthenticated("Invalid or expired token.")
    allowed = ACCESS.get(key)
    if allowed is None:
        raise Forbidden()
    if principal.role in allowed:
        return
    if principal.is_anonymous:
        raise Unauthenticated()
    raise Forbidden()


class AccessGate(FieldExtension):
    """Checks the table before a root field's resolver runs."""

    def __init__(self, key: str) -> None:
        self.key = key

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        check(info.context.principal, self.key, info.context.state.get("auth_error"))
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        check(info.context.principal, self.key, info.context.state.get("auth_error"))
        result = next_(source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def gate_root_fields(type_name: str, fields: Iterable[StrawberryField]) -> None:
    """Attach :class:`AccessGate` to each root field; unknown fields are a build error."""
    for field in fields:
        key = f"{type_name}.{field.graphql_name or _camel(field.python_name)}"
        if key not in ACCESS:
            raise RuntimeError(f"{key} has no entry in the access table")
        if not any(isinstance(e, AccessGate) for e in field.extensions):
            field.extensions.append(AccessGate(key))


def ensure_member_access(principal: Principal, member_id: int) -> bool:
    """Whether ``principal`` may see member ``member_id`` (a member sees only itself)."""
    if principal.role is Role.MEMBER:
        return principal.member_id == member_id
    return principal.role in (Role.ADMIN, Role.STAFF, Role.SERVICE)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
