"""The role × operation table, enforced on every root field, and member isolation.

Both tests walk the built schema, so fields added by any domain are covered as they land.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64
from tortoise import Tortoise

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
)
from loyalty.auth.principal import Role
from loyalty.graphql import permissions
from loyalty.graphql.schema import build_schema
from loyalty.settings import Settings
from tests.auth.conftest import AppFactory, app_factory, post
from tests.conftest import token_for

ROOTS = ("Query", "Mutation", "Subscription")

SCALAR_SAMPLES: dict[str, Any] = {
    "ID": to_base64("Member", 1),
    "String": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": True,
    "Long": 1,
    "Date": "2000-01-01",
    "DateTime": "2000-01-01T00:00:00+00:00",
    "Time": "00:00:00",
    "JSON": {},
    "Decimal": "1",
    "UUID": "00000000-0000-0000-0000-000000000001",
    "GlobalID": to_base64("Member", 1),
}

REFUSED = {Role.ANONYMOUS: "UNAUTHENTICATED"}


@pytest.fixture
def app_with(orm: Any, redis: Any, settings: Settings) -> AppFactory:
    return app_factory(settings, redis)


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return build_schema(Settings(env="test"))._schema


def _required(argument: Any) -> bool:
    return isinstance(argument.type, GraphQLNonNull) and argument.default_value is Undefined


def root_fields(schema: GraphQLSchema) -> list[tuple[str, str]]:
    found = []
    for root in ROOTS:
        type_ = schema.get_type(root)
        if isinstance(type_, GraphQLObjectType):
            found += [(root, name) for name in type_.fields]
    return found


def sample(type_: Any) -> Any:
    """A JSON value the type accepts (required fields only)."""
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [sample(type_.of_type)]
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: sample(field.type) for name, field in type_.fields.items() if _required(field)
        }
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return SCALAR_SAMPLES.get(type_.name, "x")
    raise AssertionError(f"no sample for {type_}")


def operation_for(schema: GraphQLSchema, root: str, name: str) -> tuple[str, dict[str, Any]]:
    """A valid document calling ``root.name`` with required arguments from variables."""
    field = schema.get_type(root).fields[name]  # type: ignore[union-attr]
    declared, passed, variables = [], [], {}
    for arg_name, arg in field.args.items():
        if _required(arg):
            declared.append(f"${arg_name}: {arg.type}")
            passed.append(f"{arg_name}: ${arg_name}")
            variables[arg_name] = sample(arg.type)
    named = get_named_type(field.type)
    selection = (
        " { __typename }"
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
        else ""
    )
    keyword = root.lower()
    head = f"{keyword} Op({', '.join(declared)})" if declared else f"{keyword} Op"
    args = f"({', '.join(passed)})" if passed else ""
    return f"{head} {{ {name}{args}{selection} }}", variables


async def row_counts() -> dict[str, int]:
    counts = {}
    for app in Tortoise.apps.values():
        for model_name, model in app.items():
            counts[model_name] = await model.all().count()
    return counts


def test_every_root_field_has_an_access_entry_and_a_gate(graphql_schema: GraphQLSchema) -> None:
    from loyalty.graphql import schema as schema_module

    missing = [
        f"{r}.{n}" for r, n in root_fields(graphql_schema) if f"{r}.{n}" not in permissions.ACCESS
    ]
    assert missing == [], f"root fields without an access entry: {missing}"
    for root_name, root in (
        ("Query", schema_module.Query),
        ("Mutation", schema_module.Mutation),
        ("Subscription", schema_module.Subscription),
    ):
        if root is None:
            continue
        for field in root.__strawberry_definition__.fields:
            assert any(isinstance(e, permissions.AccessGate) for e in field.extensions), (
                f"{root_name}.{field.python_name} has no gate"
            )


def test_no_access_entry_names_a_field_that_does_not_exist(graphql_schema: GraphQLSchema) -> None:
    existing = {f"{r}.{n}" for r, n in root_fields(graphql_schema)}
    stale = [
        key for key in permissions.ACCESS if key.split(".")[0] in ROOTS and key not in existing
    ]
    assert stale == []


async def test_every_role_outside_an_entry_is_refused_before_the_resolver(
    client: httpx.AsyncClient, settings: Settings, graphql_schema: GraphQLSchema
) -> None:
    from tests.factories.members import create_member

    member = await create_member()
    tokens: dict[Role, str | None] = {
        Role.ANONYMOUS: None,
        Role.ADMIN: token_for(settings, Role.ADMIN),
        Role.STAFF: token_for(settings, Role.STAFF),
        Role.SERVICE: token_for(settings, Role.SERVICE, channel="POS"),
        Role.MEMBER: token_for(settings, Role.MEMBER, member_id=member.id),
    }
    before = await row_counts()
    checked = 0
    problems: list[str] = []
    for root, name in root_fields(graphql_schema):
        key = f"{root}.{name}"
        allowed = permissions.ACCESS[key]
        if root == "Subscription":
            for role in set(Role) - allowed:
                with pytest.raises(Exception) as refused:
                    permissions.check(_principal(role, member.id), key)
                assert getattr(refused.value, "code", None) is not None
            continue
        document, variables = operation_for(graphql_schema, root, name)
        for role in sorted(set(Role) - allowed):
            body = await post(client, document, variables, token=tokens[role])
            expected = REFUSED.get(role, "FORBIDDEN")
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
            data = body.get("data")
            if codes != [expected] or (data is not None and data.get(name) is not None):
                problems.append(f"{key} as {role.value}: {codes} {data}")
            checked += 1
    assert problems == []
    assert checked > 0
    # Refused calls wrote nothing anywhere.
    assert await row_counts() == before


def _principal(role: Role, member_id: int) -> Any:
    from loyalty.auth.principal import ANONYMOUS, Principal

    if role is Role.ANONYMOUS:
        return ANONYMOUS
    return Principal(role=role, subject="t", member_id=member_id if role is Role.MEMBER else None)


# --- member isolation --------------------------------------------------------------------------


def deep_selection(type_: Any, depth: int, counter: list[int]) -> str:
    """Every field reachable without required arguments, ``depth`` levels deep; union members
    as aliased inline fragments so their fields never conflict."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    if depth == 0:
        return "{ __typename }"
    parts = ["__typename"]
    if isinstance(named, GraphQLUnionType):
        for member_type in named.types:
            parts.append(f"... on {member_type.name} {deep_selection(member_type, depth, counter)}")
        return "{ " + " ".join(parts) + " }"
    for name, field in named.fields.items():
        if any(_required(a) for a in field.args.values()):
            continue
        counter[0] += 1
        parts.append(f"a{counter[0]}: {name}{deep_selection(field.type, depth - 1, counter)}")
    return "{ " + " ".join(parts) + " }"


REGISTER = """
mutation($input: RegisterMemberInput!) { registerMember(input: $input) {
  ... on RegisterMemberSuccess { member { id } } } }
"""

LOOSE_LIMITS = {
    "max_aliases": 100_000,
    "max_tokens": 1_000_000,
    "max_query_chars": 1_000_000,
    "max_query_depth": 50,
    "max_query_cost": 10**12,
}


async def test_a_member_never_reaches_another_members_data(
    app_with: Any, admin_token: str, settings: Settings, graphql_schema: GraphQLSchema
) -> None:
    async with app_with(**LOOSE_LIMITS) as http:
        ids = {}
        for label, phone, mail in (
            ("甲", "13800000001", "a@example.com"),
            ("乙", "13900000002", "bbb.secret@example.com"),
        ):
            body = await post(
                http,
                REGISTER,
                {
                    "input": {
                        "channel": "APP",
                        "displayName": f"会员{label}",
                        "phone": phone,
                        "email": mail,
                    }
                },
                token=admin_token,
            )
            ids[label] = body["data"]["registerMember"]["member"]["id"]
        a_id, b_id = ids["甲"], ids["乙"]
        a_pk = int(_decode(a_id)[1])
        b_pk = int(_decode(b_id)[1])
        token_a = token_for(settings, Role.MEMBER, member_id=a_pk)
        token_b = token_for(settings, Role.MEMBER, member_id=b_pk)
        markers = [b_id, "13900000002", "bbb.secret", "会员乙"]
        missing = to_base64("Member", 10**9)

        checked = []
        query_type = graphql_schema.get_type("Query")
        for name, field in query_type.fields.items():  # type: ignore[union-attr]
            if Role.MEMBER not in permissions.ACCESS[f"Query.{name}"]:
                continue
            required = {arg_name: arg for arg_name, arg in field.args.items() if _required(arg)}
            if any(get_named_type(a.type).name != "ID" for a in required.values()):
                continue  # needs inputs this test cannot invent; covered by the matrix
            declared = ", ".join(f"${n}: {a.type}" for n, a in required.items())
            passed = ", ".join(f"{n}: ${n}" for n in required)
            selection = deep_selection(field.type, 4, [0])
            document = (
                f"query Op{f'({declared})' if declared else ''} "
                f"{{ {name}{f'({passed})' if passed else ''} {selection} }}"
            )
            as_a = await post(http, document, dict.fromkeys(required, b_id), token=token_a)
            text = repr(as_a)
            leaked = [m for m in markers if m in text]
            assert not leaked, f"Query.{name} showed member B's data to member A: {leaked}"
            if required:
                # Another member's id answers exactly like an id that does not exist.
                as_missing = await post(
                    http, document, dict.fromkeys(required, missing), token=token_a
                )
                assert _strip(as_a) == _strip(as_missing), f"Query.{name} tells B's id apart"
            checked.append(name)
        assert {"me", "member", "node"} <= set(checked)

        # The same walk as B shows B's own data, so the markers above would have been seen.
        me_b = await post(
            http, f"{{ me {deep_selection(query_type.fields['me'].type, 4, [0])} }}", token=token_b
        )  # type: ignore[union-attr]
        assert all(m in repr(me_b) for m in (b_id, "会员乙"))

        # node(id) on every row any domain keeps for member B.
        for type_name, row_id in await rows_of_member(b_pk, graphql_schema):
            node_id = to_base64(type_name, row_id)
            query = "query($id: ID!) { node(id: $id) { __typename id } }"
            as_a = await post(http, query, {"id": node_id}, token=token_a)
            assert as_a["data"] == {"node": None}, f"node({type_name}) leaked to member A"
            unknown = await post(http, query, {"id": to_base64(type_name, 10**9)}, token=token_a)
            assert _strip(as_a) == _strip(unknown)


async def rows_of_member(member_id: int, schema: GraphQLSchema) -> list[tuple[str, int]]:
    """(GraphQL Node type, primary key) of every row that belongs to ``member_id``."""
    node_types = {
        name
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and any(i.name == "Node" for i in t.interfaces)
    }
    found: list[tuple[str, int]] = [("Member", member_id)]
    for app in Tortoise.apps.values():
        for model_name, model in app.items():
            if model_name not in node_types or model_name == "Member":
                continue
            if "member_id" in model._meta.fields_db_projection:
                for pk in await model.filter(member_id=member_id).values_list("id", flat=True):
                    found.append((model_name, pk))
    return found


def _decode(global_id: str) -> tuple[str, str]:
    import base64

    raw = base64.b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    type_name, _, node_id = raw.partition(":")
    return type_name, node_id


def _strip(body: dict[str, Any]) -> Any:
    text = repr(body)
    return re.sub(r"'requestId': '[^']*'", "", text)


# --- service key scope -------------------------------------------------------------------------

# Input fields naming the channel or the store a call acts for, and which scope they fall in.
SCOPE_FIELDS = {"channel": "channel", "orderChannel": "channel", "storeId": "store"}
KEY_SCOPE = {"channel": "POS", "store": "S001"}
FOREIGN_SCOPE = {"channel": "APP", "store": "S999"}


def scoped_mutations(schema: GraphQLSchema) -> list[tuple[str, str, str | None, str]]:
    """(mutation, argument, input field or None, scope kind) for every mutation a service key
    may call whose arguments name a channel or a store."""
    found = []
    mutation = schema.get_type("Mutation")
    for name, field in mutation.fields.items():  # type: ignore[union-attr]
        if Role.SERVICE not in permissions.ACCESS[f"Mutation.{name}"]:
            continue
        for arg_name, arg in field.args.items():
            if arg_name in SCOPE_FIELDS:
                found.append((name, arg_name, None, SCOPE_FIELDS[arg_name]))
            named = get_named_type(arg.type)
            if isinstance(named, GraphQLInputObjectType):
                for input_field in named.fields:
                    if input_field in SCOPE_FIELDS:
                        found.append((name, arg_name, input_field, SCOPE_FIELDS[input_field]))
    return found


def scoped_operation(
    schema: GraphQLSchema, name: str, arg_name: str, input_field: str | None, value: str
) -> tuple[str, dict[str, Any]]:
    """The matrix document for ``name``: every scope field of the argument inside the key's
    scope, except the one set to ``value``."""
    field = schema.get_type("Mutation").fields[name]  # type: ignore[union-attr]
    arg = field.args[arg_name]
    declared = [f"${n}: {a.type}" for n, a in field.args.items() if _required(a) or n == arg_name]
    passed = [f"{n}: ${n}" for n, a in field.args.items() if _required(a) or n == arg_name]
    variables = {n: sample(a.type) for n, a in field.args.items() if _required(a)}
    if input_field is None:
        variables[arg_name] = value
    else:
        named = get_named_type(arg.type)
        inside = {
            n: KEY_SCOPE[SCOPE_FIELDS[n]]
            for n in named.fields  # type: ignore[union-attr]
            if n in SCOPE_FIELDS
        }
        variables[arg_name] = {
            **(variables.get(arg_name) or sample(arg.type)),
            **inside,
            input_field: value,
        }
    document = (
        f"mutation Op({', '.join(declared)}) {{ {name}({', '.join(passed)}) {{ __typename }} }}"
    )
    return document, variables


def test_the_scope_walk_finds_every_mutation_that_takes_a_channel_or_store(
    graphql_schema: GraphQLSchema,
) -> None:
    found = {(name, field) for name, _arg, field, _kind in scoped_mutations(graphql_schema)}
    assert {
        ("recordOrder", "channel"),
        ("recordOrder", "storeId"),
        ("refundOrder", "channel"),
        ("redeemPoints", "orderChannel"),
        ("registerMember", "channel"),
        ("linkIdentity", "channel"),
        ("setConsent", "channel"),
        ("claimBenefit", "channel"),
        ("reserveBenefit", "channel"),
    } <= found


async def test_a_service_key_is_refused_outside_its_channel_and_store(
    client: httpx.AsyncClient, settings: Settings, graphql_schema: GraphQLSchema
) -> None:
    from tests.factories.members import create_member

    await create_member()
    token = token_for(
        settings, Role.SERVICE, channel=KEY_SCOPE["channel"], store_id=KEY_SCOPE["store"]
    )
    before = await row_counts()
    problems: list[str] = []
    scoped = scoped_mutations(graphql_schema)
    for name, arg_name, input_field, kind in scoped:
        document, variables = scoped_operation(
            graphql_schema, name, arg_name, input_field, FOREIGN_SCOPE[kind]
        )
        body = await post(client, document, variables, token=token)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
        data = body.get("data")
        if codes != ["FORBIDDEN"] or (data is not None and data.get(name) is not None):
            problems.append(f"{name}.{input_field or arg_name} outside scope: {codes} {data}")
    assert problems == []
    # Refused calls wrote nothing anywhere.
    assert await row_counts() == before

    # The same calls inside the key's scope pass the gate (whatever the resolver answers).
    for name, arg_name, input_field, kind in scoped:
        document, variables = scoped_operation(
            graphql_schema, name, arg_name, input_field, KEY_SCOPE[kind]
        )
        body = await post(client, document, variables, token=token)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
        assert "FORBIDDEN" not in codes, f"{name} refused inside the key's scope: {body}"


REFUND_WHOLE = """
mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
  __typename ... on RefundOrderSuccess { refund { amount } } } }
"""


@pytest.mark.parametrize(("key_store", "refused"), [("S001", True), ("S002", False), (None, False)])
async def test_a_store_bound_key_refunds_only_its_stores_orders(
    gql: Any, settings: Settings, key_store: str | None, refused: bool
) -> None:
    from loyalty.orders import service as orders
    from loyalty.orders.models import Refund
    from tests.factories.members import create_member

    member = await create_member()
    await orders.record(
        channel="POS",
        external_id="P-1",
        occurred_at=datetime(2024, 6, 1, 10, tzinfo=UTC),
        currency="CNY",
        lines=[orders.LineIn(sku="TEA", quantity=1, unit_price=1_000)],
        member_id=member.id,
        store_id="S002",
    )
    token = token_for(settings, Role.SERVICE, channel="POS", store_id=key_store)
    variables = {
        "input": {"channel": "POS", "orderExternalId": "P-1", "refundId": "R-1", "whole": True}
    }
    body = await gql(REFUND_WHOLE, variables, token=token, expect_errors=True)
    if refused:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["data"] is None
        assert await Refund.all().count() == 0
    else:
        assert body["data"]["refundOrder"]["__typename"] == "RefundOrderSuccess"
        assert await Refund.all().count() == 1


async def test_a_store_bound_key_records_for_its_store_when_none_is_given(
    gql: Any, settings: Settings
) -> None:
    from loyalty.orders.models import Order
    from tests.factories.members import create_member

    member = await create_member()
    token = token_for(settings, Role.SERVICE, channel="POS", store_id="S001")
    record = """
    mutation($input: RecordOrderInput!) { recordOrder(input: $input) { __typename } }
    """
    order = {
        "channel": "POS",
        "externalId": "P-1",
        "occurredAt": "2024-06-01T10:00:00+08:00",
        "currency": "CNY",
        "lines": [{"sku": "TEA", "quantity": 1, "unitPrice": 1_000}],
        "memberId": to_base64("Member", member.id),
    }
    body = await gql(record, {"input": order}, token=token)
    assert body["data"]["recordOrder"]["__typename"] == "RecordOrderSuccess"
    assert await Order.get(external_id="P-1").values_list("store_id", flat=True) == "S001"
