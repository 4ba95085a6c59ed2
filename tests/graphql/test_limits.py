"""Query limits: each one just under (runs) and just over (refused before any resolver)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql.language import Lexer, Source, TokenKind

from loyalty import clock
from loyalty.auth.principal import Role
from loyalty.members.models import Member
from loyalty.settings import Settings
from tests.auth.conftest import AppFactory, app_factory, post
from tests.conftest import token_for


@pytest.fixture
def app_with(orm: Any, redis: Any, settings: Settings) -> AppFactory:
    return app_factory(settings, redis)


def _error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1
    return dict(body["errors"][0])


def register(alias: str, phone: str) -> str:
    return (
        f'{alias}: registerMember(input: {{channel: APP, displayName: "限", phone: "{phone}"}}) '
        "{ __typename }"
    )


# --- text, tokens, depth, aliases ----------------------------------------------------------


async def test_query_text_length(client: httpx.AsyncClient, settings: Settings) -> None:
    base = "{ __typename }"
    limit = settings.max_query_chars
    assert limit == 15_000
    ok = await post(client, base + " " * (limit - len(base)))
    assert ok["data"] == {"__typename": "Query"}
    refused = _error(await post(client, base + " " * (limit - len(base) + 1)))
    assert refused["message"] == "Query text longer than 15000 characters."
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"


def count_tokens(text: str) -> int:
    lexer = Lexer(Source(text))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def test_token_count(client: httpx.AsyncClient, admin_token: str, settings: Settings) -> None:
    assert settings.max_tokens == 2_000

    def document(tokens: int) -> str:
        head = 'mutation { createApiKey(input: {name: "k", channel: POS, scopes: ['
        tail = "]}) { __typename } }"
        padding = tokens - count_tokens(head + tail)
        return head + ", ".join(['"pii"'] * padding) + tail

    assert count_tokens(document(2_000)) == 2_000
    ok = await post(client, document(2_000), token=admin_token)
    assert ok["data"] == {"createApiKey": {"__typename": "CreateApiKeySuccess"}}, ok
    refused = _error(await post(client, document(2_001), token=admin_token))
    assert "more than 2000 tokens" in refused["message"]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"


async def test_query_depth(app_with: AppFactory, settings: Settings) -> None:
    assert settings.max_query_depth == 10
    admin = token_for(settings, Role.ADMIN)
    # Depth counts from the root field (0): node is at 2, stats at 3, orderCount at 4.
    async with app_with(max_query_depth=3) as http:
        ok = await post(http, "{ members { edges { node { id } } } }", token=admin)
        assert "errors" not in ok, ok
        refused = _error(
            await post(http, "{ members { edges { node { stats { orderCount } } } } }", token=admin)
        )
    assert "exceeds maximum operation depth of 3" in refused["message"]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"


async def test_aliases_and_no_resolver_runs_when_refused(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    assert settings.max_aliases == 15
    over = " ".join(register(f"m{i}", f"1380000{i:04d}") for i in range(16))
    refused = _error(await post(client, f"mutation {{ {over} }}", token=admin_token))
    assert "16 aliases found. Allowed: 15" in refused["message"]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Member.all().count() == 0
    under = " ".join(register(f"m{i}", f"1380000{i:04d}") for i in range(15))
    ok = await post(client, f"mutation {{ {under} }}", token=admin_token)
    assert "errors" not in ok
    assert await Member.all().count() == 15


# --- page size and cost ---------------------------------------------------------------------


@pytest.mark.parametrize("as_variable", [False, True])
async def test_first_at_most_100(
    client: httpx.AsyncClient, admin_token: str, as_variable: bool
) -> None:
    def call(first: int) -> Any:
        if as_variable:
            query = "query($n: Int!) { members(first: $n) { edges { cursor } } }"
            return post(client, query, {"n": first}, token=admin_token)
        return post(
            client, f"{{ members(first: {first}) {{ edges {{ cursor }} }} }}", token=admin_token
        )

    assert "errors" not in await call(100)
    refused = _error(await call(101))
    assert refused["message"] == "`first` must be at most 100."
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert _error(await call(-1))["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cost_multiplies_page_sizes(app_with: AppFactory, settings: Settings) -> None:
    assert settings.max_query_cost == 5_000
    admin = token_for(settings, Role.ADMIN)
    # members 100 + edges 100 + node 100 + id 100 + displayName 100 = 500
    page = "members(first: 100) { edges { node { id displayName } } }"
    async with app_with(max_query_cost=500) as http:
        assert "errors" not in await post(http, f"{{ {page} }}", token=admin)
        refused = _error(
            await post(
                http,
                f"{{ {page} more: members(first: 1) {{ pageInfo {{ hasNextPage }} }} }}",
                token=admin,
            )
        )
        assert refused["extensions"] == {
            "code": "BAD_USER_INPUT",
            "limit": "cost",
            "cost": 503,
            "maximum": 500,
            "requestId": refused["extensions"]["requestId"],
        }
        # Variables count like literals; a default page size counts too (20 by default).
        query = "query($n: Int!) { members(first: $n) { edges { node { id displayName } } } }"
        assert "errors" not in await post(http, query, {"n": 100}, token=admin)
        default_page = "{ members { edges { node { id } } } }"  # 20 × 4 = 80
        assert "errors" not in await post(http, default_page, token=admin)


async def test_default_cost_limit_refuses_a_wide_page(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    # Each selected field costs the page size: (members + edges + node + 50 fields) × first.
    fields = " ".join(["displayName"] * 50)
    wide = "{ members(first: 100) { edges { node { " + fields + " } } } }"
    refused = _error(await post(client, wide, token=admin_token))
    assert refused["extensions"]["limit"] == "cost"
    assert refused["extensions"]["cost"] == 5_300
    assert "errors" not in await post(
        client, wide.replace("first: 100", "first: 94"), token=admin_token
    )  # 4982


async def test_cost_refusal_of_a_mutation_writes_nothing(
    app_with: AppFactory, settings: Settings
) -> None:
    admin = token_for(settings, Role.ADMIN)
    async with app_with(max_query_cost=2) as http:
        doc = (
            "mutation { " + " ".join(register(f"m{i}", f"1390000{i:04d}") for i in range(2)) + " }"
        )
        assert "errors" not in await post(http, doc, token=admin)  # one per field
        doc3 = (
            "mutation { " + " ".join(register(f"n{i}", f"1370000{i:04d}") for i in range(3)) + " }"
        )
        assert _error(await post(http, doc3, token=admin))["extensions"]["limit"] == "cost"
    assert await Member.all().count() == 2


# --- batching and body size -----------------------------------------------------------------


async def test_batches_of_up_to_five_operations(client: httpx.AsyncClient) -> None:
    five = [{"query": "{ __typename }"}] * 5
    response = await client.post("/graphql", json=five)
    assert response.status_code == 200
    assert [r["data"] for r in response.json()] == [{"__typename": "Query"}] * 5
    response = await client.post("/graphql", json=[*five, {"query": "{ __typename }"}])
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_body_size_just_under_and_just_over(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.max_body_bytes == 1_000_000

    def body(size: int) -> bytes:
        head = b'{"query": "{ __typename }", "variables": {"pad": "'
        tail = b'"}}'
        return head + b"x" * (size - len(head) - len(tail)) + tail

    headers = {"content-type": "application/json"}
    ok = await client.post("/graphql", content=body(1_000_000), headers=headers)
    assert ok.status_code == 200
    assert ok.json()["data"] == {"__typename": "Query"}
    refused = await client.post("/graphql", content=body(1_000_001), headers=headers)
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_malformed_requests_are_4xx_with_a_code(client: httpx.AsyncClient) -> None:
    cases = [
        client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}),
        client.post("/graphql", json={"query": "{ __typename"}),
        client.post("/graphql", json={"query": "{ nope }"}),
        client.post("/graphql", json={}),
        client.post("/graphql", json={"query": 5}),
    ]
    for pending in cases:
        response = await pending
        assert 200 <= response.status_code < 500
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["requestId"]


# --- rate limiting --------------------------------------------------------------------------

WINDOW_START = datetime(2030, 1, 1, 8, 0, 10, tzinfo=UTC)


async def test_rate_limit_is_reached_and_resets(app_with: AppFactory, settings: Settings) -> None:
    async with app_with(rate_limit_per_minute=3) as http:
        with clock.frozen(WINDOW_START):
            admin = token_for(settings, Role.ADMIN)
            for _ in range(3):
                assert "errors" not in await post(http, "{ __typename }", token=admin)
            response = await http.post(
                "/graphql",
                json={"query": "{ __typename }"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            error = _error(response.json())
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["retryAfter"] == 50
            assert "retry in 50 s" in error["message"]
            assert response.headers["retry-after"] == "50"
            clock.advance(timedelta(seconds=49))
            assert (
                _error(await post(http, "{ __typename }", token=admin))["extensions"]["code"]
                == "RATE_LIMITED"
            )
            clock.advance(timedelta(seconds=1))
            assert "errors" not in await post(http, "{ __typename }", token=admin)


async def test_rate_limit_counts_each_operation_of_a_batch(
    app_with: AppFactory, settings: Settings
) -> None:
    async with app_with(rate_limit_per_minute=4) as http:
        with clock.frozen(WINDOW_START):
            headers = {"Authorization": f"Bearer {token_for(settings, Role.ADMIN)}"}
            batch = [{"query": "{ __typename }"}] * 3
            first = (await http.post("/graphql", json=batch, headers=headers)).json()
            assert all("errors" not in r for r in first)
            second = (await http.post("/graphql", json=batch, headers=headers)).json()
            codes = sorted(
                r["errors"][0]["extensions"]["code"] if "errors" in r else "OK" for r in second
            )
            assert codes == ["OK", "RATE_LIMITED", "RATE_LIMITED"]


async def test_rate_limits_are_per_principal_and_per_ip_for_anonymous(
    app_with: AppFactory, settings: Settings
) -> None:
    async with app_with(rate_limit_per_minute=2, anonymous_rate_limit_per_minute=1) as http:
        with clock.frozen(WINDOW_START):
            one = token_for(settings, Role.STAFF)
            other = token_for(settings, Role.ADMIN)
            assert "errors" not in await post(http, "{ __typename }")
            assert (
                _error(await post(http, "{ __typename }"))["extensions"]["code"] == "RATE_LIMITED"
            )
            for _ in range(2):
                assert "errors" not in await post(http, "{ __typename }", token=one)
            assert (
                _error(await post(http, "{ __typename }", token=one))["extensions"]["code"]
                == "RATE_LIMITED"
            )
            # Another principal still has its whole budget.
            assert "errors" not in await post(http, "{ __typename }", token=other)
