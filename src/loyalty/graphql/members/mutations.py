"""Member mutations: adapters from input to one service call and back."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from loyalty import errors as domain
from loyalty.auth.principal import Principal, Role
from loyalty.graphql import ids, permissions

# One GraphQL type per error code across the schema: MEMBER_NOT_ACTIVE is declared there.
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ConflictError, NotFoundError, ValidationError
from loyalty.graphql.members.inputs import (
    EraseMemberInput,
    IdentityInput,
    LinkIdentityInput,
    MergeMembersInput,
    RegisterMemberInput,
    SetConsentInput,
    UnlinkIdentityInput,
    UpdateMemberProfileInput,
)
from loyalty.graphql.members.types import (
    ChannelIdentity,
    Consent,
    IdentityConflictError,
    Member,
    MemberAlreadyErasedError,
    MemberNotActiveError,
    MergeRefusedError,
)
from loyalty.members import errors as member_errors
from loyalty.members import merge, models, privacy, service

permissions.register(
    {
        "Mutation.registerMember": permissions.STAFF_OR_SERVICE,
        "Mutation.linkIdentity": permissions.STAFF_OR_SERVICE,
        "Mutation.unlinkIdentity": permissions.STAFF,
        "Mutation.updateMemberProfile": permissions.MEMBER_OR_STAFF,
        "Mutation.setConsent": permissions.AUTHENTICATED,
        "Mutation.mergeMembers": permissions.ADMIN,
        "Mutation.eraseMember": permissions.ADMIN,
        "Mutation.exportMemberData": permissions.ADMIN,
    }
)


def _member_id(principal: Principal, gid: relay.GlobalID) -> int:
    """The member id behind ``gid``; anything the caller may not reach reads as not found."""
    member_id = ids.pk(gid, "Member")
    if member_id is None or not permissions.ensure_member_access(principal, member_id):
        raise member_errors.MemberNotFound(gid.node_id)
    return member_id


def _channel(info: Info, given: Any) -> models.Channel:
    if given is not None:
        return models.Channel(given.value)
    principal = info.context.principal
    channel = principal.channel
    if (
        principal.role is Role.SERVICE
        and channel is not None
        and channel in models.Channel.__members__
    ):
        return models.Channel(channel)
    return models.Channel.CONSOLE


def _claim(identity: IdentityInput) -> service.IdentityClaim:
    return service.IdentityClaim(
        kind=models.IdentityKind(identity.kind.value), value=identity.value, scope=identity.scope
    )


def _error(error: domain.DomainError) -> Any:
    """The union member for an expected failure."""
    if isinstance(error, domain.ValidationError):
        return ValidationError.from_domain(error)
    if isinstance(error, domain.NotFoundError):
        return NotFoundError.from_domain(error)
    if isinstance(error, member_errors.IdentityConflict):
        return IdentityConflictError(code=error.code, message=error.message)
    if isinstance(error, member_errors.MemberNotActive):
        return MemberNotActiveError(code=error.code, message=error.message)
    if isinstance(error, member_errors.MergeRefused):
        return MergeRefusedError(code=error.code, message=error.message)
    if isinstance(error, member_errors.MemberAlreadyErased):
        return MemberAlreadyErasedError(code=error.code, message=error.message)
    if isinstance(error, domain.ConflictError):
        return ConflictError.from_domain(error)
    raise error


@strawberry.type(description="The member was registered, or an existing one was found.")
class RegisterMemberSuccess:
    member: Member = strawberry.field(description="The registered (or existing) member.")
    created: bool = strawberry.field(
        description="False when the phone, email or an identity already belonged to a member "
        "(the identities it lacked were linked to it)."
    )


RegisterMemberResult = Annotated[
    RegisterMemberSuccess | ValidationError | IdentityConflictError | MemberNotActiveError,
    strawberry.union("RegisterMemberResult", description="Outcome of `registerMember`."),
]


@strawberry.type(description="The identity is linked to the member.")
class LinkIdentitySuccess:
    member: Member = strawberry.field(description="The member.")
    identity: ChannelIdentity = strawberry.field(description="The linked identity.")


LinkIdentityResult = Annotated[
    LinkIdentitySuccess
    | ValidationError
    | NotFoundError
    | IdentityConflictError
    | MemberNotActiveError,
    strawberry.union("LinkIdentityResult", description="Outcome of `linkIdentity`."),
]


@strawberry.type(description="The identity was removed from the member.")
class UnlinkIdentitySuccess:
    member: Member = strawberry.field(description="The member.")


UnlinkIdentityResult = Annotated[
    UnlinkIdentitySuccess | ValidationError | NotFoundError,
    strawberry.union("UnlinkIdentityResult", description="Outcome of `unlinkIdentity`."),
]


@strawberry.type(description="The profile was updated.")
class UpdateMemberProfileSuccess:
    member: Member = strawberry.field(description="The member as updated.")


UpdateMemberProfileResult = Annotated[
    UpdateMemberProfileSuccess
    | ValidationError
    | NotFoundError
    | IdentityConflictError
    | MemberNotActiveError,
    strawberry.union("UpdateMemberProfileResult", description="Outcome of `updateMemberProfile`."),
]


@strawberry.type(description="The consent decision was recorded.")
class SetConsentSuccess:
    member: Member = strawberry.field(description="The member.")
    consent: Consent = strawberry.field(description="The current decision for the purpose.")


SetConsentResult = Annotated[
    SetConsentSuccess | ValidationError | NotFoundError | MemberNotActiveError,
    strawberry.union("SetConsentResult", description="Outcome of `setConsent`."),
]


@strawberry.type(description="The members were merged.")
class MergeMembersSuccess:
    survivor: Member = strawberry.field(description="The member that remains.")


MergeMembersResult = Annotated[
    MergeMembersSuccess
    | ValidationError
    | NotFoundError
    | MergeRefusedError
    | MemberNotActiveError
    | ConflictError,
    strawberry.union("MergeMembersResult", description="Outcome of `mergeMembers`."),
]


@strawberry.type(description="The member's personal data was erased.")
class EraseMemberSuccess:
    member: Member = strawberry.field(description="The anonymised member.")


EraseMemberResult = Annotated[
    EraseMemberSuccess | ValidationError | NotFoundError | MemberAlreadyErasedError,
    strawberry.union("EraseMemberResult", description="Outcome of `eraseMember`."),
]


@strawberry.type(description="Everything held on the member, as one JSON document.")
class ExportMemberDataSuccess:
    document: JSON = strawberry.field(
        description="`member` (every personal field), `identities`, `consents`, `tags`, and a "
        "section per domain (orders, ledger, messages…)."
    )


ExportMemberDataResult = Annotated[
    ExportMemberDataSuccess | NotFoundError,
    strawberry.union("ExportMemberDataResult", description="Outcome of `exportMemberData`."),
]


@strawberry.type
class MemberMutation:
    @strawberry.mutation(
        description="Register a member. Idempotent on phone, email and identities: an existing "
        "member owning any of them is returned with `created: false` and the rest are linked."
    )
    async def register_member(self, info: Info, input: RegisterMemberInput) -> RegisterMemberResult:
        try:
            outcome = await service.register(
                channel=models.Channel(input.channel.value),
                display_name=input.display_name,
                phone=input.phone,
                email=input.email,
                birth_date=input.birth_date,
                gender=models.Gender(input.gender.value)
                if input.gender
                else models.Gender.UNDISCLOSED,
                timezone=input.timezone,
                region=input.region,
                identities=[_claim(i) for i in input.identities],
                tags=input.tags,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        await info.context.jobs.flush()
        return RegisterMemberSuccess(
            member=Member.from_model(outcome.member), created=outcome.created
        )

    @strawberry.mutation(
        description="Link a channel identity to a member (idempotent for the same member)."
    )
    async def link_identity(self, info: Info, input: LinkIdentityInput) -> LinkIdentityResult:
        try:
            member_id = _member_id(info.context.principal, input.member_id)
            claim = _claim(input.identity)
            row = await service.link_identity(
                member_id=member_id,
                kind=claim.kind,
                value=claim.value,
                scope=claim.scope,
                channel=_channel(info, input.channel),
            )
            member = await service.get(member_id=member_id)
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        return LinkIdentitySuccess(
            member=Member.from_model(member), identity=ChannelIdentity.from_model(row)
        )

    @strawberry.mutation(
        description="Remove an identity from a member; removing its phone or email clears it."
    )
    async def unlink_identity(self, info: Info, input: UnlinkIdentityInput) -> UnlinkIdentityResult:
        try:
            claim = _claim(input.identity)
            member = await service.unlink_identity(
                member_id=_member_id(info.context.principal, input.member_id),
                kind=claim.kind,
                value=claim.value,
                scope=claim.scope,
            )
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        return UnlinkIdentitySuccess(member=Member.from_model(member))

    @strawberry.mutation(
        description="Change profile fields (a member may change its own). Omitted fields stay. "
        "A member token may keep or clear its phone and email but not set new ones (they are "
        "identities): that answers `ValidationError` with field code `VERIFICATION_REQUIRED`, "
        "whoever the value belongs to. Phones are verified through `bindPhoneNumber`."
    )
    async def update_member_profile(
        self, info: Info, input: UpdateMemberProfileInput
    ) -> UpdateMemberProfileResult:
        changes = service.ProfileChanges()
        for name in ("display_name", "phone", "email", "birth_date", "timezone", "region", "tags"):
            value = getattr(input, name)
            if value is not strawberry.UNSET:
                setattr(changes, name, value)
        if input.gender is not strawberry.UNSET:
            changes.gender = models.Gender(input.gender.value) if input.gender else None
        try:
            member = await service.update_profile(
                member_id=_member_id(info.context.principal, input.member_id),
                changes=changes,
                channel=_channel(info, None),
                self_service=info.context.principal.role is Role.MEMBER,
            )
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        return UpdateMemberProfileSuccess(member=Member.from_model(member))

    @strawberry.mutation(
        description="Record a consent decision for one purpose (history is kept). Repeating the "
        "current decision writes nothing."
    )
    async def set_consent(self, info: Info, input: SetConsentInput) -> SetConsentResult:
        try:
            member_id = _member_id(info.context.principal, input.member_id)
            row = await service.set_consent(
                member_id=member_id,
                purpose=models.ConsentPurpose(input.purpose.value),
                granted=input.granted,
                channel=models.Channel(input.channel.value),
                policy_version=input.policy_version,
            )
            member = await service.get(member_id=member_id)
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        return SetConsentSuccess(member=Member.from_model(member), consent=Consent.from_model(row))

    @strawberry.mutation(
        description="Merge `mergedId` into `survivorId` in one transaction: identities, "
        "consents (the stricter wins), orders, points and every other record move; stats add "
        "up; the merged member becomes MERGED and its id resolves to the survivor. Idempotent "
        "on `idempotencyKey`."
    )
    async def merge_members(self, info: Info, input: MergeMembersInput) -> MergeMembersResult:
        principal = info.context.principal
        try:
            survivor = await merge.merge(
                survivor_id=_member_id(principal, input.survivor_id),
                merged_id=_member_id(principal, input.merged_id),
                idempotency_key=input.idempotency_key,
                actor=principal,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        await info.context.jobs.flush()
        return MergeMembersSuccess(survivor=Member.from_model(survivor))

    @strawberry.mutation(
        description="Anonymise a member's personal data (name, phone, email, birthday, "
        "identities, tags); orders and points amounts stay. Audited without the erased values."
    )
    async def erase_member(self, info: Info, input: EraseMemberInput) -> EraseMemberResult:
        principal = info.context.principal
        try:
            member = await privacy.erase(
                member_id=_member_id(principal, input.member_id),
                reason=input.reason,
                actor=principal,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        await info.context.jobs.flush()
        return EraseMemberSuccess(member=Member.from_model(member))

    @strawberry.mutation(description="Everything held on a member as one JSON document (audited).")
    async def export_member_data(self, info: Info, id: relay.GlobalID) -> ExportMemberDataResult:
        principal = info.context.principal
        try:
            document = await privacy.export(member_id=_member_id(principal, id), actor=principal)
        except domain.DomainError as error:
            return _error(error)  # type: ignore[no-any-return]
        return ExportMemberDataSuccess(document=document)  # type: ignore[arg-type]
