"""Access tokens, refresh tokens and service API keys, end to end through /graphql."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from loyalty import clock
from loyalty.auth import service as auth
from loyalty.auth.models import ApiKey, RefreshToken
from loyalty.auth.principal import Principal, Role
from loyalty.auth.tokens import issue_access_token
from loyalty.members.models import Member
from loyalty.settings import Settings
from tests.auth.conftest import post
from tests.factories.members import create_member

ME = "{ me { id displayName } }"
MEMBERS = "{ members(first: 1) { edges { cursor } } }"

REFRESH = """
mutation($token: String!) { refreshToken(input: {refreshToken: $token}) {
  __typename
  ... on RefreshTokenSuccess { tokens { accessToken refreshToken tokenType expiresIn } }
  ... on InvalidRefreshTokenError { code message }
} }
"""
REVOKE = """
mutation($token: String!) { revokeRefreshToken(input: {refreshToken: $token}) { revoked } }
"""
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
  __typename
  ... on CreateApiKeySuccess { key apiKey { id name prefix channel storeId scopes revokedAt } }
  ... on ValidationError { code fields { field code } }
} }
"""
REVOKE_KEY = """
mutation($id: ID!) { revokeApiKey(input: {id: $id}) {
  __typename
  ... on RevokeApiKeySuccess { apiKey { id revokedAt } }
  ... on NotFoundError { code }
} }
"""
LIST_KEYS = """
query($all: Boolean!) { apiKeys(first: 10, includeRevoked: $all) {
  edges { node { id name prefix channel lastUsedAt revokedAt } } } }
"""


def _code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def _member_session(settings: Settings) -> tuple[int, auth.TokenPair]:
    member = await create_member()
    pair = await auth.start_session(settings=settings, principal=auth.member_principal(member.id))
    return member.id, pair


# --- access tokens --------------------------------------------------------------------------


async def test_member_token_reads_its_own_member(client: Any, settings: Settings) -> None:
    _member_id, pair = await _member_session(settings)
    body = await post(client, ME, token=pair.access_token)
    assert body["data"]["me"]["displayName"].startswith("会员")
    assert "errors" not in body


@pytest.mark.parametrize("status", ["MERGED", "DEACTIVATED", "ERASED"])
async def test_access_token_of_a_member_no_longer_active_is_refused(
    client: Any, settings: Settings, status: str
) -> None:
    member_id, pair = await _member_session(settings)
    await Member.filter(id=member_id).update(status=status)
    body = await post(client, ME, token=pair.access_token)
    assert body["data"] is None
    assert _code(body) == "UNAUTHENTICATED"


async def test_expired_token_is_unauthenticated(client: Any, settings: Settings) -> None:
    principal = Principal(role=Role.ADMIN, subject="old")
    token = issue_access_token(settings, principal, ttl=timedelta(seconds=60))
    with clock.frozen(clock.now() + timedelta(minutes=2)):
        body = await post(client, MEMBERS, token=token)
    assert body["data"] is None
    assert _code(body) == "UNAUTHENTICATED"


async def test_token_is_valid_until_it_expires(client: Any, settings: Settings) -> None:
    principal = Principal(role=Role.ADMIN, subject="fresh")
    token = issue_access_token(settings, principal, ttl=timedelta(seconds=60))
    with clock.frozen(clock.now() + timedelta(seconds=50)):
        body = await post(client, MEMBERS, token=token)
    assert "errors" not in body


@pytest.mark.parametrize("tamper", ["payload", "signature", "alg-none", "other-secret", "kid"])
async def test_tampered_token_is_unauthenticated(
    client: Any, settings: Settings, tamper: str
) -> None:
    member = await create_member()
    token = issue_access_token(settings, auth.member_principal(member.id))
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    if tamper == "payload":
        forged = jwt.encode({**claims, "role": "ADMIN"}, "x" * 40, algorithm="HS256")
        token = f"{header}.{forged.split('.')[1]}.{signature}"
    elif tamper == "signature":
        token = f"{header}.{payload}.{signature[:-4]}AAAA"
    elif tamper == "alg-none":
        token = jwt.encode({**claims, "role": "ADMIN"}, None, algorithm="none")
    elif tamper == "other-secret":
        token = jwt.encode(
            {**claims, "role": "ADMIN"}, "y" * 40, algorithm="HS256", headers={"kid": "k1"}
        )
    else:
        token = jwt.encode(
            claims,
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
            headers={"kid": "unknown"},
        )
    body = await post(client, ME, token=token)
    assert body["data"] is None
    assert _code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "Invalid or expired token."


async def test_malformed_authorization_header_is_unauthenticated(client: Any) -> None:
    for header in ("Bearer", "Basic dXNlcjpwYXNz", "Token abc"):
        response = await client.post(
            "/graphql", json={"query": MEMBERS}, headers={"Authorization": header}
        )
        assert response.status_code == 200
        assert _code(response.json()) == "UNAUTHENTICATED"


async def test_key_rotation_accepts_previous_kid_and_refuses_removed_one(
    app_with: Any, settings: Settings
) -> None:
    old_settings = settings.model_copy(
        update={"jwt_key_id": "k0", "jwt_secret": SecretStr("old-secret-" + "o" * 40)}
    )
    old_token = issue_access_token(old_settings, Principal(role=Role.ADMIN, subject="rot"))
    rotated = {
        "jwt_key_id": "k2",
        "jwt_secret": SecretStr("new-secret-" + "n" * 40),
        "jwt_previous_keys": {"k0": SecretStr("old-secret-" + "o" * 40)},
    }
    async with app_with(**rotated) as http:
        assert "errors" not in await post(http, MEMBERS, token=old_token)
        new_token = issue_access_token(
            settings.model_copy(update=rotated), Principal(role=Role.ADMIN, subject="rot")
        )
        assert jwt.get_unverified_header(new_token)["kid"] == "k2"
        assert "errors" not in await post(http, MEMBERS, token=new_token)
    async with app_with(**{**rotated, "jwt_previous_keys": {}}) as http:
        assert _code(await post(http, MEMBERS, token=old_token)) == "UNAUTHENTICATED"


# --- refresh tokens -------------------------------------------------------------------------


async def test_refresh_rotates_and_the_new_pair_works(client: Any, settings: Settings) -> None:
    member_id, pair = await _member_session(settings)
    body = await post(client, REFRESH, {"token": pair.refresh_token})
    result = body["data"]["refreshToken"]
    assert result["__typename"] == "RefreshTokenSuccess"
    tokens = result["tokens"]
    assert tokens["tokenType"] == "Bearer"
    assert tokens["refreshToken"] != pair.refresh_token
    me = await post(client, ME, token=tokens["accessToken"])
    assert me["data"]["me"]["id"]
    # Stored hashed only: the secret appears nowhere in the table.
    rows = await RefreshToken.filter(member_id=member_id)
    assert len(rows) == 2
    assert all(pair.refresh_token not in (r.token_hash, r.family) for r in rows)
    assert {r.token_hash for r in rows} == {
        auth.hash_secret(pair.refresh_token),
        auth.hash_secret(tokens["refreshToken"]),
    }


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(
    client: Any, settings: Settings
) -> None:
    _member_id, pair = await _member_session(settings)
    first = await post(client, REFRESH, {"token": pair.refresh_token})
    second_token = first["data"]["refreshToken"]["tokens"]["refreshToken"]

    replay = await post(client, REFRESH, {"token": pair.refresh_token})
    assert replay["data"]["refreshToken"] == {
        "__typename": "InvalidRefreshTokenError",
        "code": "INVALID_REFRESH_TOKEN",
        "message": "Refresh token is invalid, expired or revoked.",
    }
    # The thief's replay also ended the legitimate holder's newer token.
    after = await post(client, REFRESH, {"token": second_token})
    assert after["data"]["refreshToken"]["__typename"] == "InvalidRefreshTokenError"


async def test_revoked_refresh_token_no_longer_refreshes(client: Any, settings: Settings) -> None:
    _member_id, pair = await _member_session(settings)
    assert (await post(client, REVOKE, {"token": pair.refresh_token}))["data"][
        "revokeRefreshToken"
    ] == {"revoked": True}
    body = await post(client, REFRESH, {"token": pair.refresh_token})
    assert body["data"]["refreshToken"]["__typename"] == "InvalidRefreshTokenError"
    unknown = await post(client, REVOKE, {"token": "rt_unknown"})
    assert unknown["data"]["revokeRefreshToken"] == {"revoked": False}


async def test_expired_refresh_token_is_refused(client: Any, settings: Settings) -> None:
    _member_id, pair = await _member_session(settings)
    later = clock.now() + timedelta(seconds=settings.refresh_token_ttl_seconds + 1)
    with clock.frozen(later):
        body = await post(client, REFRESH, {"token": pair.refresh_token})
    assert body["data"]["refreshToken"]["__typename"] == "InvalidRefreshTokenError"


async def test_refresh_of_an_erased_member_is_refused(client: Any, settings: Settings) -> None:
    from loyalty.members.models import Member, MemberStatus

    member_id, pair = await _member_session(settings)
    await Member.filter(id=member_id).update(status=MemberStatus.ERASED)
    body = await post(client, REFRESH, {"token": pair.refresh_token})
    assert body["data"]["refreshToken"]["__typename"] == "InvalidRefreshTokenError"


# --- service API keys -----------------------------------------------------------------------


async def _create_key(client: Any, admin_token: str, **overrides: Any) -> dict[str, Any]:
    payload = {"name": "POS 上海 1", "channel": "POS", "storeId": "S001", **overrides}
    body = await post(client, CREATE_KEY, {"input": payload}, token=admin_token)
    return dict(body["data"]["createApiKey"])


async def test_api_key_is_shown_once_stored_hashed_and_authenticates_as_service(
    client: Any, admin_token: str
) -> None:
    created = await _create_key(client, admin_token)
    assert created["__typename"] == "CreateApiKeySuccess"
    key = created["key"]
    assert key.startswith("lk_") and len(key) > 40
    assert created["apiKey"]["prefix"] == key[:10]
    row = await ApiKey.get()
    assert row.key_hash == auth.hash_secret(key)
    assert key not in str(row.__dict__)

    # Both header forms work and act as SERVICE for the key's channel: a staff-only field
    # is forbidden, a service field is allowed.
    for headers in ({"Authorization": f"ApiKey {key}"}, {"X-Api-Key": key}):
        forbidden = await post(client, MEMBERS, headers=headers)
        assert _code(forbidden) == "FORBIDDEN"
        allowed = await post(
            client,
            'mutation { registerMember(input: {channel: POS, displayName: "收银"}) { __typename } }',
            headers=headers,
        )
        assert allowed["data"]["registerMember"]["__typename"] == "RegisterMemberSuccess"

    listed = await post(client, LIST_KEYS, {"all": False}, token=admin_token)
    nodes = [e["node"] for e in listed["data"]["apiKeys"]["edges"]]
    assert [n["name"] for n in nodes] == ["POS 上海 1"]
    assert nodes[0]["lastUsedAt"] is not None
    assert "key" not in nodes[0]


async def test_revoked_api_key_is_refused_at_once(client: Any, admin_token: str) -> None:
    created = await _create_key(client, admin_token)
    headers = {"X-Api-Key": created["key"]}
    revoked = await post(client, REVOKE_KEY, {"id": created["apiKey"]["id"]}, token=admin_token)
    assert revoked["data"]["revokeApiKey"]["__typename"] == "RevokeApiKeySuccess"
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"]
    body = await post(client, "{ __typename }", headers=headers)
    assert _code(body) == "UNAUTHENTICATED"
    assert body["data"] is None
    active = await post(client, LIST_KEYS, {"all": False}, token=admin_token)
    assert active["data"]["apiKeys"]["edges"] == []
    everything = await post(client, LIST_KEYS, {"all": True}, token=admin_token)
    assert len(everything["data"]["apiKeys"]["edges"]) == 1


async def test_unknown_api_key_is_unauthenticated(client: Any) -> None:
    for headers in ({"X-Api-Key": "lk_" + "a" * 43}, {"Authorization": "ApiKey nope"}):
        assert _code(await post(client, "{ __typename }", headers=headers)) == "UNAUTHENTICATED"


async def test_revoking_an_unknown_api_key_is_not_found(client: Any, admin_token: str) -> None:
    from strawberry.relay import to_base64

    body = await post(client, REVOKE_KEY, {"id": to_base64("ApiKey", 999)}, token=admin_token)
    assert body["data"]["revokeApiKey"] == {
        "__typename": "NotFoundError",
        "code": "API_KEY_NOT_FOUND",
    }


@pytest.mark.parametrize(
    ("patch", "field", "code"),
    [
        ({"name": "  "}, "name", "REQUIRED"),
        ({"name": "n" * 65}, "name", "TOO_LONG"),
        ({"scopes": ["root"]}, "scopes", "INVALID"),
    ],
)
async def test_bad_api_key_input_is_a_validation_error(
    client: Any, admin_token: str, patch: dict[str, Any], field: str, code: str
) -> None:
    created = await _create_key(client, admin_token, **patch)
    assert created["__typename"] == "ValidationError"
    assert created["fields"] == [{"field": field, "code": code}]
    assert await ApiKey.all().count() == 0


async def test_only_admins_manage_api_keys(
    client: Any, staff_token: str, service_token: str
) -> None:
    for token in (staff_token, service_token):
        body = await post(
            client, CREATE_KEY, {"input": {"name": "x", "channel": "POS"}}, token=token
        )
        assert _code(body) == "FORBIDDEN"
        assert _code(await post(client, LIST_KEYS, {"all": True}, token=token)) == "FORBIDDEN"
    assert await ApiKey.all().count() == 0


# --- command line ---------------------------------------------------------------------------


def test_cli_create_admin_token_prints_a_working_admin_token(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from loyalty.auth.tokens import decode_access_token
    from loyalty.cli import app
    from loyalty.settings import get_settings

    monkeypatch.setenv("LOYALTY_JWT_SECRET", settings.jwt_secret.get_secret_value())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["create-admin-token", "--subject", "ops"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    principal = decode_access_token(settings, result.output.strip())
    assert principal.role is Role.ADMIN
    assert principal.subject == "ops"


async def test_cli_create_api_key_stores_a_hashed_key(
    settings: Settings, orm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from typer.testing import CliRunner

    from loyalty.cli import app
    from loyalty.settings import get_settings

    monkeypatch.setenv("LOYALTY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        # The command runs its own event loop, so it runs in a thread here.
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["create-api-key", "--name", "Online store", "--channel", "online_store"],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    row = await ApiKey.get(key_hash=auth.hash_secret(key))
    assert (row.name, row.channel, row.created_by) == ("Online store", "ONLINE_STORE", "cli")
    principal = await auth.authenticate_api_key(key=key)
    assert (principal.role, principal.channel) == (Role.SERVICE, "ONLINE_STORE")


async def test_an_expired_access_token_still_lets_the_client_refresh(
    client: Any, settings: Settings
) -> None:
    _member_id, pair = await _member_session(settings)
    later = clock.now() + timedelta(seconds=settings.access_token_ttl_seconds + 60)
    with clock.frozen(later):
        # Public operations run as anonymous; anything else is refused as a whole.
        refreshed = await post(
            client, REFRESH, {"token": pair.refresh_token}, token=pair.access_token
        )
        assert refreshed["data"]["refreshToken"]["__typename"] == "RefreshTokenSuccess"
        mixed = await post(
            client,
            "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { __typename } "
            'registerMember(input: {channel: APP, displayName: "x"}) { __typename } }',
            {"t": "rt_x"},
            token=pair.access_token,
        )
        assert mixed["data"] is None
        assert _code(mixed) == "UNAUTHENTICATED"
