"""linkIdentity, unlinkIdentity and memberByIdentity through the API."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.auth.principal import Role
from loyalty.members.models import ChannelIdentity, IdentityKind, MemberStatus
from tests.conftest import token_for
from tests.factories.members import create_identity, create_member
from tests.members.conftest import gid

LINK = """
mutation($input: LinkIdentityInput!) { linkIdentity(input: $input) {
  __typename
  ... on LinkIdentitySuccess { member { id } identity { kind scope value channel } }
  ... on ValidationError { code fields { field code } }
  ... on IdentityConflictError { code }
  ... on MemberNotActiveError { code }
  ... on NotFoundError { code }
} }
"""

UNLINK = """
mutation($input: UnlinkIdentityInput!) { unlinkIdentity(input: $input) {
  __typename
  ... on UnlinkIdentitySuccess { member { phone identities { kind } } }
  ... on NotFoundError { code }
} }
"""

BY_IDENTITY = """
query($kind: IdentityKind!, $value: String!, $scope: String) {
  memberByIdentity(kind: $kind, value: $value, scope: $scope) { id phone }
}
"""


async def link(
    gql: Any, member_id: int, token: str | None = None, **identity: Any
) -> dict[str, Any]:
    body = await gql(
        LINK, {"input": {"memberId": gid(member_id), "identity": identity}}, token=token
    )
    return body["data"]["linkIdentity"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("orm")
async def test_pos_links_a_card_with_its_own_channel(gql: Any, service_token: str) -> None:
    member = await create_member()

    result = await link(gql, member.id, token=service_token, kind="POS_CARD", value="8800 1")

    assert result["__typename"] == "LinkIdentitySuccess"
    assert result["identity"]["channel"] == "POS"
    assert result["identity"]["scope"] is None


async def test_linking_another_members_card_is_a_conflict(gql: Any) -> None:
    owner = await create_member()
    other = await create_member()
    await create_identity(owner, IdentityKind.POS_CARD, "C-1")

    result = await link(gql, other.id, kind="POS_CARD", value="C-1")

    assert result == {"__typename": "IdentityConflictError", "code": "IDENTITY_CONFLICT"}
    assert await ChannelIdentity.filter(member_id=other.id).count() == 1


async def test_linking_to_an_erased_member_is_refused(gql: Any) -> None:
    member = await create_member(status=MemberStatus.ERASED, phone=None)

    result = await link(gql, member.id, kind="APP_USER", value="u1")

    assert result == {"__typename": "MemberNotActiveError", "code": "MEMBER_NOT_ACTIVE"}


async def test_linking_to_an_unknown_member_is_not_found(gql: Any) -> None:
    result = await link(gql, 424242, kind="APP_USER", value="u1")
    assert result == {"__typename": "NotFoundError", "code": "MEMBER_NOT_FOUND"}


async def test_openid_needs_its_app_id(gql: Any) -> None:
    member = await create_member()

    result = await link(gql, member.id, kind="WECHAT_OPENID", value="o-1")

    assert result["fields"] == [{"field": "scope", "code": "REQUIRED"}]
    assert await ChannelIdentity.filter(kind=IdentityKind.WECHAT_OPENID).count() == 0


async def test_member_by_identity_finds_by_phone_and_openid(gql: Any, service_token: str) -> None:
    member = await create_member(phone="+8613812345678")
    await create_identity(member, IdentityKind.WECHAT_OPENID, "o-1", scope="wx-a")

    by_phone = await gql(
        BY_IDENTITY, {"kind": "PHONE", "value": "138 1234 5678"}, token=service_token
    )
    by_openid = await gql(BY_IDENTITY, {"kind": "WECHAT_OPENID", "value": "o-1", "scope": "wx-a"})
    other_app = await gql(BY_IDENTITY, {"kind": "WECHAT_OPENID", "value": "o-1", "scope": "wx-b"})

    assert by_phone["data"]["memberByIdentity"] == {"id": gid(member.id), "phone": "138****5678"}
    assert by_openid["data"]["memberByIdentity"]["id"] == gid(member.id)
    assert other_app["data"]["memberByIdentity"] is None


async def test_member_by_identity_is_not_for_member_tokens(gql: Any, settings: Any) -> None:
    member = await create_member()
    token = token_for(settings, Role.MEMBER, member_id=member.id)

    body = await gql(
        BY_IDENTITY, {"kind": "PHONE", "value": member.phone}, token=token, expect_errors=True
    )

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_bad_phone_lookup_is_bad_user_input(gql: Any) -> None:
    body = await gql(BY_IDENTITY, {"kind": "PHONE", "value": "12"}, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unlink_removes_the_identity_and_the_contact(gql: Any) -> None:
    member = await create_member(phone="+8613812345678")

    body = await gql(
        UNLINK,
        {
            "input": {
                "memberId": gid(member.id),
                "identity": {"kind": "PHONE", "value": "13812345678"},
            }
        },
    )
    missing = await gql(
        UNLINK,
        {"input": {"memberId": gid(member.id), "identity": {"kind": "POS_CARD", "value": "nope"}}},
    )

    assert body["data"]["unlinkIdentity"]["member"] == {"phone": None, "identities": []}
    assert missing["data"]["unlinkIdentity"] == {
        "__typename": "NotFoundError",
        "code": "IDENTITY_NOT_FOUND",
    }
