"""Production mode: no introspection, IDE or suggestions, no GET mutations, masked errors
with request ids, and codes on every top-level error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loyalty.auth.principal import Role
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.settings import Settings
from tests.auth.conftest import AppFactory, app_factory, post
from tests.conftest import token_for
from tests.factories.members import create_member

INTROSPECTION = [
    "{ __schema { types { name } } }",
    '{ __type(name: "Member") { name fields { name } } }',
    "query IntrospectionQuery { __schema { queryType { name } } }",
]
GET_MUTATION = (
    'mutation { registerMember(input: {channel: APP, displayName: "GET"}) { __typename } }'
)


@pytest.fixture
def app_with(orm: Any, redis: Any, settings: Settings) -> AppFactory:
    return app_factory(settings, redis)


@pytest.mark.parametrize("query", INTROSPECTION)
async def test_introspection_is_off_in_prod_and_on_elsewhere(
    app_with: AppFactory, settings: Settings, query: str
) -> None:
    admin = token_for(settings, Role.ADMIN)
    async with app_with(env="prod") as http:
        body = await post(http, query, token=admin)
    assert body["data"] is None
    error = body["errors"][0]
    assert "introspection" in error["message"].lower()
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    async with app_with(env="test") as http:
        assert "errors" not in await post(http, query, token=admin)


async def test_graphiql_is_served_only_in_dev(app_with: AppFactory) -> None:
    headers = {"Accept": "text/html"}
    async with app_with(env="prod") as http:
        response = await http.get("/graphql", headers=headers)
        assert response.status_code == 404
        assert "graphiql" not in response.text.lower()
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    async with app_with(env="dev") as http:
        response = await http.get("/graphql", headers=headers)
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()


async def test_field_suggestions_are_off_in_prod(app_with: AppFactory, settings: Settings) -> None:
    admin = token_for(settings, Role.ADMIN)
    async with app_with(env="prod") as http:
        error = (await post(http, "{ memberz { edges { cursor } } }", token=admin))["errors"][0]
    assert "memberz" in error["message"]
    assert "Did you mean" not in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    async with app_with(env="test") as http:
        error = (await post(http, "{ memberz { edges { cursor } } }", token=admin))["errors"][0]
    assert "Did you mean" in error["message"]


# One unknown name of each kind, in the document and in the variables.
UNKNOWN_NAMES: dict[str, tuple[str, dict[str, Any]]] = {
    "argument": ('{ member(idd: "x") { id } }', {}),
    "enum value": ("{ members(filter: {status: ACTIV}) { edges { cursor } } }", {}),
    "enum value in variables": (
        "query($s: MemberStatus) { members(filter: {status: $s}) { edges { cursor } } }",
        {"s": "ACTIV"},
    ),
    "input field": ('{ members(filter: {tex: "a"}) { edges { cursor } } }', {}),
    "input field in variables": (
        "query($f: MemberFilter) { members(filter: $f) { edges { cursor } } }",
        {"f": {"tex": "a"}},
    ),
    "type name": (
        "query($f: MemberFiltr) { members(filter: $f) { edges { cursor } } }",
        {},
    ),
    "field": ("{ members { edges { nod { id } } } }", {}),
}


@pytest.mark.parametrize("kind", UNKNOWN_NAMES)
async def test_no_error_suggests_a_name_in_prod(
    app_with: AppFactory, settings: Settings, kind: str
) -> None:
    query, variables = UNKNOWN_NAMES[kind]
    admin = token_for(settings, Role.ADMIN)
    async with app_with(env="prod") as http:
        prod = await post(http, query, variables, token=admin)
    async with app_with(env="dev") as http:
        dev = await post(http, query, variables, token=admin)
    assert prod["data"] is None
    assert prod["errors"], prod
    for error in prod["errors"]:
        assert "did you mean" not in error["message"].lower(), error
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert any("Did you mean" in error["message"] for error in dev["errors"]), dev


@pytest.mark.parametrize("env", ["prod", "test"])
async def test_get_runs_queries_but_never_mutations(
    app_with: AppFactory, settings: Settings, env: str
) -> None:
    admin = {"Authorization": f"Bearer {token_for(settings, Role.ADMIN)}"}
    async with app_with(env=env) as http:
        query = await http.get("/graphql", params={"query": "{ __typename }"}, headers=admin)
        assert query.status_code == 200
        assert query.json()["data"] == {"__typename": "Query"}
        mutation = await http.get("/graphql", params={"query": GET_MUTATION}, headers=admin)
        assert 400 <= mutation.status_code < 500
        error = mutation.json()["errors"][0]
        assert "mutations are not allowed" in error["message"].lower()
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Member.all().count() == 0


async def test_unexpected_errors_are_masked_with_a_request_id_and_no_internals(
    app_with: AppFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await create_member()

    async def broken(**kwargs: Any) -> Any:
        raise RuntimeError("connection to 10.0.0.7 failed: password=hunter2")

    monkeypatch.setattr(members, "get", broken)
    admin = token_for(settings, Role.ADMIN)
    from strawberry.relay import to_base64

    query = "query($id: ID!) { member(id: $id) { id } }"
    async with app_with(env="prod") as http:
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": {"id": to_base64("Member", member.id)}},
            headers={"Authorization": f"Bearer {admin}", "X-Request-ID": "req-prod-42"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-prod-42"
    body = response.json()
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 19}],
            "path": ["member"],
            "extensions": {"code": "INTERNAL", "requestId": "req-prod-42"},
        }
    ]
    text = response.text
    for secret in ("hunter2", "10.0.0.7", "RuntimeError", "Traceback", "File "):
        assert secret not in text


async def test_a_crash_outside_any_resolver_is_internal_and_masked(
    app_with: AppFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception raised by an extension (before any field runs) is the server's fault:
    INTERNAL and masked, like a resolver's crash, not a caller mistake with its message."""
    from loyalty.graphql import limits

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("cost table at 10.0.0.7 unreadable: password=hunter2")

    monkeypatch.setattr(limits, "operation_cost", broken)
    admin = token_for(settings, Role.ADMIN)
    for env in ("prod", "dev"):
        async with app_with(env=env) as http:
            response = await http.post(
                "/graphql",
                json={"query": "{ members(first: 1) { totalCount } }"},
                headers={"Authorization": f"Bearer {admin}", "X-Request-ID": "req-ext-1"},
            )
        errors = response.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["INTERNAL"], env
        if env == "prod":
            assert errors[0]["message"] == "Unexpected error."
            for secret in ("hunter2", "10.0.0.7", "RuntimeError"):
                assert secret not in response.text


async def test_business_codes_and_limit_messages_stay_visible_in_prod(
    app_with: AppFactory, settings: Settings
) -> None:
    admin = token_for(settings, Role.ADMIN)
    async with app_with(env="prod") as http:
        invalid = await post(
            http,
            'mutation { registerMember(input: {channel: APP, displayName: " ", phone: "1"}) '
            "{ __typename ... on ValidationError { code fields { field code } } } }",
            token=admin,
        )
        assert invalid["data"]["registerMember"]["code"] == "VALIDATION_ERROR"
        aliases = " ".join(f"a{i}: __typename" for i in range(16))
        limit = (await post(http, f"{{ {aliases} }}", token=admin))["errors"][0]
        assert limit["message"] == "16 aliases found. Allowed: 15"
        forbidden = (await post(http, "{ apiKeys { edges { cursor } } }"))["errors"][0]
        assert forbidden["message"] == "Authentication required."
        assert forbidden["extensions"]["code"] == "UNAUTHENTICATED"


async def test_every_top_level_error_has_a_code_and_the_request_id(
    app_with: AppFactory, settings: Settings
) -> None:
    member = await create_member()
    member_token = token_for(settings, Role.MEMBER, member_id=member.id)
    cases: list[tuple[dict[str, Any], dict[str, str], str]] = [
        ({"query": "{ apiKeys { edges { cursor } } }"}, {}, "UNAUTHENTICATED"),
        (
            {"query": "{ apiKeys { edges { cursor } } }"},
            {"Authorization": f"Bearer {member_token}"},
            "FORBIDDEN",
        ),
        ({"query": "{ nope }"}, {}, "BAD_USER_INPUT"),
        ({"query": "{"}, {}, "BAD_USER_INPUT"),
        ({"query": "query($n: Int!) { __typename }"}, {}, "BAD_USER_INPUT"),
        ({"query": "{ __typename }"}, {"Authorization": "Bearer nope"}, "UNAUTHENTICATED"),
    ]
    async with app_with(env="prod") as http:
        for payload, headers, code in cases:
            response = await http.post("/graphql", json=payload, headers=headers)
            assert response.status_code < 500
            for error in response.json()["errors"]:
                assert error["extensions"]["code"] == code, (payload, error)
                assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_request_ids_are_accepted_created_and_echoed(client: httpx.AsyncClient) -> None:
    given = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "abc-123"}
    )
    assert given.headers["x-request-id"] == "abc-123"
    created = await client.post("/graphql", json={"query": "{ __typename }"})
    assert len(created.headers["x-request-id"]) == 32
    unsafe = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "bad id <script>"}
    )
    assert unsafe.headers["x-request-id"] != "bad id <script>"
    assert unsafe.headers["x-request-id"].isalnum()
    health = await client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert health.headers["x-request-id"] == "probe-1"
