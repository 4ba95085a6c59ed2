"""Login, token refresh and API key mutations: adapters to loyalty.auth."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.auth import miniprogram
from loyalty.auth import service as auth
from loyalty.auth.errors import ApiKeyNotFound, InvalidRefreshToken, WeChatError
from loyalty.auth.principal import Role
from loyalty.graphql import ids, permissions
from loyalty.graphql.auth.inputs import (
    BindPhoneNumberInput,
    CreateApiKeyInput,
    LoginWithMiniProgramInput,
    RefreshTokenInput,
    RevokeApiKeyInput,
)
from loyalty.graphql.auth.types import ApiKey, AuthTokens
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ConflictError, NotFoundError, ValidationError
from loyalty.graphql.members.types import Member, MemberNotActiveError
from loyalty.members.errors import IdentityConflict, MemberNotActive

permissions.register(
    {
        "Mutation.loginWithMiniProgram": permissions.EVERYONE,
        "Mutation.refreshToken": permissions.EVERYONE,
        "Mutation.revokeRefreshToken": permissions.EVERYONE,
        "Mutation.bindPhoneNumber": {Role.MEMBER},
        "Mutation.createApiKey": permissions.ADMIN,
        "Mutation.revokeApiKey": permissions.ADMIN,
    }
)


@strawberry.type(name="WeChatError", description="WeChat refused the code or could not be reached.")
class WeChatFailure:
    code: str = strawberry.field(
        description="WECHAT_CODE_INVALID (get a new code from `wx.login`), WECHAT_RATE_LIMITED "
        "(retry later) or WECHAT_UNAVAILABLE."
    )
    message: str = strawberry.field(description="What happened, for people.")

    @classmethod
    def from_domain(cls, error: WeChatError) -> WeChatFailure:
        return cls(code=error.code, message=error.message)


@strawberry.type(description="The refresh token is unknown, expired, revoked or already used.")
class InvalidRefreshTokenError:
    code: str = strawberry.field(description="Always `INVALID_REFRESH_TOKEN`: log in again.")
    message: str = strawberry.field(description="What happened, for people.")


@strawberry.type(description="Logged in: the member's session tokens.")
class LoginWithMiniProgramSuccess:
    tokens: AuthTokens = strawberry.field(description="Access and refresh token.")
    member: Member = strawberry.field(description="The member who logged in.")
    created: bool = strawberry.field(description="True when this login registered the member.")


LoginWithMiniProgramResult = Annotated[
    LoginWithMiniProgramSuccess | ValidationError | WeChatFailure | MemberNotActiveError,
    strawberry.union(
        "LoginWithMiniProgramResult", description="Outcome of `loginWithMiniProgram`."
    ),
]


@strawberry.type(description="The phone number is now the member's.")
class BindPhoneNumberSuccess:
    member: Member = strawberry.field(
        description="The member with the phone bound: when `merged`, the member that already "
        "held the number, not the one the caller's token named."
    )
    merged: bool = strawberry.field(
        description="True when the number belonged to a member registered elsewhere first (at "
        "a store) and the caller's member, new and holding nothing yet, was merged into it."
    )
    tokens: AuthTokens | None = strawberry.field(
        description="When `merged`: a session for `member`. Switch to it at once; the tokens "
        "of the merged member no longer work. Null otherwise."
    )


BindPhoneNumberResult = Annotated[
    BindPhoneNumberSuccess | ValidationError | WeChatFailure | ConflictError | MemberNotActiveError,
    strawberry.union("BindPhoneNumberResult", description="Outcome of `bindPhoneNumber`."),
]


@strawberry.type(description="A new token pair; the refresh token presented is used up.")
class RefreshTokenSuccess:
    tokens: AuthTokens = strawberry.field(description="New access and refresh token.")


RefreshTokenResult = Annotated[
    RefreshTokenSuccess | InvalidRefreshTokenError,
    strawberry.union("RefreshTokenResult", description="Outcome of `refreshToken`."),
]


@strawberry.type(description="The session is over: its refresh tokens no longer work.")
class RevokeRefreshTokenSuccess:
    revoked: bool = strawberry.field(description="False when the token was unknown.")


@strawberry.type(description="The key was created. `key` is shown only now: store it safely.")
class CreateApiKeySuccess:
    api_key: ApiKey = strawberry.field(description="The key's record.")
    key: str = strawberry.field(
        description="The secret. Send as `Authorization: ApiKey <key>` or `X-Api-Key`."
    )


CreateApiKeyResult = Annotated[
    CreateApiKeySuccess | ValidationError,
    strawberry.union("CreateApiKeyResult", description="Outcome of `createApiKey`."),
]


@strawberry.type(description="The key no longer authenticates.")
class RevokeApiKeySuccess:
    api_key: ApiKey = strawberry.field(description="The revoked key's record.")


RevokeApiKeyResult = Annotated[
    RevokeApiKeySuccess | NotFoundError,
    strawberry.union("RevokeApiKeyResult", description="Outcome of `revokeApiKey`."),
]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description="Log in from the mini-program with a `wx.login` code; registers the member "
        "on first login. Returns member tokens (WeChat's session key is never returned)."
    )
    async def login_with_mini_program(
        self, info: Info, input: LoginWithMiniProgramInput
    ) -> LoginWithMiniProgramResult:
        code = input.code.strip()
        if not code or len(code) > 128:
            return ValidationError.from_domain(
                domain.ValidationError(domain.FieldError("code", "not a wx.login code"))
            )
        try:
            outcome = await miniprogram.login(
                settings=info.context.settings, code=code, jobs=info.context.jobs
            )
        except WeChatError as error:
            return WeChatFailure.from_domain(error)
        except MemberNotActive as error:
            return MemberNotActiveError(code=error.code, message=error.message)
        await info.context.jobs.flush()
        return LoginWithMiniProgramSuccess(
            tokens=AuthTokens.from_pair(outcome.tokens),
            member=Member.from_model(outcome.member),
            created=outcome.created,
        )

    @strawberry.mutation(
        description="Bind the phone number behind a mini-program `getPhoneNumber` code to the "
        "calling member. If a member registered elsewhere first (at a store) holds the number "
        "and the caller's member is new and holds nothing, the caller's member is merged into "
        "it and `tokens` carry a session for it. If the caller's member already holds orders, "
        "points or claims, both are kept, the pair is listed in `duplicateCandidates` "
        "(reason WECHAT_PHONE) for staff to merge, and the answer is a `ConflictError`."
    )
    async def bind_phone_number(
        self, info: Info, input: BindPhoneNumberInput
    ) -> BindPhoneNumberResult:
        member_id = info.context.principal.member_id
        assert member_id is not None  # the gate admits MEMBER tokens only
        try:
            binding = await miniprogram.bind_phone(
                settings=info.context.settings,
                member_id=member_id,
                code=input.code.strip(),
                redis=info.context.redis,
                jobs=info.context.jobs,
            )
        except WeChatError as error:
            return WeChatFailure.from_domain(error)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except IdentityConflict as error:
            return ConflictError.from_domain(error)
        except MemberNotActive as error:
            return MemberNotActiveError(code=error.code, message=error.message)
        await info.context.jobs.flush()
        if binding.tokens is not None:
            # The caller proved to be the phone's owner: the payload is answered as that member.
            info.context.principal = binding.tokens.principal
        return BindPhoneNumberSuccess(
            member=Member.from_model(binding.member),
            merged=binding.merged,
            tokens=AuthTokens.from_pair(binding.tokens) if binding.tokens else None,
        )

    @strawberry.mutation(
        description="Exchange a refresh token for a new token pair. Each refresh token works "
        "once; using one twice ends the whole session."
    )
    async def refresh_token(self, info: Info, input: RefreshTokenInput) -> RefreshTokenResult:
        try:
            pair = await auth.refresh_session(
                settings=info.context.settings, refresh_token=input.refresh_token
            )
        except InvalidRefreshToken as error:
            return InvalidRefreshTokenError(code=error.code, message=error.message)
        return RefreshTokenSuccess(tokens=AuthTokens.from_pair(pair))

    @strawberry.mutation(description="Log out: revoke the session a refresh token belongs to.")
    async def revoke_refresh_token(
        self, info: Info, input: RefreshTokenInput
    ) -> RevokeRefreshTokenSuccess:
        revoked = await auth.revoke_session(refresh_token=input.refresh_token)
        return RevokeRefreshTokenSuccess(revoked=revoked)

    @strawberry.mutation(
        description="Create a service API key for a channel system (admins only). The key is "
        "returned once; only its hash is stored."
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyResult:
        try:
            issued = await auth.create_api_key(
                actor=info.context.principal,
                name=input.name,
                channel=input.channel.value,
                store_id=input.store_id,
                scopes=input.scopes,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return CreateApiKeySuccess(api_key=ApiKey.from_model(issued.api_key), key=issued.secret)

    @strawberry.mutation(description="Revoke a service API key at once (admins only).")
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyResult:
        try:
            api_key_id = ids.pk(input.id, "ApiKey")
            if api_key_id is None:
                raise ApiKeyNotFound(input.id.node_id)
            row = await auth.revoke_api_key(actor=info.context.principal, api_key_id=api_key_id)
        except ApiKeyNotFound as error:
            return NotFoundError.from_domain(error)
        return RevokeApiKeySuccess(api_key=ApiKey.from_model(row))
