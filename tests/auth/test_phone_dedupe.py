"""A customer known at the till and in the mini-program ends up as one member.

Through the API, against the local WeChat stand-in: the mini-program first and then the till,
the till first and then the mini-program (the empty mini-program member folds into the till's
member), and the till first when the mini-program member already holds points (both are kept
and listed for staff, who merge them).
"""

from __future__ import annotations

from typing import Any

import httpx
from strawberry import relay

from loyalty.audit.models import AuditEntry
from loyalty.members.models import ChannelIdentity, DuplicateHint, IdentityKind, Member
from loyalty.settings import Settings
from tests.auth.conftest import post

LOGIN = """
mutation($code: String!) { loginWithMiniProgram(input: {code: $code}) {
  __typename
  ... on LoginWithMiniProgramSuccess { created member { id } tokens { accessToken refreshToken } }
} }
"""
BIND = """
mutation($code: String!) { bindPhoneNumber(input: {code: $code}) {
  __typename
  ... on BindPhoneNumberSuccess {
    merged member { id phone identities { kind value } } tokens { accessToken refreshToken }
  }
  ... on ConflictError { code message }
} }
"""
REGISTER = """
mutation($phone: String!) {
  registerMember(input: {channel: POS, displayName: "张三", phone: $phone}) {
    __typename ... on RegisterMemberSuccess { created member { id } }
  }
}
"""
ME = "{ me { id phone } }"
REFRESH = """
mutation($token: String!) { refreshToken(input: {refreshToken: $token}) { __typename } }
"""
ADJUST = """
mutation($id: ID!) { adjustPoints(input: {memberId: $id, amount: 100, reason: "开业礼",
                                          idempotencyKey: "gift-1"}) { __typename } }
"""
CANDIDATES = """
{ duplicateCandidates(first: 20) { edges { node { reason memberA { id } memberB { id } } } } }
"""
MERGE = """
mutation($survivor: ID!, $merged: ID!) {
  mergeMembers(input: {survivorId: $survivor, mergedId: $merged, idempotencyKey: "desk-1"}) {
    __typename ... on MergeMembersSuccess { survivor { id points { balance } } }
  }
}
"""
LINK = """
mutation($id: ID!, $value: String!, $scope: String) {
  linkIdentity(input: {memberId: $id, identity: {kind: WECHAT_OPENID, value: $value,
                                                 scope: $scope}}) {
    __typename ... on IdentityConflictError { code }
  }
}
"""


async def _login(http: httpx.AsyncClient, code: str) -> dict[str, Any]:
    body = await post(http, LOGIN, {"code": code})
    assert "errors" not in body, body
    return dict(body["data"]["loginWithMiniProgram"])


async def _till_registers(http: httpx.AsyncClient, token: str, phone: str) -> dict[str, Any]:
    body = await post(http, REGISTER, {"phone": phone}, token=token)
    assert "errors" not in body, body
    return dict(body["data"]["registerMember"])


def _pk(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


async def test_mini_program_first_then_the_till_finds_the_same_member(
    wechat_client: httpx.AsyncClient, service_token: str
) -> None:
    # Given a customer who logged in and verified the phone through WeChat
    login = await _login(wechat_client, "ok:openid-first")
    bound = await post(
        wechat_client,
        BIND,
        {"code": "phone:+86 13812345678"},
        token=login["tokens"]["accessToken"],
    )
    assert bound["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess"
    assert bound["data"]["bindPhoneNumber"]["merged"] is False
    assert bound["data"]["bindPhoneNumber"]["tokens"] is None

    # When the till registers the number as read out
    at_till = await _till_registers(wechat_client, service_token, "138 1234 5678")

    # Then it is the same member
    assert (at_till["created"], at_till["member"]["id"]) == (False, login["member"]["id"])
    assert await Member.all().count() == 1


async def test_till_first_then_mini_program_folds_the_new_member_into_the_till_member(
    wechat_client: httpx.AsyncClient,
    service_token: str,
    admin_token: str,
    settings: Settings,
) -> None:
    # Given a member registered at the till, and the same person's first mini-program login
    till = await _till_registers(wechat_client, service_token, "138 1234 5678")
    till_id = till["member"]["id"]
    login = await _login(wechat_client, "ok:openid-later:union-later")
    assert login["created"] is True
    new_id = login["member"]["id"]
    old_tokens = login["tokens"]

    # When WeChat verifies the phone
    body = await post(
        wechat_client, BIND, {"code": "phone:+86 13812345678"}, token=old_tokens["accessToken"]
    )

    # Then the login's member is the till's member, with fresh tokens for it
    result = body["data"]["bindPhoneNumber"]
    assert result["__typename"] == "BindPhoneNumberSuccess", result
    assert result["merged"] is True
    assert result["member"]["id"] == till_id
    assert result["member"]["phone"] == "+8613812345678"
    assert {(i["kind"], i["value"]) for i in result["member"]["identities"]} == {
        ("PHONE", "+8613812345678"),
        ("WECHAT_OPENID", "openid-later"),
        ("WECHAT_UNIONID", "union-later"),
    }
    tokens = result["tokens"]
    me = await post(wechat_client, ME, token=tokens["accessToken"])
    assert me["data"]["me"] == {"id": till_id, "phone": "+8613812345678"}
    refreshed = await post(wechat_client, REFRESH, {"token": tokens["refreshToken"]})
    assert refreshed["data"]["refreshToken"]["__typename"] == "RefreshTokenSuccess"

    # The retired member's tokens no longer act, as anyone
    stale = await post(wechat_client, ME, token=old_tokens["accessToken"])
    assert stale["data"] is None
    assert stale["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    stale_refresh = await post(wechat_client, REFRESH, {"token": old_tokens["refreshToken"]})
    assert stale_refresh["data"]["refreshToken"]["__typename"] == "InvalidRefreshTokenError"

    # One active member; the next login reaches it; the merge is audited
    assert await Member.filter(status="ACTIVE").count() == 1
    again = await _login(wechat_client, "ok:openid-later")
    assert (again["created"], again["member"]["id"]) == (False, till_id)
    entry = await AuditEntry.get(action="member.merge")
    assert (entry.target_id, entry.related_id) == (str(_pk(till_id)), str(_pk(new_id)))
    assert entry.actor == f"member:{_pk(new_id)}"
    assert entry.details["reason"] == "WECHAT_PHONE_VERIFIED"
    # Staff linking the openid to the till member again is a no-op now, not a conflict
    linked = await post(
        wechat_client,
        LINK,
        {"id": till_id, "value": "openid-later", "scope": settings.wechat_app_id},
        token=admin_token,
    )
    assert linked["data"]["linkIdentity"]["__typename"] == "LinkIdentitySuccess"


async def test_a_mini_program_member_holding_points_is_kept_and_listed_for_staff(
    wechat_client: httpx.AsyncClient,
    service_token: str,
    admin_token: str,
    settings: Settings,
) -> None:
    # Given a till member, and a mini-program member of the same person that holds points
    till_id = (await _till_registers(wechat_client, service_token, "13812345678"))["member"]["id"]
    login = await _login(wechat_client, "ok:openid-rich")
    app_id = login["member"]["id"]
    gift = await post(wechat_client, ADJUST, {"id": app_id}, token=admin_token)
    assert gift["data"]["adjustPoints"]["__typename"] == "AdjustPointsSuccess"

    # When WeChat verifies the phone (twice: the app retries)
    for _ in range(2):
        body = await post(
            wechat_client,
            BIND,
            {"code": "phone:+86 13812345678"},
            token=login["tokens"]["accessToken"],
        )
        result = body["data"]["bindPhoneNumber"]
        assert (result["__typename"], result["code"]) == ("ConflictError", "IDENTITY_CONFLICT")

    # Then both members stay, and staff see the pair with the reason, once
    assert await Member.filter(status="ACTIVE").count() == 2
    assert await DuplicateHint.all().count() == 1
    candidates = await post(wechat_client, CANDIDATES, token=admin_token)
    pairs = [e["node"] for e in candidates["data"]["duplicateCandidates"]["edges"]]
    assert pairs == [
        {"reason": "WECHAT_PHONE", "memberA": {"id": till_id}, "memberB": {"id": app_id}}
    ]
    # Moving the openid alone would strand the points: staff merge instead
    moved = await post(
        wechat_client,
        LINK,
        {"id": till_id, "value": "openid-rich", "scope": settings.wechat_app_id},
        token=admin_token,
    )
    assert moved["data"]["linkIdentity"] == {
        "__typename": "IdentityConflictError",
        "code": "IDENTITY_CONFLICT",
    }
    merged = await post(
        wechat_client, MERGE, {"survivor": till_id, "merged": app_id}, token=admin_token
    )
    assert merged["data"]["mergeMembers"] == {
        "__typename": "MergeMembersSuccess",
        "survivor": {"id": till_id, "points": {"balance": 100}},
    }
    candidates = await post(wechat_client, CANDIDATES, token=admin_token)
    assert candidates["data"]["duplicateCandidates"]["edges"] == []
    again = await _login(wechat_client, "ok:openid-rich")
    assert again["member"]["id"] == till_id


async def test_a_phone_owner_with_another_wechat_account_is_not_folded(
    wechat_client: httpx.AsyncClient, admin_token: str
) -> None:
    # Two WeChat accounts of this app verify one phone (a second account, or a number passed
    # on): the phone stays with the first, nothing is merged, staff see the pair
    first = await _login(wechat_client, "ok:openid-one")
    await post(
        wechat_client, BIND, {"code": "phone:13700000005"}, token=first["tokens"]["accessToken"]
    )
    second = await _login(wechat_client, "ok:openid-two")
    body = await post(
        wechat_client, BIND, {"code": "phone:13700000005"}, token=second["tokens"]["accessToken"]
    )
    assert body["data"]["bindPhoneNumber"]["__typename"] == "ConflictError"
    assert await Member.filter(status="ACTIVE").count() == 2
    assert await ChannelIdentity.filter(kind=IdentityKind.WECHAT_OPENID).count() == 2
    candidates = await post(wechat_client, CANDIDATES, token=admin_token)
    pairs = [e["node"] for e in candidates["data"]["duplicateCandidates"]["edges"]]
    assert pairs == [
        {
            "reason": "WECHAT_PHONE",
            "memberA": {"id": first["member"]["id"]},
            "memberB": {"id": second["member"]["id"]},
        }
    ]
