"""The committed schema.graphql is the code's schema, and every public part is described."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
)
from loyalty.graphql.schema import schema, schema_sdl

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def test_schema_file_matches_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema_sdl(), (
        "schema.graphql is out of date: run `loyalty export-schema -o schema.graphql` "
        "and review the diff"
    )


def test_every_public_type_and_field_has_a_description() -> None:
    missing: list[str] = []
    for name, gql_type in schema._schema.type_map.items():
        if name.startswith("__") or name in BUILTIN_SCALARS:
            continue
        if name not in {"Query", "Mutation", "Subscription"} and not gql_type.description:
            missing.append(name)
        if isinstance(gql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in gql_type.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
        elif isinstance(gql_type, GraphQLEnumType | GraphQLScalarType | GraphQLUnionType):
            continue
    assert not missing, f"undocumented: {missing}"
