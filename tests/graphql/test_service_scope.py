"""Service keys look members up for checkout but never read marketing data."""

from __future__ import annotations

from typing import Any

from strawberry.relay import to_base64

from tests.factories.members import create_member

QUERY = """
query($id: ID!) { member(id: $id) { displayName points { balance } tags consents { purpose } consentHistory { purpose } } }
"""


async def test_service_key_gets_checkout_data_but_not_marketing_data(
    gql: Any, service_token: str
) -> None:
    member = await create_member(display_name="会员甲", tags=["vip"])
    body = await gql(
        QUERY, {"id": to_base64("Member", member.id)}, token=service_token, expect_errors=True
    )
    data = body["data"]["member"]
    assert data["displayName"] == "会**"  # masked: the key has no `pii` scope
    assert data["points"] == {"balance": 0}
    assert data["tags"] is None and data["consents"] is None and data["consentHistory"] is None
    refused = {tuple(e["path"][1:]) for e in body["errors"]}
    assert refused == {("tags",), ("consents",), ("consentHistory",)}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


async def test_staff_reads_the_same_marketing_data(gql: Any, staff_token: str) -> None:
    member = await create_member(tags=["vip"])
    body = await gql(QUERY, {"id": to_base64("Member", member.id)}, token=staff_token)
    assert body["data"]["member"]["consents"] == []
    assert body["data"]["member"]["tags"] == ["vip"]
