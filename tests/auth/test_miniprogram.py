"""Mini-program login and phone binding against a local HTTP server playing WeChat."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loyalty.auth.models import RefreshToken
from loyalty.auth.principal import Role
from loyalty.members.models import ChannelIdentity, IdentityKind, Member
from loyalty.settings import Settings
from tests.auth.conftest import AppFactory, WeChatStandIn, post
from tests.conftest import token_for

LOGIN = """
mutation($code: String!) { loginWithMiniProgram(input: {code: $code}) {
  __typename
  ... on LoginWithMiniProgramSuccess {
    created member { id displayName registeredChannel phone }
    tokens { accessToken refreshToken tokenType expiresIn }
  }
  ... on WeChatError { code message }
  ... on ValidationError { code }
} }
"""
BIND = """
mutation($code: String!) { bindPhoneNumber(input: {code: $code}) {
  __typename
  ... on BindPhoneNumberSuccess { member { id phone } }
  ... on WeChatError { code }
  ... on ConflictError { code }
} }
"""


async def _login(http: httpx.AsyncClient, code: str) -> dict[str, Any]:
    body = await post(http, LOGIN, {"code": code})
    assert "errors" not in body, body
    return dict(body["data"]["loginWithMiniProgram"])


async def test_first_login_registers_the_member_and_returns_member_tokens(
    wechat_client: httpx.AsyncClient, wechat: WeChatStandIn, settings: Settings
) -> None:
    result = await _login(wechat_client, "ok:openid-1:union-1")
    assert result["__typename"] == "LoginWithMiniProgramSuccess"
    assert result["created"] is True
    assert result["member"]["registeredChannel"] == "WECHAT_MINIPROGRAM"
    tokens = result["tokens"]
    assert tokens["tokenType"] == "Bearer"
    assert tokens["expiresIn"] == settings.access_token_ttl_seconds

    me = await post(wechat_client, "{ me { id } }", token=tokens["accessToken"])
    assert me["data"]["me"]["id"] == result["member"]["id"]

    # WeChat was called with our app id and the code; its session key went nowhere.
    name, params = wechat.calls[0]
    assert name == "jscode2session"
    assert (params["appid"], params["js_code"]) == (settings.wechat_app_id, "ok:openid-1:union-1")
    identities = await ChannelIdentity.all().order_by("kind")
    assert {(i.kind, i.scope, i.value) for i in identities} == {
        (IdentityKind.WECHAT_OPENID, settings.wechat_app_id, "openid-1"),
        (IdentityKind.WECHAT_UNIONID, "", "union-1"),
    }
    assert await RefreshToken.all().count() == 1
    stored = repr([m.__dict__ for m in await Member.all()]) + repr(
        [r.__dict__ for r in await RefreshToken.all()]
    )
    assert "SESSION-KEY" not in stored
    assert "SESSION-KEY" not in repr(result)


async def test_next_login_finds_the_same_member(wechat_client: httpx.AsyncClient) -> None:
    first = await _login(wechat_client, "ok:openid-2")
    again = await _login(wechat_client, "ok:openid-2")
    assert again["created"] is False
    assert again["member"]["id"] == first["member"]["id"]
    assert again["tokens"]["refreshToken"] != first["tokens"]["refreshToken"]
    assert await Member.all().count() == 1


async def test_unionid_finds_the_member_known_from_another_app(
    wechat_client: httpx.AsyncClient, admin_token: str
) -> None:
    registered = await post(
        wechat_client,
        'mutation { registerMember(input: {channel: APP, displayName: "老会员", phone: "13800001111"}) '
        "{ ... on RegisterMemberSuccess { member { id } } } }",
        token=admin_token,
    )
    member_id = registered["data"]["registerMember"]["member"]["id"]
    from strawberry.relay import from_base64

    pk = int(from_base64(member_id)[1])
    await ChannelIdentity.create(
        member_id=pk,
        kind=IdentityKind.WECHAT_UNIONID,
        scope="",
        value="union-9",
        channel="APP",
        linked_at=await _now(),
    )
    result = await _login(wechat_client, "ok:openid-9:union-9")
    assert (result["created"], result["member"]["id"]) == (False, member_id)
    assert await ChannelIdentity.filter(member_id=pk, kind=IdentityKind.WECHAT_OPENID).count() == 1


async def _now() -> Any:
    from loyalty import clock

    return clock.now()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("invalid", "WECHAT_CODE_INVALID"),
        ("busy", "WECHAT_RATE_LIMITED"),
        ("garbage", "WECHAT_UNAVAILABLE"),
    ],
)
async def test_wechat_refusals_are_typed_errors_and_register_nobody(
    wechat_client: httpx.AsyncClient, code: str, expected: str
) -> None:
    result = await _login(wechat_client, code)
    assert result["__typename"] == "WeChatError"
    assert result["code"] == expected
    assert await Member.all().count() == 0
    assert await RefreshToken.all().count() == 0


async def test_unreachable_wechat_is_a_typed_error(app_with: AppFactory) -> None:
    async with app_with(wechat_api_base="http://127.0.0.1:9", wechat_timeout_seconds=2) as http:
        result = await _login(http, "ok:openid-x")
    assert (result["__typename"], result["code"]) == ("WeChatError", "WECHAT_UNAVAILABLE")


async def test_empty_code_is_a_validation_error_without_calling_wechat(
    wechat_client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    result = await _login(wechat_client, "  ")
    assert result == {"__typename": "ValidationError", "code": "VALIDATION_ERROR"}
    assert wechat.calls == []


async def test_bind_phone_links_the_number_and_caches_the_access_token(
    wechat_client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    login = await _login(wechat_client, "ok:openid-3")
    token = login["tokens"]["accessToken"]
    body = await post(wechat_client, BIND, {"code": "phone:13912345678"}, token=token)
    result = body["data"]["bindPhoneNumber"]
    assert result["__typename"] == "BindPhoneNumberSuccess"
    assert result["member"]["phone"] == "+8613912345678"
    # A second member binding a number reuses the cached server access token.
    other = await _login(wechat_client, "ok:openid-4")
    body = await post(
        wechat_client, BIND, {"code": "phone:13900000004"}, token=other["tokens"]["accessToken"]
    )
    assert body["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess"
    assert wechat.token_requests == 1


async def test_bind_phone_errors(
    wechat_client: httpx.AsyncClient, wechat: WeChatStandIn, settings: Settings
) -> None:
    first = await _login(wechat_client, "ok:openid-5")
    second = await _login(wechat_client, "ok:openid-6")
    await post(
        wechat_client, BIND, {"code": "phone:13700000005"}, token=first["tokens"]["accessToken"]
    )

    taken = await post(
        wechat_client, BIND, {"code": "phone:13700000005"}, token=second["tokens"]["accessToken"]
    )
    assert taken["data"]["bindPhoneNumber"] == {
        "__typename": "ConflictError",
        "code": "IDENTITY_CONFLICT",
    }
    invalid = await post(
        wechat_client, BIND, {"code": "nope"}, token=second["tokens"]["accessToken"]
    )
    assert invalid["data"]["bindPhoneNumber"] == {
        "__typename": "WeChatError",
        "code": "WECHAT_CODE_INVALID",
    }
    # An expired server access token is renewed once, transparently.
    wechat.expire_next_access_token = True
    renewed = await post(
        wechat_client, BIND, {"code": "phone:13700000006"}, token=second["tokens"]["accessToken"]
    )
    assert renewed["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess"
    # Only members bind phones.
    staff = await post(
        wechat_client, BIND, {"code": "phone:1"}, token=token_for(settings, Role.STAFF)
    )
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
