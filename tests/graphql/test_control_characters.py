"""Control characters in any string input are refused before a resolver runs, with the usual
ValidationError, on both backends; tab, newline and carriage return pass."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from loyalty.members.models import Member

REGISTER = """
mutation Register($input: RegisterMemberInput!) {
  registerMember(input: $input) {
    __typename
    ... on RegisterMemberSuccess { created }
    ... on ValidationError { code message fields { field message code } }
  }
}
"""
MEMBERS = "query($f: MemberFilter) { members(filter: $f) { edges { cursor } } }"


async def test_a_nul_in_a_literal_display_name_is_a_validation_error(gql: Any) -> None:
    body = await gql(
        'mutation { registerMember(input: {channel: POS, displayName: "a\\u0000b"}) {'
        " __typename ... on ValidationError { code message fields { field message code } } } }"
    )
    assert body["data"]["registerMember"] == {
        "__typename": "ValidationError",
        "code": "VALIDATION_ERROR",
        "message": "input.displayName: must not contain control characters",
        "fields": [
            {
                "field": "input.displayName",
                "message": "must not contain control characters",
                "code": "INVALID",
            }
        ],
    }
    assert await Member.all().count() == 0


async def test_a_nul_in_a_literal_members_filter_is_a_bad_user_input(gql: Any) -> None:
    body = await gql(
        '{ members(filter: {text: "a\\u0000"}) { edges { cursor } } }', expect_errors=True
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == [
        {"field": "filter.text", "message": "must not contain control characters"}
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"displayName": "a\x00b"}, "input.displayName"),
        ({"tags": ["vip", "b\x1b[31m"]}, "input.tags[1]"),
        ({"identities": [{"kind": "POS_CARD", "value": "C\x7f1"}]}, "input.identities[0].value"),
        ({"region": "Shanghai\x85"}, "input.region"),
    ],
)
async def test_control_characters_inside_variables_are_validation_errors(
    gql: Any, changes: dict[str, Any], field: str
) -> None:
    given = {"channel": "POS", "displayName": "Ann", **changes}
    body = await gql(REGISTER, {"input": given})
    result = body["data"]["registerMember"]
    assert result["__typename"] == "ValidationError"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [(field, "INVALID")]
    assert await Member.all().count() == 0


async def test_a_lone_surrogate_in_variables_is_a_validation_error(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    # JSON can carry "\ud800", which no database can store as UTF-8 text.
    payload = json.dumps(
        {"query": REGISTER, "variables": {"input": {"channel": "POS", "displayName": "x"}}}
    ).replace('"displayName": "x"', '"displayName": "a\\ud800"')
    response = await client.post(
        "/graphql",
        content=payload,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
    )
    result = response.json()["data"]["registerMember"]
    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == "input.displayName"
    assert await Member.all().count() == 0


async def test_a_nul_in_variables_of_a_query_is_a_bad_user_input(gql: Any) -> None:
    body = await gql(MEMBERS, {"f": {"text": "a\x00"}}, expect_errors=True)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"][0]["field"] == "filter.text"


async def test_arguments_of_nested_fields_are_checked(gql: Any) -> None:
    body = await gql(
        '{ members { edges { node { pointsHistory(after: "\\u0001") { edges { cursor } } } } } }',
        expect_errors=True,
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"][0]["field"] == "edges.node.pointsHistory.after"


async def test_a_result_without_a_validation_error_member_answers_a_top_level_error(
    gql: Any,
) -> None:
    body = await gql(
        'mutation { refreshToken(input: {refreshToken: "t\\u0000"}) { __typename } }',
        expect_errors=True,
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"][0]["field"] == "input.refreshToken"


async def test_callers_without_access_are_refused_before_their_input_is_looked_at(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql", json={"query": MEMBERS, "variables": {"f": {"text": "a\x00"}}}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_tab_newline_and_carriage_return_pass(gql: Any) -> None:
    body = await gql(MEMBERS, {"f": {"text": "a\tb\nc\rd"}})
    assert body["data"]["members"]["edges"] == []
    registered = await gql(REGISTER, {"input": {"channel": "POS", "displayName": "Ann\tLee"}})
    assert registered["data"]["registerMember"] == {
        "__typename": "RegisterMemberSuccess",
        "created": True,
    }
