"""updateMemberProfile, setConsent and personal-data masking on the Member type."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from loyalty.auth.principal import Role
from loyalty.members.models import ChannelIdentity, Consent, IdentityKind, Member, MemberTag
from tests.conftest import token_for
from tests.factories.members import create_identity, create_member
from tests.members.conftest import gid

UPDATE = """
mutation($input: UpdateMemberProfileInput!) { updateMemberProfile(input: $input) {
  __typename
  ... on UpdateMemberProfileSuccess { member { displayName phone email birthDate birthMonth birthDay
                                              gender region timezone tags identities { kind value } } }
  ... on ValidationError { code fields { field code } }
  ... on IdentityConflictError { code }
  ... on NotFoundError { code }
} }
"""

SET_CONSENT = """
mutation($input: SetConsentInput!) { setConsent(input: $input) {
  __typename
  ... on SetConsentSuccess { consent { purpose granted policyVersion channel }
                             member { consents { purpose granted } consentHistory { granted } } }
  ... on ValidationError { code fields { field code } }
  ... on NotFoundError { code }
} }
"""

PROFILE = """
query($id: ID!) { member(id: $id) { displayName phone email birthDate birthMonth birthDay
  identities { kind scope value } } }
"""


async def update(
    gql: Any, member: Member, token: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = await gql(UPDATE, {"input": {"memberId": gid(member.id), **fields}}, token=token)
    return body["data"]["updateMemberProfile"]  # type: ignore[no-any-return]


async def test_profile_update_changes_only_given_fields(gql: Any) -> None:
    member = await create_member(display_name="旧", region="北京", tags=["a"])

    result = await update(
        gql, member, displayName="  新 名字 ", birthDate="1990-02-28", tags=["vip", "vip", "b"]
    )

    assert result["__typename"] == "UpdateMemberProfileSuccess"
    got = result["member"]
    assert (got["displayName"], got["birthMonth"], got["birthDay"]) == ("新 名字", 2, 28)
    assert got["region"] == "北京"
    assert got["tags"] == ["vip", "b"]
    assert await MemberTag.filter(member_id=member.id).order_by("id").values_list(
        "tag", flat=True
    ) == ["vip", "b"]


async def test_new_phone_replaces_the_old_phone_identity(gql: Any) -> None:
    member = await create_member(phone="+8613800000001")

    result = await update(gql, member, phone="139 0000 0001")

    assert result["member"]["phone"] == "+8613900000001"
    phones = await ChannelIdentity.filter(kind=IdentityKind.PHONE).values_list("value", flat=True)
    assert phones == ["+8613900000001"]


async def test_phone_of_another_member_is_a_conflict(gql: Any) -> None:
    other = await create_member(phone="+8613800000002")
    member = await create_member(display_name="原名")

    result = await update(gql, member, phone=other.phone, displayName="改名")

    assert result == {"__typename": "IdentityConflictError", "code": "IDENTITY_CONFLICT"}
    assert (await Member.get(id=member.id)).display_name == "原名"


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"displayName": "名" * 65}, "displayName", "TOO_LONG"),
        ({"displayName": None}, "displayName", "REQUIRED"),
        ({"phone": "555"}, "phone", "INVALID"),
        ({"email": "a@"}, "email", "INVALID"),
        ({"birthDate": "2999-01-01"}, "birthDate", "INVALID"),
        ({"tags": ["x" * 33]}, "tags", "TOO_LONG"),
        ({"region": "区" * 65}, "region", "TOO_LONG"),
    ],
)
async def test_bad_profile_input_is_typed_and_writes_nothing(
    gql: Any, fields: dict[str, Any], field: str, code: str
) -> None:
    member = await create_member(display_name="原名")

    result = await update(gql, member, **fields)

    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [{"field": field, "code": code}]
    assert (await Member.get(id=member.id)).display_name == "原名"


async def test_a_member_token_updates_itself_and_nobody_else(gql: Any, settings: Any) -> None:
    me = await create_member(display_name="我")
    other = await create_member(display_name="他")
    token = token_for(settings, Role.MEMBER, member_id=me.id)

    mine = await update(gql, me, token=token, displayName="我自己")
    theirs = await update(gql, other, token=token, displayName="黑客")

    assert mine["__typename"] == "UpdateMemberProfileSuccess"
    assert theirs == {"__typename": "NotFoundError", "code": "MEMBER_NOT_FOUND"}
    assert (await Member.get(id=other.id)).display_name == "他"


async def test_consent_history_is_kept_and_latest_decision_is_current(gql: Any) -> None:
    member = await create_member()
    base = {"memberId": gid(member.id), "purpose": "MARKETING_SMS", "channel": "POS"}

    await gql(SET_CONSENT, {"input": {**base, "granted": True, "policyVersion": "v1"}})
    await gql(SET_CONSENT, {"input": {**base, "granted": True, "policyVersion": "v1"}})
    body = await gql(SET_CONSENT, {"input": {**base, "granted": False, "policyVersion": "v2"}})

    result = body["data"]["setConsent"]
    assert result["consent"] == {
        "purpose": "MARKETING_SMS",
        "granted": False,
        "policyVersion": "v2",
        "channel": "POS",
    }
    assert result["member"]["consents"] == [{"purpose": "MARKETING_SMS", "granted": False}]
    assert result["member"]["consentHistory"] == [{"granted": True}, {"granted": False}]
    assert await Consent.filter(member_id=member.id).count() == 2


async def test_consent_without_policy_version_is_a_validation_error(gql: Any) -> None:
    member = await create_member()
    body = await gql(
        SET_CONSENT,
        {
            "input": {
                "memberId": gid(member.id),
                "purpose": "PROFILING",
                "granted": True,
                "channel": "APP",
                "policyVersion": " ",
            }
        },
    )
    assert body["data"]["setConsent"]["fields"] == [{"field": "policyVersion", "code": "INVALID"}]
    assert await Consent.all().count() == 0


async def test_staff_without_pii_scope_sees_masked_personal_fields(gql: Any, settings: Any) -> None:
    member = await create_member(
        display_name="王小明",
        phone="+8613812345678",
        email="xiao.ming@example.com",
        birth_date=date(1990, 5, 6),
    )
    await create_identity(member, IdentityKind.POS_CARD, "8800123456")
    no_pii = token_for(settings, Role.STAFF)

    masked = (await gql(PROFILE, {"id": gid(member.id)}, token=no_pii))["data"]["member"]
    clear = (await gql(PROFILE, {"id": gid(member.id)}))["data"]["member"]

    assert masked["displayName"] == "王**"
    assert masked["phone"] == "138****5678"
    assert masked["email"] == "x***@example.com"
    assert masked["birthDate"] is None
    assert (masked["birthMonth"], masked["birthDay"]) == (5, 6)
    assert {i["value"] for i in masked["identities"]} == {
        "138****5678",
        "x***@example.com",
        "******3456",
    }
    assert clear["phone"] == "+8613812345678"
    assert clear["birthDate"] == "1990-05-06"
    assert "8800123456" in {i["value"] for i in clear["identities"]}


async def test_a_member_sees_its_own_data_in_clear(gql: Any, settings: Any) -> None:
    member = await create_member(phone="+8613812345678")
    token = token_for(settings, Role.MEMBER, member_id=member.id)

    me = (await gql("{ me { phone identities { value } } }", token=token))["data"]["me"]

    assert me["phone"] == "+8613812345678"
