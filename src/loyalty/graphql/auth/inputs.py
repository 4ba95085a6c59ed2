"""Inputs of authentication and credential management."""

from __future__ import annotations

import strawberry
from strawberry import relay

from loyalty.graphql.members.types import Channel


@strawberry.input(description="A `wx.login` code from the mini-program.")
class LoginWithMiniProgramInput:
    code: str = strawberry.field(description="The code `wx.login` returned (valid once).")


@strawberry.input(description="A one-time code from the mini-program's phone number button.")
class BindPhoneNumberInput:
    code: str = strawberry.field(description="The code `getPhoneNumber` returned (valid once).")


@strawberry.input(description="A refresh token to exchange or revoke.")
class RefreshTokenInput:
    refresh_token: str = strawberry.field(description="The refresh token of the session.")


@strawberry.input(description="A new service API key for a channel system.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for, 1–64 characters.")
    channel: Channel = strawberry.field(description="Channel the key acts for.")
    store_id: str | None = strawberry.field(
        default=None, description="Store the key is bound to (POS terminals)."
    )
    scopes: list[str] = strawberry.field(
        default_factory=list, description="Extra scopes; `pii` shows personal data in clear."
    )


@strawberry.input(description="The API key to revoke.")
class RevokeApiKeyInput:
    id: relay.GlobalID = strawberry.field(description="Global id of the API key.")
