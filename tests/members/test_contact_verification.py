"""A phone or email is an identity: a member token cannot attach one it has not verified.

Phones reach a member only through a verified path: WeChat's `getPhoneNumber` (through
`bindPhoneNumber`), a channel system's service key, or staff. Member callers are refused the
same way whether or not the value belongs to someone, so the refusal reveals nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.auth.principal import Role
from loyalty.members.models import ChannelIdentity, IdentityKind, Member
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.members.conftest import gid

UPDATE = """
mutation($input: UpdateMemberProfileInput!) { updateMemberProfile(input: $input) {
  __typename
  ... on UpdateMemberProfileSuccess { member { id phone email displayName } }
  ... on ValidationError { code message fields { field message code } }
  ... on IdentityConflictError { code message }
  ... on NotFoundError { code message }
  ... on MemberNotActiveError { code message }
} }
"""

POS_REGISTER = """
mutation($phone: String!) {
  registerMember(input: { channel: POS, displayName: "到店顾客", phone: $phone }) {
    __typename
    ... on RegisterMemberSuccess { created member { id phone } }
    ... on IdentityConflictError { code }
    ... on ValidationError { code }
    ... on MemberNotActiveError { code }
  }
}
"""

BY_PHONE = """
query($value: String!) { memberByIdentity(kind: PHONE, value: $value) { id } }
"""


async def update(gql: Any, member: Member, token: str, **fields: Any) -> dict[str, Any]:
    body = await gql(UPDATE, {"input": {"memberId": gid(member.id), **fields}}, token=token)
    return body["data"]["updateMemberProfile"]  # type: ignore[no-any-return]


async def test_a_member_token_cannot_take_over_a_till_identity(
    gql: Any, settings: Any, service_token: str
) -> None:
    # Given a mini-program member who types somebody else's (not yet registered) number
    stranger = await create_member(phone=None, display_name="陌生人")
    token = token_for(settings, Role.MEMBER, member_id=stranger.id)

    typed = await update(gql, stranger, token, phone="19968764817", displayName="新名字")

    # Then the number is refused and nothing is written (not even the other fields)
    assert typed["__typename"] == "ValidationError"
    assert typed["fields"][0]["field"] == "phone"
    assert typed["fields"][0]["code"] == "VERIFICATION_REQUIRED"
    reloaded = await Member.get(id=stranger.id)
    assert (reloaded.phone, reloaded.display_name) == (None, "陌生人")
    assert await ChannelIdentity.filter(kind=IdentityKind.PHONE).count() == 0

    # When the real owner of the number registers at the till
    at_till = (await gql(POS_REGISTER, {"phone": "199 6876 4817"}, token=service_token))["data"][
        "registerMember"
    ]

    # Then the till gets a new member of its own, not the stranger
    assert at_till["__typename"] == "RegisterMemberSuccess"
    assert at_till["created"] is True
    assert at_till["member"]["id"] != gid(stranger.id)
    assert at_till["member"]["phone"] == "199****4817"  # masked: the key has no pii scope
    assert (await Member.get(phone="+8619968764817")).id != stranger.id
    found = await gql(BY_PHONE, {"value": "19968764817"}, token=service_token)
    assert found["data"]["memberByIdentity"]["id"] == at_till["member"]["id"]


async def test_a_member_token_cannot_set_an_email_either(gql: Any, settings: Any) -> None:
    me = await create_member(phone=None)
    token = token_for(settings, Role.MEMBER, member_id=me.id)

    result = await update(gql, me, token, email="someone@example.com")

    assert result["__typename"] == "ValidationError"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [
        ("email", "VERIFICATION_REQUIRED")
    ]
    assert (await Member.get(id=me.id)).email is None


async def test_the_refusal_is_the_same_whether_or_not_the_phone_is_taken(
    gql: Any, settings: Any
) -> None:
    owner = await create_member(phone="+8613800009999", email="owner@example.com")
    me = await create_member(phone=None)
    token = token_for(settings, Role.MEMBER, member_id=me.id)

    taken = await update(gql, me, token, phone="138 0000 9999")
    free = await update(gql, me, token, phone="138 0000 8888")
    taken_mail = await update(gql, me, token, email="OWNER@example.com")
    free_mail = await update(gql, me, token, email="nobody@example.com")

    # Nothing in the answer tells a stranger that 13800009999 or owner@… is registered
    assert taken == free
    assert taken_mail == free_mail
    assert taken["__typename"] == "ValidationError"
    assert (await Member.get(id=owner.id)).phone == "+8613800009999"
    assert (await Member.get(id=me.id)).phone is None


async def test_a_member_may_still_clear_its_own_phone_and_edit_other_fields(
    gql: Any, settings: Any
) -> None:
    me = await create_member(phone="+8613800007777")
    token = token_for(settings, Role.MEMBER, member_id=me.id)

    renamed = await update(gql, me, token, displayName="我", phone="138 0000 7777")
    cleared = await update(gql, me, token, phone=None)

    assert renamed["__typename"] == "UpdateMemberProfileSuccess"  # its own number, unchanged
    assert renamed["member"]["displayName"] == "我"
    assert cleared["__typename"] == "UpdateMemberProfileSuccess"
    assert cleared["member"]["phone"] is None
    assert await ChannelIdentity.filter(member_id=me.id, kind=IdentityKind.PHONE).count() == 0


@pytest.mark.parametrize("role", [Role.STAFF, Role.ADMIN])
async def test_staff_keep_the_precise_conflict(gql: Any, settings: Any, role: Role) -> None:
    owner = await create_member(phone="+8613800006666")
    member = await create_member(phone=None)
    token = token_for(settings, role, scopes=frozenset({"pii"}))

    taken = await update(gql, member, token, phone="13800006666")
    free = await update(gql, member, token, phone="13800005555")

    assert (taken["__typename"], taken["code"]) == ("IdentityConflictError", "IDENTITY_CONFLICT")
    assert free["__typename"] == "UpdateMemberProfileSuccess"
    assert (await Member.get(id=owner.id)).phone == "+8613800006666"
    assert (await Member.get(id=member.id)).phone == "+8613800005555"
