"""Text inputs: control characters are refused before any resolver runs.

PostgreSQL cannot store a NUL character and no database can store a lone surrogate, while
SQLite keeps both; other control characters only corrupt logs, exports and receipts. Every
string an operation sends (literal or variable, at any depth of any field's arguments) is
checked once per root field; tab, newline and carriage return pass (each field's own rules
decide whether it takes them).

The refusal is the usual one: the ``ValidationError`` member when the root field's result
has one, else a top-level BAD_USER_INPUT error with the same field list. Nothing runs, so
nothing is written.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    GraphQLUnionType,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_nullable_type,
)
from loyalty import errors as domain
from loyalty.graphql.errors import ValidationError

# C0 controls but tab, LF and CR; DEL; C1 controls; lone surrogates.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MESSAGE = "must not contain control characters"


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def refused_inputs(info: GraphQLResolveInfo) -> list[str]:
    """Input paths (``input.tags[1]``; nested fields' arguments prefixed by their response
    path, ``edges.node.pointsHistory.after``) of every string with a control character in
    the arguments of this field and of everything selected under it."""
    walker = _Walker(info.fragments, info.variable_values)
    for node in info.field_nodes:
        walker.field(node, "")
    return list(dict.fromkeys(walker.found))


class _Walker:
    def __init__(
        self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.found: list[str] = []
        self.seen_fragments: set[str] = set()

    def field(self, node: FieldNode, prefix: str) -> None:
        for argument in node.arguments or ():
            self.literal(argument.value, prefix + argument.name.value)
        if node.selection_set is not None:
            self.selections(node.selection_set, prefix)

    def selections(self, selection_set: SelectionSetNode, prefix: str) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                self.field(selection, f"{prefix}{key}.")
            elif isinstance(selection, InlineFragmentNode):
                self.selections(selection.selection_set, prefix)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in self.seen_fragments:
                    self.seen_fragments.add(name)
                    self.selections(fragment.selection_set, prefix)
                    self.seen_fragments.discard(name)

    def literal(self, value: ValueNode, path: str) -> None:
        if isinstance(value, StringValueNode):
            if has_control_characters(value.value):
                self.found.append(path)
        elif isinstance(value, ListValueNode):
            for index, item in enumerate(value.values):
                self.literal(item, f"{path}[{index}]")
        elif isinstance(value, ObjectValueNode):
            for item in value.fields:
                self.literal(item.value, f"{path}.{item.name.value}")
        elif isinstance(value, VariableNode):
            self.value(self.variables.get(value.name.value), path)

    def value(self, value: Any, path: str) -> None:
        if isinstance(value, str):
            if has_control_characters(value):
                self.found.append(path)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.value(item, f"{path}.{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.value(item, f"{path}[{index}]")


def _refusal(info: Any) -> Any:
    """``None`` when the input is clean; else the ValidationError member to return
    (raises the domain error when the result has no such member)."""
    raw: GraphQLResolveInfo = info._raw_info
    paths = refused_inputs(raw)
    if not paths:
        return None
    error = domain.ValidationError([domain.FieldError(path, MESSAGE) for path in paths])
    result_type = get_nullable_type(raw.return_type)
    if isinstance(result_type, GraphQLUnionType) and any(
        member.name == "ValidationError" for member in result_type.types
    ):
        return ValidationError.from_domain(error)
    raise error


class RefuseControlCharacters(FieldExtension):
    """On a root field: refuses the operation's field when any string under it carries a
    control character (see the module)."""

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        refusal = _refusal(info)
        if refusal is not None:
            return refusal
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        refusal = _refusal(info)
        if refusal is not None:
            return refusal
        result = next_(source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def guard_root_fields(fields: Iterable[StrawberryField]) -> None:
    """Attach :class:`RefuseControlCharacters` to each root field, inside the access gate
    (callers without access are refused before their input is looked at)."""
    for field in fields:
        if not any(isinstance(e, RefuseControlCharacters) for e in field.extensions):
            field.extensions.insert(0, RefuseControlCharacters())


__all__ = [
    "RefuseControlCharacters",
    "guard_root_fields",
    "has_control_characters",
    "refused_inputs",
]
