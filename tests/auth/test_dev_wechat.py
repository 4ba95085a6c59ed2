"""In dev, mini-program login and phone binding work without WeChat: a stand-in answers
``demo:<openid>`` and ``phone:<digits>`` codes. Outside dev it does not exist."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from loyalty.members.models import ChannelIdentity, IdentityKind, Member
from loyalty.settings import Settings
from tests.auth.conftest import AppFactory, WeChatStandIn, post
from tests.auth.test_miniprogram import BIND, LOGIN

STAND_IN_PATHS = [
    ("GET", "/dev/wechat/sns/jscode2session"),
    ("GET", "/dev/wechat/cgi-bin/token"),
    ("POST", "/dev/wechat/wxa/business/getuserphonenumber"),
]


async def test_dev_login_with_a_demo_code_registers_then_finds_that_openid(
    app_with: AppFactory, settings: Settings
) -> None:
    async with app_with(env="dev") as http:
        first = (await post(http, LOGIN, {"code": "demo:abc"}))["data"]["loginWithMiniProgram"]
        again = (await post(http, LOGIN, {"code": "demo:abc"}))["data"]["loginWithMiniProgram"]

    assert (first["__typename"], first["created"]) == ("LoginWithMiniProgramSuccess", True)
    assert (again["created"], again["member"]["id"]) == (False, first["member"]["id"])
    identity = await ChannelIdentity.get(kind=IdentityKind.WECHAT_OPENID)
    assert (identity.scope, identity.value) == (settings.wechat_app_id, "abc")
    assert await Member.all().count() == 1


async def test_dev_bind_phone_with_a_phone_code_binds_that_number(app_with: AppFactory) -> None:
    async with app_with(env="dev") as http:
        login = (await post(http, LOGIN, {"code": "demo:abc"}))["data"]["loginWithMiniProgram"]
        token = login["tokens"]["accessToken"]
        bound = await post(http, BIND, {"code": "phone:13812345678"}, token=token)
        # The stand-in's server access token is fetched once and reused.
        again = await post(http, BIND, {"code": "phone:13812345678"}, token=token)

    assert bound["data"]["bindPhoneNumber"] == {
        "__typename": "BindPhoneNumberSuccess",
        "member": {"id": login["member"]["id"], "phone": "+8613812345678"},
    }
    assert again["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess"
    phone = await ChannelIdentity.get(kind=IdentityKind.PHONE)
    assert phone.value == "+8613812345678"


@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        ("login", "abc"),
        ("login", "demo:"),
        ("login", "demo:has space"),
        ("bind", "phone:"),
        ("bind", "phone:138-1234"),
        ("bind", "demo:abc"),
    ],
)
async def test_dev_codes_of_another_shape_are_invalid_codes_and_change_nothing(
    app_with: AppFactory, mutation: str, code: str
) -> None:
    async with app_with(env="dev") as http:
        if mutation == "login":
            body = await post(http, LOGIN, {"code": code})
            result = body["data"]["loginWithMiniProgram"]
        else:
            login = await post(http, LOGIN, {"code": "demo:abc"})
            token = login["data"]["loginWithMiniProgram"]["tokens"]["accessToken"]
            body = await post(http, BIND, {"code": code}, token=token)
            result = body["data"]["bindPhoneNumber"]

    assert (result["__typename"], result["code"]) == ("WeChatError", "WECHAT_CODE_INVALID")
    assert await Member.all().count() == (0 if mutation == "login" else 1)
    assert not await ChannelIdentity.filter(kind=IdentityKind.PHONE).exists()


async def test_dev_serves_the_stand_in_over_http_as_wechat_answers(
    app_with: AppFactory, settings: Settings
) -> None:
    credentials = {
        "appid": settings.wechat_app_id,
        "secret": settings.wechat_app_secret.get_secret_value(),
    }
    async with app_with(env="dev") as http:
        session = await http.get(
            "/dev/wechat/sns/jscode2session",
            params={**credentials, "js_code": "demo:o-42", "grant_type": "authorization_code"},
        )
        wrong_secret = await http.get(
            "/dev/wechat/sns/jscode2session",
            params={**credentials, "secret": "nope", "js_code": "demo:o-42"},
        )
        token = await http.get(
            "/dev/wechat/cgi-bin/token", params={**credentials, "grant_type": "client_credential"}
        )
        access_token = token.json()["access_token"]
        phone = await http.post(
            "/dev/wechat/wxa/business/getuserphonenumber",
            params={"access_token": access_token},
            json={"code": "phone:13812345678"},
        )
        stale = await http.post(
            "/dev/wechat/wxa/business/getuserphonenumber",
            params={"access_token": "other"},
            json={"code": "phone:13812345678"},
        )

    assert session.headers["content-type"].startswith("text/plain")
    assert session.json()["openid"] == "o-42"
    assert wrong_secret.json()["errcode"] == 40125
    assert token.json()["expires_in"] == 7200
    info = phone.json()["phone_info"]
    assert (info["phoneNumber"], info["countryCode"]) == ("13812345678", "86")
    assert info["watermark"]["appid"] == settings.wechat_app_id
    assert stale.json()["errcode"] == 40001


async def test_a_wechat_host_set_in_dev_is_used_instead_of_the_stand_in(
    app_with: AppFactory, wechat: WeChatStandIn
) -> None:
    async with app_with(env="dev", wechat_api_base=wechat.base_url) as http:
        demo = (await post(http, LOGIN, {"code": "demo:abc"}))["data"]["loginWithMiniProgram"]
        real = (await post(http, LOGIN, {"code": "ok:real-1"}))["data"]["loginWithMiniProgram"]

    # The host that was set answered both: it does not know demo codes.
    assert [name for name, _ in wechat.calls] == ["jscode2session", "jscode2session"]
    assert (demo["__typename"], demo["code"]) == ("WeChatError", "WECHAT_CODE_INVALID")
    assert real["__typename"] == "LoginWithMiniProgramSuccess"


@pytest.mark.parametrize("env", ["test", "prod"])
@pytest.mark.parametrize(("method", "path"), STAND_IN_PATHS)
async def test_the_stand_in_does_not_exist_outside_dev(
    app_with: AppFactory, env: str, method: str, path: str
) -> None:
    async with app_with(env=env) as http:
        response = await http.request(method, path, params={"js_code": "demo:abc"})
    assert response.status_code == 404


def test_wechat_calls_go_to_the_stand_in_only_in_dev_with_no_host_set() -> None:
    dev = Settings(env="dev", _env_file=None)  # type: ignore[call-arg]
    blank = Settings(env="dev", wechat_api_base=" ", _env_file=None)  # type: ignore[call-arg]
    chosen = Settings(env="dev", wechat_api_base="http://wx.local", _env_file=None)  # type: ignore[call-arg]
    prod = Settings(
        env="prod", jwt_secret=SecretStr("s" * 48), redis_url="redis://r:6379/0", _env_file=None
    )  # type: ignore[call-arg]
    assert dev.wechat_dev_standin and blank.wechat_dev_standin
    assert not chosen.wechat_dev_standin and chosen.wechat_api_url == "http://wx.local"
    assert not prod.wechat_dev_standin and prod.wechat_api_url == "https://api.weixin.qq.com"
