"""registerMember then member, through the ASGI app."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.events.models import Event, OutboxStatus
from loyalty.members.models import Member

REGISTER = """
mutation Register($input: RegisterMemberInput!) {
  registerMember(input: $input) {
    __typename
    ... on RegisterMemberSuccess { created member { id displayName phone email birthDate registeredChannel status } }
    ... on ValidationError { code message fields { field message code } }
  }
}
"""

MEMBER = """
query Member($id: ID!) { member(id: $id) { id displayName phone stats { totalSpend orderCount averageOrderValue } } }
"""


async def test_register_then_read_member(gql: Any) -> None:
    body = await gql(
        REGISTER,
        {
            "input": {
                "channel": "WECHAT_MINIPROGRAM",
                "displayName": "王小明",
                "phone": "138 1234 5678",
                "email": "Xiao.Ming@Example.COM",
                "birthDate": "1990-02-28",
            }
        },
    )
    result = body["data"]["registerMember"]
    assert result["__typename"] == "RegisterMemberSuccess"
    assert result["created"] is True
    member = result["member"]
    assert member["phone"] == "+8613812345678"
    assert member["email"] == "xiao.ming@example.com"
    assert member["registeredChannel"] == "WECHAT_MINIPROGRAM"

    read = await gql(MEMBER, {"id": member["id"]})
    assert read["data"]["member"]["displayName"] == "王小明"
    assert read["data"]["member"]["stats"] == {
        "totalSpend": 0,
        "orderCount": 0,
        "averageOrderValue": 0,
    }


async def test_same_phone_in_another_format_returns_existing_member(gql: Any) -> None:
    first = await gql(
        REGISTER, {"input": {"channel": "POS", "displayName": "A", "phone": "13812345678"}}
    )
    again = await gql(
        REGISTER, {"input": {"channel": "APP", "displayName": "B", "phone": "0086 138-1234-5678"}}
    )
    assert again["data"]["registerMember"]["created"] is False
    assert (
        again["data"]["registerMember"]["member"]["id"]
        == first["data"]["registerMember"]["member"]["id"]
    )
    assert await Member.all().count() == 1


@pytest.mark.parametrize(
    ("patch", "field", "code"),
    [
        ({"displayName": "   "}, "displayName", "REQUIRED"),
        ({"displayName": "名" * 65}, "displayName", "TOO_LONG"),
        ({"phone": "12345"}, "phone", "INVALID"),
        ({"email": "not-an-email"}, "email", "INVALID"),
        ({"birthDate": "2999-01-01"}, "birthDate", "INVALID"),
        ({"timezone": "Mars/Olympus"}, "timezone", "INVALID"),
    ],
)
async def test_bad_input_is_a_typed_error_and_writes_nothing(
    gql: Any, patch: dict[str, Any], field: str, code: str
) -> None:
    payload = {"channel": "APP", "displayName": "张三", "phone": "13912345678", **patch}
    body = await gql(REGISTER, {"input": payload})
    result = body["data"]["registerMember"]
    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION_ERROR"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [(field, code)]
    assert await Member.all().count() == 0
    assert await Event.all().count() == 0


async def test_unknown_input_field_is_rejected_before_any_write(gql: Any) -> None:
    body = await gql(
        REGISTER,
        {"input": {"channel": "APP", "displayName": "张三", "shoeSize": 42}},
        expect_errors=True,
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Member.all().count() == 0


async def test_unknown_channel_enum_is_rejected(gql: Any) -> None:
    body = await gql(
        REGISTER, {"input": {"channel": "FAX", "displayName": "张三"}}, expect_errors=True
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Member.all().count() == 0


async def test_one_megabyte_body_is_refused_before_parsing(client: Any, admin_token: str) -> None:
    query = "query { __typename }" + " " * 1_100_000
    response = await client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.headers["x-request-id"]


async def test_members_connection_pages_with_keyset_cursors(gql: Any) -> None:
    for i in range(5):
        await gql(
            REGISTER,
            {"input": {"channel": "APP", "displayName": f"M{i}", "phone": f"1381234560{i}"}},
        )
    query = """query($after: String) { members(first: 2, after: $after) {
        edges { cursor node { displayName } } pageInfo { hasNextPage endCursor } } }"""
    names: list[str] = []
    after = None
    while True:
        page = (await gql(query, {"after": after}))["data"]["members"]
        names += [e["node"]["displayName"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert names == ["M0", "M1", "M2", "M3", "M4"]


async def test_members_first_above_limit_is_a_clear_error(gql: Any) -> None:
    body = await gql("{ members(first: 101) { edges { cursor } } }", expect_errors=True)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 100" in error["message"]


async def test_tampered_cursor_is_bad_user_input(gql: Any) -> None:
    body = await gql(
        '{ members(first: 2, after: "bm9wZQ") { edges { cursor } } }', expect_errors=True
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_registration_event_is_published_by_a_worker(
    gql: Any, worker: Any, redis: Any
) -> None:
    await gql(
        REGISTER, {"input": {"channel": "APP", "displayName": "事件", "phone": "13700000001"}}
    )
    event = await Event.get(kind="member.registered")
    assert event.status == OutboxStatus.PENDING
    assert await worker() >= 1
    await event.refresh_from_db()
    assert event.status == OutboxStatus.SENT and event.sent_at is not None
    entries = await redis.xrange("loyalty:events")
    assert len(entries) == 1
