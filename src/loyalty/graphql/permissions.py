"""Role × operation table: every root query, mutation and subscription field has an entry.

Domain GraphQL packages declare ``ACCESS`` dicts (``"Query.member": {roles}``); this module
merges them and attaches a gate to every root field when the schema is built. A root field
without an entry is refused at build time, and a test enumerates the schema against the table.
Field-level rules (a member sees only its own data) live in the resolvers through
:func:`ensure_member_access`.

The same gate holds a service key to its scope: a key bound to a channel (and a store) acts
there only. Every mutation input field named in :data:`CHANNEL_FIELDS` / :data:`STORE_FIELDS`
is compared with the key's binding before the resolver runs; a mutation whose store is only
known from a stored row (a refund names its order, not the store) registers a
:data:`SCOPE_LOOKUPS` entry that finds it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import Any

from strawberry import UNSET, relay
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.types.field import StrawberryField

from graphql import ExecutionResult, FieldNode, GraphQLError, OperationDefinitionNode
from loyalty.auth.principal import Principal, Role
from loyalty.graphql.errors import ErrorCode, Forbidden, Unauthenticated

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
    allowed = ACCESS.get(key)
    if auth_error is not None and (allowed is None or Role.ANONYMOUS not in allowed):
        raise Unauthenticated("Invalid or expired token.")
    if allowed is None:
        raise Forbidden()
    if principal.role in allowed:
        return
    if principal.is_anonymous:
        raise Unauthenticated()
    raise Forbidden()


# Mutation input fields that name the channel, or the store, a call acts for.
CHANNEL_FIELDS = frozenset({"channel", "order_channel"})
STORE_FIELDS = frozenset({"store_id"})


@dataclasses.dataclass(frozen=True)
class Scope:
    """The channel and store a call acts for (None: not named by the call)."""

    channel: str | None = None
    store_id: str | None = None


# "Mutation.x" -> finds the scope a call acts for from stored rows, given its arguments.
ScopeLookup = Callable[[Mapping[str, Any]], Awaitable[Scope]]
SCOPE_LOOKUPS: dict[str, ScopeLookup] = {}


def register_scope_lookups(entries: Mapping[str, ScopeLookup]) -> None:
    """Add lookups for mutations whose scope is known from stored rows only."""
    for key, lookup in entries.items():
        if key in SCOPE_LOOKUPS and SCOPE_LOOKUPS[key] is not lookup:
            raise RuntimeError(f"conflicting scope lookups for {key}")
        SCOPE_LOOKUPS[key] = lookup


def check_scope(principal: Principal, scope: Scope) -> None:
    """Raise FORBIDDEN when a service key acts outside the channel or store it is bound to.

    Only SERVICE principals are bound; a key without a store acts for every store, and a call
    (or row) that names no store is not another store's.
    """
    if principal.role is not Role.SERVICE:
        return
    if (
        principal.channel is not None
        and scope.channel is not None
        and scope.channel != principal.channel
    ):
        raise Forbidden(f"This API key acts for channel {principal.channel} only.")
    if (
        principal.store_id is not None
        and scope.store_id is not None
        and scope.store_id != principal.store_id
    ):
        raise Forbidden(f"This API key acts for store {principal.store_id} only.")


def scope_of(arguments: Mapping[str, Any]) -> list[Scope]:
    """Every channel and store named by a call's arguments (and its input objects' fields)."""
    found: list[Scope] = []
    for name, value in _named_argument_values(arguments):
        if value is None or value is UNSET:
            continue
        raw = value.value if isinstance(value, Enum) else value
        if name in CHANNEL_FIELDS:
            found.append(Scope(channel=str(raw)))
        elif name in STORE_FIELDS:
            found.append(Scope(store_id=str(raw)))
    return found


async def _check_call_scope(principal: Principal, key: str, arguments: Mapping[str, Any]) -> None:
    if principal.role is not Role.SERVICE:
        return
    for scope in scope_of(arguments):
        check_scope(principal, scope)
    lookup = SCOPE_LOOKUPS.get(key)
    if lookup is not None:
        check_scope(principal, await lookup(arguments))


# Roles whose mutations are written to the audit log.
AUDITED_ROLES = frozenset({Role.ADMIN, Role.STAFF})


class AccessGate(FieldExtension):
    """Checks the table before a root field's resolver runs; audits admin and staff
    mutations once they completed (action ``Mutation.<name>``, the object acted on and the
    outcome's type: ids only, never input values)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.audited = self.scoped = key.startswith("Mutation.")

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        principal = info.context.principal
        check(principal, self.key, info.context.state.get("auth_error"))
        if self.scoped:
            if self.key in SCOPE_LOOKUPS:
                raise RuntimeError(f"{self.key} has a scope lookup and must be async")
            for scope in scope_of(kwargs):
                check_scope(principal, scope)
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        principal = info.context.principal
        check(principal, self.key, info.context.state.get("auth_error"))
        if self.scoped:
            await _check_call_scope(principal, self.key, kwargs)
        result = next_(source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if self.audited and principal.role in AUDITED_ROLES:
            target_type, target_id = _audit_target(result, kwargs)
            from loyalty.audit import service as audit

            await audit.record(
                actor=principal,
                action=self.key,
                target_type=target_type,
                target_id=target_id,
                details={"outcome": _type_name(result)},
            )
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


def _audit_target(result: Any, arguments: Mapping[str, Any]) -> tuple[str, str]:
    """The object a mutation acted on: the first node in its outcome, else the first global
    id in its arguments."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        for item in dataclasses.fields(result):
            value = getattr(result, item.name, None)
            if isinstance(value, relay.Node):
                node_type = type(value)
                return node_type.__name__, str(getattr(value, node_type.resolve_id_attr(), ""))
    for value in _argument_values(arguments):
        if isinstance(value, relay.GlobalID):
            return value.type_name, value.node_id
    return "-", "-"


def _argument_values(arguments: Mapping[str, Any]) -> Iterator[Any]:
    for _name, value in _named_argument_values(arguments):
        yield value


def _named_argument_values(arguments: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, value in arguments.items():
        yield name, value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for item in dataclasses.fields(value):
                yield item.name, getattr(value, item.name, None)


def _type_name(result: Any) -> str:
    definition = getattr(result, "__strawberry_definition__", None)
    return str(getattr(definition, "name", None) or type(result).__name__)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class RejectInvalidCredentials(SchemaExtension):
    """An operation sent with invalid credentials (expired, tampered, revoked) is refused as
    a whole with UNAUTHENTICATED, before any resolver runs. Only operations whose root fields
    are all open to anonymous callers (login, token refresh) still run, as anonymous, so a
    client holding an expired access token can refresh it."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        auth_error = getattr(context.context, "state", {}).get("auth_error")
        if auth_error is not None and context.result is None and not _open_operation(context):
            context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Invalid or expired token.",
                        extensions={"code": ErrorCode.UNAUTHENTICATED.value},
                    )
                ],
            )
        yield


def _open_operation(context: Any) -> bool:
    """Whether every root field of the operation is open to anonymous callers."""
    try:
        operation_type = context.operation_type
    except RuntimeError:
        return False
    root = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}[
        operation_type.value
    ]
    document = context.graphql_document
    names: list[str] = []
    for definition in document.definitions if document else ():
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if context.operation_name and (
            definition.name is None or definition.name.value != context.operation_name
        ):
            continue
        for selection in definition.selection_set.selections:
            if not isinstance(selection, FieldNode):
                return False
            if not selection.name.value.startswith("__"):
                names.append(selection.name.value)
        break
    return bool(names) and all(
        Role.ANONYMOUS in ACCESS.get(f"{root}.{name}", frozenset()) for name in names
    )
