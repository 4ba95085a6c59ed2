"""Role × operation table: every root query, mutation and subscription field has an entry.

Domain GraphQL packages declare ``ACCESS`` dicts (``"Query.member": {roles}``); this module
merges them and attaches a gate to every root field when the schema is built. A root field
without an entry is refused at build time, and a test enumerates the schema against the table.
Field-level rules (a member sees only its own data) live in the resolvers through
:func:`ensure_member_access`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from strawberry import relay
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


# Roles whose mutations are written to the audit log.
AUDITED_ROLES = frozenset({Role.ADMIN, Role.STAFF})


class AccessGate(FieldExtension):
    """Checks the table before a root field's resolver runs; audits admin and staff
    mutations once they completed (action ``Mutation.<name>``, the object acted on and the
    outcome's type: ids only, never input values)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.audited = key.startswith("Mutation.")

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        check(info.context.principal, self.key, info.context.state.get("auth_error"))
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        principal = info.context.principal
        check(principal, self.key, info.context.state.get("auth_error"))
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
    for value in arguments.values():
        yield value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for item in dataclasses.fields(value):
                yield getattr(value, item.name, None)


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
