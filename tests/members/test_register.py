"""registerMember across channels: dedupe by phone, email and identity; concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loyalty.events.models import Event
from loyalty.members.models import ChannelIdentity, IdentityKind, Member
from tests.members.conftest import register

OPENID = {"kind": "WECHAT_OPENID", "value": "o-6_bmasdasdsad6_2sgVt7hMZOPfL", "scope": "wx-app"}


async def test_registration_links_phone_email_and_identities(gql: Any) -> None:
    result = await register(
        gql,
        channel="WECHAT_MINIPROGRAM",
        phone="138 1234 5678",
        email="A@B.cn",
        identities=[OPENID, {"kind": "POS_CARD", "value": "8800001"}],
    )

    assert result["__typename"] == "RegisterMemberSuccess"
    assert result["created"] is True
    kinds = {(i["kind"], i["scope"], i["value"]) for i in result["member"]["identities"]}
    assert kinds == {
        ("PHONE", None, "+8613812345678"),
        ("EMAIL", None, "a@b.cn"),
        ("WECHAT_OPENID", "wx-app", OPENID["value"]),
        ("POS_CARD", None, "8800001"),
    }
    assert {i["channel"] for i in result["member"]["identities"]} == {"WECHAT_MINIPROGRAM"}


async def test_known_identity_returns_the_member_and_links_the_new_phone(gql: Any) -> None:
    first = await register(gql, channel="WECHAT_MINIPROGRAM", identities=[OPENID])

    again = await register(gql, channel="POS", phone="13812345678", identities=[OPENID])

    assert again["__typename"] == "RegisterMemberSuccess"
    assert again["created"] is False
    assert again["member"]["id"] == first["member"]["id"]
    assert again["member"]["phone"] == "+8613812345678"
    assert await Member.all().count() == 1
    assert await ChannelIdentity.filter(kind=IdentityKind.PHONE).count() == 1


async def test_known_email_in_other_case_returns_the_member(gql: Any) -> None:
    first = await register(gql, email="li.lei@example.com")

    again = await register(
        gql, email="LI.LEI@EXAMPLE.COM", identities=[{"kind": "APP_USER", "value": "u9"}]
    )

    assert (again["created"], again["member"]["id"]) == (False, first["member"]["id"])
    assert await ChannelIdentity.filter(kind=IdentityKind.APP_USER, value="u9").count() == 1


async def test_identity_of_one_member_and_phone_of_another_is_a_conflict(gql: Any) -> None:
    await register(gql, phone="13812345678")
    await register(gql, phone="13912345678", identities=[OPENID])
    identities_before = await ChannelIdentity.all().count()

    result = await register(
        gql, phone="13812345678", identities=[OPENID, {"kind": "APP_USER", "value": "new"}]
    )

    assert result["__typename"] == "IdentityConflictError"
    assert result["code"] == "IDENTITY_CONFLICT"
    assert await Member.all().count() == 2
    assert await ChannelIdentity.all().count() == identities_before


@pytest.mark.parametrize(
    ("identity", "field", "code"),
    [
        ({"kind": "WECHAT_OPENID", "value": "o-1"}, "identities[0].scope", "REQUIRED"),
        ({"kind": "POS_CARD", "value": "  "}, "identities[0].value", "REQUIRED"),
        ({"kind": "POS_CARD", "value": "9" * 129}, "identities[0].value", "TOO_LONG"),
        ({"kind": "PHONE", "value": "12345"}, "identities[0].value", "INVALID"),
        ({"kind": "EMAIL", "value": "nope"}, "identities[0].value", "INVALID"),
    ],
)
async def test_bad_identity_is_a_validation_error_naming_the_field(
    gql: Any, identity: dict[str, str], field: str, code: str
) -> None:
    result = await register(gql, phone="13812345678", identities=[identity])

    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [{"field": field, "code": code}]
    assert await Member.all().count() == 0


async def test_unknown_identity_kind_is_rejected_before_any_write(gql: Any) -> None:
    body = await gql(
        """mutation($input: RegisterMemberInput!) { registerMember(input: $input) { __typename } }""",
        {
            "input": {
                "channel": "APP",
                "displayName": "张三",
                "identities": [{"kind": "FAX", "value": "1"}],
            }
        },
        expect_errors=True,
    )

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Member.all().count() == 0


async def test_twenty_concurrent_registrations_with_one_phone_create_one_member(
    gql: Any,
) -> None:
    results = await asyncio.gather(
        *(register(gql, phone="+86 138 0000 0001", identities=[OPENID]) for _ in range(20))
    )

    assert {r["__typename"] for r in results} == {"RegisterMemberSuccess"}
    assert sorted(r["created"] for r in results) == [False] * 19 + [True]
    assert len({r["member"]["id"] for r in results}) == 1
    assert await Member.all().count() == 1
    assert await ChannelIdentity.all().count() == 2
    assert await Event.filter(kind="member.registered").count() == 1


async def test_twenty_concurrent_registrations_by_openid_only_create_one_member(
    gql: Any,
) -> None:
    results = await asyncio.gather(
        *(register(gql, channel="WECHAT_MINIPROGRAM", identities=[OPENID]) for _ in range(20))
    )

    assert len({r["member"]["id"] for r in results}) == 1
    assert await Member.all().count() == 1
